package provider

import (
	"crypto/hmac"
	"crypto/sha1"
	"strconv"
)

// SignalWire speaks Twilio's protocol (twilioWriter, the same parser) with
// UUIDs for ids, L16 at 16 or 24 kHz besides μ-law, RELAY status callbacks
// beside TwiML ones, and its own signature for JSON webhooks.
var signalWire = &Dialect{
	Name: SignalWire, defaultEncoding: PCMU, defaultRate: 8000,
	CallbackFields: append(append([]string(nil), twimlCallbackFields...),
		"event_type", "event_channel", "timestamp", "project_id", "space_id", "params",
		"call_id", "control_id", "node_id", "state", "error", "stream_id"),
	Wire: &Wire{
		FrameWriter: signalWireWriter{twilioWriter{name: SignalWire}},
		Stereo:      true, Encodings: []Encoding{PCMU, L16}, L16Rates: []int{16000, 24000}, FrameMs: 20, FirstSeq: 2,
	},
}

// isUUID: 8-4-4-4-12 hex digits.
func isUUID(b []byte) bool {
	if len(b) != 36 {
		return false
	}
	for i, c := range b {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHex(c) {
				return false
			}
		}
	}
	return true
}

// SignalWireMAC is HMAC-SHA1(key, url + raw body): X-SignalWire-Signature
// (hex) of JSON requests (SWML, RELAY status callbacks). Form requests
// (cXML) are signed as Twilio's (TwilioMAC).
func SignalWireMAC(key, u string, body []byte) []byte {
	m := hmac.New(sha1.New, []byte(key))
	m.Write([]byte(u))
	m.Write(body)
	return m.Sum(nil)
}

type signalWireWriter struct{ twilioWriter }

func (signalWireWriter) NewIDs() IDs {
	return IDs{Call: randUUID(), Stream: randUUID(), Account: randUUID()}
}

func (signalWireWriter) Connected() []byte {
	return []byte(`{"event":"connected","protocol":"Call","version":"0.2.0"}`)
}

func (signalWireWriter) Stop(_ IDs, seq int64) []byte {
	return []byte(`{"event":"stop","sequenceNumber":"` + strconv.FormatInt(seq, 10) + `"}`)
}
