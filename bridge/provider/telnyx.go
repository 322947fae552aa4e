package provider

import (
	"encoding/base64"
	"encoding/json"

	"github.com/valyala/fastjson"
)

// Telnyx media streaming: a connected frame with only a version, a
// snake_case start with call_control_id and a top-level stream_id, custom
// parameters as client_state, big-endian L16, and frames whose order "is
// not guaranteed" (Reorder).
const Telnyx Name = "telnyx"

var telnyx = &Dialect{
	Name: Telnyx, Order: BigEndian, defaultEncoding: PCMU, defaultRate: 8000,
	Reorder:        true,
	Markup:         []Markup{{Kind: "telnyx", Connect: true, Build: twimlFor(Telnyx)}},
	CallbackFields: append(append([]string(nil), twimlCallbackFields...), "call_control_id", "stream_id", "event", "error"),
	Wire: &Wire{
		Encodings: []Encoding{PCMU, PCMA, L16}, L16Rates: []int{8000, 16000}, FrameMs: 20, FirstSeq: 2,
		ids:       func() IDs { return IDs{Call: "v3:" + randHex(24), Stream: randUUID(), Account: randUUID()} },
		connected: `{"event":"connected","version":"1.0.0"}`,
		start:     telnyxStart,
		media: `{"event":"media","sequence_number":"$seq",` +
			`"media":{"track":"$track","chunk":"$chunk","timestamp":"$ts","payload":"$payload"},"stream_id":"$stream"}`,
		stop: `{"event":"stop","sequence_number":"$seq","stop":{"user_id":"$account","call_control_id":"$call"},"stream_id":"$stream"}`,
	},
}

// errorEvent reads Telnyx's {"event":"error","payload":{"code","title","detail"}}.
func (p *Parser) errorEvent(v *fastjson.Value, ev *Event) {
	e := v.Get("payload")
	if b := stringBytes(field(e, "detail")); len(b) > 0 {
		ev.Reason = string(b)
	} else if b := stringBytes(field(e, "title")); len(b) > 0 {
		ev.Reason = string(b)
	}
}

func telnyxStart(ids IDs, _ []string, enc Encoding, rate int, params map[string]string) any {
	st := map[string]any{
		"user_id": ids.Account, "call_control_id": ids.Call, "call_session_id": ids.Stream,
		"from": "+15550100001", "to": "+15550100002",
		"media_format": map[string]any{"encoding": string(enc), "sample_rate": rate, "channels": 1},
	}
	if len(params) > 0 {
		b, _ := json.Marshal(params)
		st["client_state"] = base64.StdEncoding.EncodeToString(b)
	}
	return map[string]any{"event": "start", "sequence_number": "1", "start": st, "stream_id": ids.Stream}
}
