package provider

import (
	"time"

	"github.com/valyala/fastjson"
)

// Vonage WebSockets: a first text frame websocket:connected that is the
// start (its content-type and the NCCO's headers), then raw little-endian
// L16 as binary frames; no call or stream id on the socket.
const Vonage Name = "vonage"

var vonage = &Dialect{
	Name: Vonage, Order: LittleEndian, defaultEncoding: L16, defaultRate: 16000, binary: true,
	connectedStart: true, fillCallID: vonageCallID,
	Markup: []Markup{{Kind: "vonage", Build: ncco}},
}

// vonageCallIDHeader is the NCCO websocket header that carries the call's
// uuid to the socket's first frame (Vonage sends no call id of its own).
const vonageCallIDHeader = "call_id"

// vonageStart turns Vonage's first text frame into a start:
// {"event":"websocket:connected","content-type":"audio/l16;rate=16000",…}.
// Every other top-level key is a header from the NCCO endpoint and becomes
// a custom parameter.
func (p *Parser) vonageStart(v *fastjson.Value, ev *Event) error {
	var ps params
	o, _ := v.Object()
	o.Visit(func(k []byte, val *fastjson.Value) {
		if string(k) != "event" && string(k) != "content-type" {
			ps.value(k, val)
		}
	})
	return p.finish(&Start{Tracks: []string{TrackInbound}}, v, &ps, ev)
}

// vonageCallID gives a Vonage stream its call id: the call_id header the
// NCCO sets, or Vonage's own uuid headers, or else a new id (one socket is
// one call then).
func vonageCallID(st *Start) {
	for _, k := range []string{vonageCallIDHeader, "uuid", "conversation_uuid"} {
		if v := st.CustomParameters[k]; v != "" {
			st.CallID = v
			return
		}
	}
	st.CallID = "vonage-" + time.Now().UTC().Format("20060102T150405") + "-" + randHex(8)
}

// NCCO (Vonage Call Control Object).
type nccoAction struct {
	Action   string         `json:"action"`
	Endpoint []nccoEndpoint `json:"endpoint"`
}

type nccoEndpoint struct {
	Type        string            `json:"type"`
	URI         string            `json:"uri"`
	ContentType string            `json:"content-type"`
	Headers     map[string]string `json:"headers,omitempty"`
}

func ncco(req StreamRequest) ([]byte, string, error) {
	ep := nccoEndpoint{Type: "websocket", URI: req.Media, ContentType: "audio/l16;rate=16000", Headers: map[string]string{}}
	for _, kv := range req.Params {
		ep.Headers[kv[0]] = kv[1]
	}
	if req.CallID != "" {
		ep.Headers[vonageCallIDHeader] = req.CallID
	}
	if len(ep.Headers) == 0 {
		ep.Headers = nil
	}
	return marshalJSON([]nccoAction{{Action: "connect", Endpoint: []nccoEndpoint{ep}}})
}
