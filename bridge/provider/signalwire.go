package provider

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/valyala/fastjson"

	"go.yaml.in/yaml/v3"
)

// SignalWire speaks Twilio's protocol (twilioStart, the same parser) with
// UUIDs for ids, L16 at 16 or 24 kHz besides μ-law, RELAY status callbacks
// beside TwiML ones, and its own signature for JSON webhooks.
const SignalWire Name = "signalwire"

var signalWire = &Dialect{
	Name: SignalWire, defaultEncoding: PCMU, defaultRate: 8000,
	CallbackFields: append(append([]string(nil), twimlCallbackFields...),
		"event_type", "event_channel", "timestamp", "project_id", "space_id", "params",
		"call_id", "control_id", "node_id", "state", "error", "stream_id"),
	Markup: []Markup{
		{Kind: "signalwire", Connect: true, Codec: true, Build: twimlFor(SignalWire)},
		{Kind: "swml", Codec: true, Build: swml},
	},
	Wire: &Wire{
		Stereo: true, Encodings: []Encoding{PCMU, L16}, L16Rates: []int{16000, 24000}, FrameMs: 20, FirstSeq: 2,
		ids:       func() IDs { return IDs{Call: randUUID(), Stream: randUUID(), Account: randUUID()} },
		connected: `{"event":"connected","protocol":"Call","version":"0.2.0"}`,
		start:     twilioStart(false),
		media: `{"event":"media","sequenceNumber":"$seq",` +
			`"media":{"track":"$track","chunk":"$chunk","timestamp":"$ts","payload":"$payload"}}`,
		stop: `{"event":"stop","sequenceNumber":"$seq"}`,
	},
}

// isUUID: 8-4-4-4-12 hex digits.
func isUUID(b []byte) bool {
	if len(b) != 36 {
		return false
	}
	for i, c := range b {
		if dash := i == 8 || i == 13 || i == 18 || i == 23; dash != (c == '-') || !dash && !isHex(c) {
			return false
		}
	}
	return true
}

// twilioOrSignalWire tells a Twilio-style start apart by its ids: Twilio
// SIDs or SignalWire UUIDs, never a mix.
func twilioOrSignalWire(st, v *fastjson.Value) (Name, string) {
	var tw, sw, other int
	for _, k := range []string{"streamSid", "callSid", "accountSid"} {
		for _, o := range [2]*fastjson.Value{st, v} {
			b := stringBytes(field(o, k))
			switch {
			case b == nil:
			case isTwilioSID(b):
				tw++
			case isUUID(b):
				sw++
			default:
				other++
			}
		}
	}
	switch {
	case tw > 0 && sw == 0 && other == 0:
		return Twilio, ""
	case sw > 0 && tw == 0 && other == 0:
		return SignalWire, ""
	}
	return "", fmt.Sprintf("Twilio-style start whose ids are neither all Twilio SIDs (MZ/CA/AC + 32 hex) nor all UUIDs (SignalWire): %d SIDs, %d UUIDs, %d other", tw, sw, other)
}

// SignalWireSignatureOK verifies X-SignalWire-Signature against each of
// urls: hex HMAC-SHA1(key, url + raw body) for JSON requests (SWML, RELAY
// status callbacks), or Twilio's signature for form requests (cXML).
func SignalWireSignatureOK(key, sig string, urls []string, body []byte, form url.Values) bool {
	sig = strings.TrimSpace(sig)
	raw, err := hex.DecodeString(sig)
	if err == nil && len(raw) == sha1.Size && macMatches(urls, raw, func(u string) []byte {
		m := hmac.New(sha1.New, []byte(key))
		m.Write([]byte(u))
		m.Write(body)
		return m.Sum(nil)
	}) {
		return true
	}
	return TwilioSignatureOK(key, sig, urls, form)
}

// SWML (SignalWire Markup Language).

type swmlDoc struct {
	Version  string              `json:"version" yaml:"version"`
	Sections map[string][]swmlOp `json:"sections" yaml:"sections"`
}

// swmlOp is one verb; connect has "to" and play "url".
type swmlOp struct {
	Answer  *struct{}         `json:"answer,omitempty" yaml:"answer,omitempty"`
	Stream  *swmlStream       `json:"stream,omitempty" yaml:"stream,omitempty"`
	Connect map[string]string `json:"connect,omitempty" yaml:"connect,omitempty"`
	Play    map[string]string `json:"play,omitempty" yaml:"play,omitempty"`
}

type swmlStream struct {
	URL              string            `json:"url" yaml:"url"`
	Name             string            `json:"name" yaml:"name"`
	Track            string            `json:"track" yaml:"track"`
	Codec            string            `json:"codec,omitempty" yaml:"codec,omitempty"`
	BearerToken      string            `json:"authorization_bearer_token,omitempty" yaml:"authorization_bearer_token,omitempty"`
	StatusURL        string            `json:"status_url,omitempty" yaml:"status_url,omitempty"`
	StatusURLMethod  string            `json:"status_url_method,omitempty" yaml:"status_url_method,omitempty"`
	CustomParameters map[string]string `json:"custom_parameters,omitempty" yaml:"custom_parameters,omitempty"`
}

func swml(req StreamRequest) ([]byte, string, error) {
	st := &swmlStream{URL: req.Media, Name: streamName, Track: "both_tracks", Codec: req.Codec, BearerToken: req.Bearer}
	if req.Callback != "" {
		st.StatusURL, st.StatusURLMethod = req.Callback, "POST"
	}
	for _, kv := range req.Params {
		if st.CustomParameters == nil {
			st.CustomParameters = map[string]string{}
		}
		st.CustomParameters[kv[0]] = kv[1]
	}
	main := []swmlOp{{Answer: &struct{}{}}, {Stream: st}}
	if req.Dial != "" {
		main = append(main, swmlOp{Connect: map[string]string{"to": req.Dial}})
	} else {
		main = append(main, swmlOp{Play: map[string]string{"url": "silence:" + strconv.Itoa(req.Hold)}})
	}
	doc := swmlDoc{Version: "1.0.0", Sections: map[string][]swmlOp{"main": main}}
	if req.YAML {
		b, err := yaml.Marshal(doc)
		return b, contentYAML, err
	}
	return marshalJSON(doc)
}
