package provider

import (
	"encoding/json"
	"strconv"
)

// Exotel Voicebot/Stream applets: a bare connected frame, a snake_case
// start (stream_sid, call_sid), little-endian L16 ("raw/slin") in 100 ms
// chunks, one track, and a stop.
var exotel = &Dialect{
	Name: Exotel, order: LittleEndian, defaultEncoding: L16, defaultRate: 8000,
	Wire: &Wire{
		FrameWriter: exotelWriter{},
		Encodings:   []Encoding{L16}, L16Rates: []int{8000, 16000, 24000}, FrameMs: 100, FirstSeq: 2,
	},
}

type exotelWriter struct{}

func (exotelWriter) NewIDs() IDs {
	return IDs{Call: randHex(16), Stream: "MZ" + randHex(16), Account: "sim-account"}
}

func (exotelWriter) Connected() []byte { return []byte(`{"event":"connected"}`) }

func (exotelWriter) Start(ids IDs, _ []string, _ Encoding, rate int, params map[string]string) []byte {
	if params == nil {
		params = map[string]string{}
	}
	b, _ := json.Marshal(map[string]any{
		"event": "start", "sequence_number": "1", "stream_sid": ids.Stream,
		"start": map[string]any{
			"stream_sid": ids.Stream, "call_sid": ids.Call, "account_sid": ids.Account,
			"from": "+915550100001", "to": "+915550100002", "custom_parameters": params,
			"media_format": map[string]any{"encoding": "audio/x-raw", "sample_rate": strconv.Itoa(rate), "bit_rate": "16"},
		},
	})
	return b
}

func (exotelWriter) AppendMedia(dst []byte, ids IDs, seq, chunk, ts int64, _ string, payload []byte) []byte {
	dst = append(dst, `{"event":"media","sequence_number":"`...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, `","stream_sid":"`...)
	dst = append(dst, ids.Stream...)
	dst = append(dst, `","media":{"chunk":"`...)
	dst = strconv.AppendInt(dst, chunk, 10)
	dst = append(dst, `","timestamp":"`...)
	dst = strconv.AppendInt(dst, ts, 10)
	dst = append(dst, `","payload":"`...)
	dst = append(dst, payload...)
	return append(dst, `"}}`...)
}

func (exotelWriter) Stop(ids IDs, seq int64) []byte {
	return []byte(`{"event":"stop","sequence_number":"` + strconv.FormatInt(seq, 10) + `","stream_sid":"` + ids.Stream +
		`","stop":{"call_sid":"` + ids.Call + `","account_sid":"` + ids.Account + `","reason":"callended"}}`)
}
