package provider

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/xml"
	"maps"
	"net/url"
	"slices"
	"strings"
)

// Twilio Media Streams: a connected frame, a camelCase start with Twilio
// SIDs (MZ, CA, AC + 32 hex), base64 μ-law media on both tracks, and a stop.
const Twilio Name = "twilio"

var twilio = &Dialect{
	Name: Twilio, defaultEncoding: PCMU, defaultRate: 8000,
	CallbackFields: twimlCallbackFields,
	Markup:         []Markup{{Kind: "twilio", Connect: true, Build: twimlFor(Twilio)}},
	Wire: &Wire{
		Stereo: true, Encodings: []Encoding{PCMU}, FrameMs: 20, FirstSeq: 2,
		ids: func() IDs {
			return IDs{Call: "CA" + randHex(16), Stream: "MZ" + randHex(16), Account: "AC" + randHex(16)}
		},
		connected: `{"event":"connected","protocol":"Call","version":"1.0.0"}`,
		start:     twilioStart(true),
		media: `{"event":"media","sequenceNumber":"$seq","streamSid":"$stream",` +
			`"media":{"track":"$track","chunk":"$chunk","timestamp":"$ts","payload":"$payload"}}`,
		stop: `{"event":"stop","sequenceNumber":"$seq","streamSid":"$stream","stop":{"accountSid":"$account","callSid":"$call"}}`,
	},
}

// twimlCallbackFields are the TwiML stream status callback's fields
// (Twilio, and SignalWire and Telnyx, which copy it).
var twimlCallbackFields = []string{"AccountSid", "CallSid", "StreamSid", "StreamName", "StreamEvent", "StreamError", "Timestamp"}

// isTwilioSID: MZ, CA or AC followed by 32 hex digits.
func isTwilioSID(b []byte) bool {
	return len(b) == 34 && slices.Contains([]string{"MZ", "CA", "AC"}, string(b[:2])) && every(b[2:], isHex)
}

// macMatches reports whether mac(u) is want for one of urls, in constant
// time whichever matches.
func macMatches(urls []string, want []byte, mac func(u string) []byte) bool {
	match := 0
	for _, u := range urls {
		match |= subtle.ConstantTimeCompare(mac(u), want)
	}
	return match == 1
}

// TwilioMAC is HMAC-SHA1(key, url + the POST parameters sorted by name,
// each as name+value): Twilio's webhook signature, also SignalWire's for
// compatibility (cXML) requests. A WebSocket upgrade has no parameters
// (nil). X-Twilio-Signature is its base64.
func TwilioMAC(key, u string, params url.Values) []byte {
	m := hmac.New(sha1.New, []byte(key))
	m.Write([]byte(u))
	for _, k := range slices.Sorted(maps.Keys(params)) {
		for _, v := range slices.Sorted(slices.Values(params[k])) {
			m.Write([]byte(k))
			m.Write([]byte(v))
		}
	}
	return m.Sum(nil)
}

// TwilioSignatureOK verifies X-Twilio-Signature (base64 TwilioMAC) against
// each of urls, the forms of the URL the provider may have signed, in
// constant time whichever matches.
func TwilioSignatureOK(key, sig string, urls []string, params url.Values) bool {
	got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(sig))
	if err != nil || len(got) != sha1.Size {
		return false
	}
	return macMatches(urls, got, func(u string) []byte { return TwilioMAC(key, u, params) })
}

// twilioStart writes Twilio's start frame, or SignalWire's, which has no
// top-level streamSid.
func twilioStart(topStream bool) startFunc {
	return func(ids IDs, tracks []string, enc Encoding, rate int, params map[string]string) any {
		format := map[string]any{"encoding": "audio/x-mulaw", "sampleRate": rate, "channels": 1}
		if enc == L16 {
			format["encoding"] = "audio/x-L16"
		}
		st := map[string]any{
			"streamSid": ids.Stream, "accountSid": ids.Account, "callSid": ids.Call,
			"tracks": tracks, "customParameters": params, "mediaFormat": format,
		}
		m := map[string]any{"event": "start", "sequenceNumber": "1", "start": st}
		if topStream {
			m["streamSid"] = ids.Stream
		}
		return m
	}
}

// streamName is the name instructions give a stream.
const streamName = "captions"

type xmlStream struct {
	XMLName              xml.Name       `xml:"Stream"`
	URL                  string         `xml:"url,attr"`
	Name                 string         `xml:"name,attr,omitempty"`
	Track                string         `xml:"track,attr,omitempty"`
	Codec                string         `xml:"codec,attr,omitempty"`
	AuthBearerToken      string         `xml:"authBearerToken,attr,omitempty"`
	StatusCallback       string         `xml:"statusCallback,attr,omitempty"`
	StatusCallbackMethod string         `xml:"statusCallbackMethod,attr,omitempty"`
	Parameters           []xmlParameter `xml:"Parameter"`
}

type xmlParameter struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type xmlWrap struct {
	XMLName xml.Name
	Inner   any
}

// twimlFor builds TwiML (Twilio), cXML (SignalWire) or TeXML (Telnyx): the
// same markup, with SignalWire's codec and bearer token attributes and
// without <Parameter> for Telnyx.
func twimlFor(p Name) func(StreamRequest) ([]byte, string, error) {
	return func(req StreamRequest) ([]byte, string, error) {
		verb, track := "Start", "both_tracks"
		if req.Mode == "connect" {
			verb, track = "Connect", "inbound_track" // the only track a bidirectional stream may have
		}
		st := xmlStream{URL: req.Media, Name: streamName, Track: track, Codec: req.Codec, AuthBearerToken: req.Bearer}
		if req.Callback != "" {
			st.StatusCallback, st.StatusCallbackMethod = req.Callback, "POST"
		}
		if p != Telnyx { // TeXML carries no <Parameter>
			for _, kv := range req.Params {
				st.Parameters = append(st.Parameters, xmlParameter{kv[0], kv[1]})
			}
		}
		resp := xmlResponse{Verbs: []any{xmlWrap{XMLName: xml.Name{Local: verb}, Inner: st}}}
		if req.Mode != "connect" { // a connected call lasts as long as the stream
			resp.hold(req, "Pause", func(sip string) xmlDial { return xmlDial{SIP: sip} })
		}
		return marshalXML(resp)
	}
}
