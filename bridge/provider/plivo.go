package provider

import (
	"encoding/json"
	"encoding/xml"
	"maps"
	"slices"
	"strings"

	"github.com/valyala/fastjson"
)

// Plivo Audio Streams: no connected frame, a camelCase start (callId,
// streamId, accountId "MA…"/"SA…") whose custom parameters are
// extra_headers, epoch-millisecond media timestamps, no stop frame.
const Plivo Name = "plivo"

var plivo = &Dialect{
	Name: Plivo, Order: LittleEndian,
	CallbackFields: plivoCallbackFields,
	Markup:         []Markup{{Kind: "plivo", Build: plivoXML(true)}},
	Wire: &Wire{
		Stereo: true, Encodings: []Encoding{PCMU, L16}, L16Rates: []int{8000, 16000}, FrameMs: 20,
		EpochTimestamps: true, FirstSeq: 2,
		ids: func() IDs {
			return IDs{Call: randUUID(), Stream: randUUID(), Account: "MA" + strings.ToUpper(randHex(9))}
		},
		start: plivoStart(false),
		media: plivoMedia,
	},
}

// plivoCallbackFields are Plivo's (and Vobiz's) stream status callback
// fields, in the spellings seen.
var plivoCallbackFields = []string{"CallUUID", "CallUuid", "call_uuid", "callUUID", "CallId", "callId", "StreamID", "StreamId", "stream_id", "streamId",
	"Event", "event", "Status", "status", "Error", "error", "Timestamp", "timestamp", "AuthID", "AccountID", "accountId"}

// isPlivoAuthID: "MA" or "SA" followed by at least 8 upper-case letters or
// digits (Plivo auth ids are 20 characters).
func isPlivoAuthID(s string) bool {
	upperOrDigit := func(c byte) bool { return 'A' <= c && c <= 'Z' || isDigit(c) }
	return len(s) >= 10 && (s[:2] == "MA" || s[:2] == "SA") && every(s[2:], upperOrDigit)
}

// extraHeaders merges Plivo/Vobiz extra_headers, a string in any of the
// forms seen: "k=v;k=v" (Plivo's stream doc), "k=v,k=v" (Plivo's XML doc),
// or a JSON object ("{}" from Vobiz) either as a string or inline. A token
// without "=" is a key with an empty value.
func (p *Parser) extraHeaders(ps *params, v *fastjson.Value) {
	if v == nil {
		return
	}
	if v.Type() == fastjson.TypeObject {
		ps.object(v)
		return
	}
	s := strings.TrimSpace(string(stringBytes(v)))
	if strings.HasPrefix(s, "{") {
		if o, err := p.aux.Parse(s); err == nil {
			ps.object(o)
			return
		}
	}
	for _, kv := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' }) {
		k, val, _ := strings.Cut(kv, "=")
		if k, val = strings.TrimSpace(k), strings.TrimSpace(val); k != "" || val != "" {
			ps.add(k, val)
		}
	}
}

// plivoMedia is Plivo's media frame, and Vobiz's.
const plivoMedia = `{"event":"media","sequenceNumber":$seq,"streamId":"$stream",` +
	`"media":{"track":"$track","timestamp":"$ts","chunk":$chunk,"payload":"$payload"}}`

// plivoStart writes Plivo's start frame, or Vobiz's, which starts the
// sequence at 0 and sends extra_headers as JSON.
func plivoStart(vobiz bool) startFunc {
	return func(ids IDs, tracks []string, enc Encoding, rate int, params map[string]string) any {
		encoding := "audio/x-mulaw"
		if enc == L16 {
			encoding = "audio/x-l16"
		}
		seq, extra := 1, plivoHeaders(params)
		if vobiz {
			b, _ := json.Marshal(params)
			seq, extra = 0, string(b)
		}
		return map[string]any{
			"event": "start", "sequenceNumber": seq, "extra_headers": extra,
			"start": map[string]any{
				"callId": ids.Call, "streamId": ids.Stream, "accountId": ids.Account, "tracks": tracks,
				"mediaFormat": map[string]any{"encoding": encoding, "sampleRate": rate},
			},
		}
	}
}

// plivoHeaders renders custom parameters as Plivo's extra_headers
// ("k=v;k=v"), in a stable order.
func plivoHeaders(params map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(params)) {
		parts = append(parts, k+"="+params[k])
	}
	return strings.Join(parts, ";")
}

type plivoStream struct {
	XMLName              xml.Name `xml:"Stream"`
	Bidirectional        string   `xml:"bidirectional,attr"`
	AudioTrack           string   `xml:"audioTrack,attr"`
	StreamTimeout        int      `xml:"streamTimeout,attr"`
	ContentType          string   `xml:"contentType,attr"`
	StatusCallbackURL    string   `xml:"statusCallbackUrl,attr,omitempty"`
	StatusCallbackMethod string   `xml:"statusCallbackMethod,attr,omitempty"`
	ExtraHeaders         string   `xml:"extraHeaders,attr,omitempty"`
	URL                  string   `xml:",chardata"`
}

// plivoXML builds Plivo's (and Vobiz's) <Stream>, μ-law at 8 kHz: the one
// format both document with the same byte-order-free meaning. headers:
// carry the custom parameters as extraHeaders (Vobiz sends extra_headers
// as "{}" whatever is set).
func plivoXML(headers bool) func(StreamRequest) ([]byte, string, error) {
	return func(req StreamRequest) ([]byte, string, error) {
		st := plivoStream{Bidirectional: "false", AudioTrack: "both", StreamTimeout: 86400,
			ContentType: "audio/x-mulaw;rate=8000", URL: req.Media}
		if req.Callback != "" {
			st.StatusCallbackURL, st.StatusCallbackMethod = req.Callback, "POST"
		}
		if headers {
			var hs []string
			for _, kv := range req.Params {
				// Plivo allows only [A-Za-z0-9] in extraHeaders.
				k, v := alnum(kv[0]), alnum(kv[1])
				if k != "" {
					hs = append(hs, k+"="+v)
				}
			}
			st.ExtraHeaders = strings.Join(hs, ",")
			if len(st.ExtraHeaders) > 512 {
				st.ExtraHeaders = ""
			}
		}
		resp := xmlResponse{Verbs: []any{st}}
		resp.hold(req, "Wait", func(sip string) xmlDial { return xmlDial{User: sip} })
		return marshalXML(resp)
	}
}

func alnum(s string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' {
			return r
		}
		return -1
	}, s)
}
