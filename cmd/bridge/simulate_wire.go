package main

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/callcaptions/bridge/bridge/provider"
)

// simDialect is how one provider frames a stream, as described in
// protocols.md and the fixtures: what it sends before the audio, how a
// media frame looks, and how it ends the stream.
type simDialect struct {
	name provider.Name
	// stereo: one socket carries both tracks (the start frame lists them
	// and each media frame names its track). Otherwise only inbound.
	stereo bool
	// encodings the provider can stream, the first being the default.
	encodings []provider.Encoding
	// rates the provider can stream L16 at (G.711 is always 8 kHz).
	l16Rates []int
	// frameMs is the provider's usual frame length.
	frameMs int
	// sendsStop: the provider ends a stream with a stop frame; otherwise
	// it just closes the socket.
	sendsStop bool
	// epochTimestamps: media timestamps are Unix milliseconds.
	epochTimestamps bool
	// order is the L16 byte order the bridge expects from this provider.
	order provider.ByteOrder
}

var simDialects = map[provider.Name]*simDialect{
	provider.Twilio:     {name: provider.Twilio, stereo: true, encodings: []provider.Encoding{provider.PCMU}, frameMs: 20, sendsStop: true},
	provider.SignalWire: {name: provider.SignalWire, stereo: true, encodings: []provider.Encoding{provider.PCMU, provider.L16}, l16Rates: []int{16000, 24000}, frameMs: 20, sendsStop: true, order: provider.LittleEndian},
	provider.Plivo:      {name: provider.Plivo, stereo: true, encodings: []provider.Encoding{provider.PCMU, provider.L16}, l16Rates: []int{8000, 16000}, frameMs: 20, epochTimestamps: true, order: provider.LittleEndian},
	provider.Vobiz:      {name: provider.Vobiz, stereo: true, encodings: []provider.Encoding{provider.PCMU, provider.L16}, l16Rates: []int{8000, 16000, 24000}, frameMs: 20, epochTimestamps: true, order: provider.BigEndian},
	provider.Telnyx:     {name: provider.Telnyx, encodings: []provider.Encoding{provider.PCMU, provider.PCMA, provider.L16}, l16Rates: []int{8000, 16000}, frameMs: 20, sendsStop: true, order: provider.BigEndian},
	provider.Exotel:     {name: provider.Exotel, encodings: []provider.Encoding{provider.L16}, l16Rates: []int{8000, 16000, 24000}, frameMs: 100, sendsStop: true, order: provider.LittleEndian},
}

// simDialectNames are the providers the simulator can play, for help and
// errors.
func simDialectNames() []string {
	var out []string
	for _, n := range provider.Names {
		if simDialects[n] != nil {
			out = append(out, string(n))
		}
	}
	return out
}

// checkFormat says whether the provider can stream enc at rate.
func (d *simDialect) checkFormat(enc provider.Encoding, rate int) error {
	if !slices.Contains(d.encodings, enc) {
		return fmt.Errorf("%s does not stream %s (it streams %v)", d.name, enc, d.encodings)
	}
	if enc != provider.L16 {
		if rate != 8000 {
			return fmt.Errorf("%s streams %s at 8000 Hz only, not %d Hz", d.name, enc, rate)
		}
		return nil
	}
	if !slices.Contains(d.l16Rates, rate) {
		return fmt.Errorf("%s streams L16 at %v Hz, not %d Hz", d.name, d.l16Rates, rate)
	}
	return nil
}

// simIDs are the ids one simulated stream uses, shaped as the provider's.
type simIDs struct {
	call, stream, account string
}

// newSimIDs makes ids in the provider's shape; call, when not empty, is
// the call id to use.
func newSimIDs(p provider.Name, call string) simIDs {
	var ids simIDs
	switch p {
	case provider.Twilio:
		ids = simIDs{call: "CA" + randHex(16), stream: "MZ" + randHex(16), account: "AC" + randHex(16)}
	case provider.SignalWire:
		ids = simIDs{call: randUUID(), stream: randUUID(), account: randUUID()}
	case provider.Plivo:
		ids = simIDs{call: randUUID(), stream: randUUID(), account: "MA" + strings.ToUpper(randHex(9))}
	case provider.Vobiz:
		ids = simIDs{call: randUUID(), stream: randUUID(), account: "500025"}
	case provider.Telnyx:
		ids = simIDs{call: "v3:" + randHex(24), stream: randUUID(), account: randUUID()}
	case provider.Exotel:
		ids = simIDs{call: randHex(16), stream: "MZ" + randHex(16), account: "sim-account"}
	}
	if call != "" {
		ids.call = call
	}
	return ids
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randUUID() string {
	h := randHex(16)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// connected is the frame sent before start, or nil.
func (d *simDialect) connected() []byte {
	switch d.name {
	case provider.Twilio:
		return []byte(`{"event":"connected","protocol":"Call","version":"1.0.0"}`)
	case provider.SignalWire:
		return []byte(`{"event":"connected","protocol":"Call","version":"0.2.0"}`)
	case provider.Telnyx:
		return []byte(`{"event":"connected","version":"1.0.0"}`)
	case provider.Exotel:
		return []byte(`{"event":"connected"}`)
	}
	return nil
}

// start is the start frame.
func (d *simDialect) start(ids simIDs, tracks []string, enc provider.Encoding, rate int, params map[string]string) []byte {
	if params == nil {
		params = map[string]string{}
	}
	var v any
	switch d.name {
	case provider.Twilio, provider.SignalWire:
		format := map[string]any{"encoding": "audio/x-mulaw", "sampleRate": rate, "channels": 1}
		if enc == provider.L16 {
			format["encoding"] = "audio/x-L16"
		}
		st := map[string]any{
			"streamSid": ids.stream, "accountSid": ids.account, "callSid": ids.call,
			"tracks": tracks, "customParameters": params, "mediaFormat": format,
		}
		m := map[string]any{"event": "start", "sequenceNumber": "1", "start": st}
		if d.name == provider.Twilio {
			m["streamSid"] = ids.stream
		}
		v = m
	case provider.Plivo, provider.Vobiz:
		encoding := "audio/x-mulaw"
		if enc == provider.L16 {
			encoding = "audio/x-l16"
		}
		seq := 1
		extra := plivoHeaders(params)
		if d.name == provider.Vobiz {
			seq = 0
			b, _ := json.Marshal(params)
			extra = string(b)
		}
		v = map[string]any{
			"event": "start", "sequenceNumber": seq, "extra_headers": extra,
			"start": map[string]any{
				"callId": ids.call, "streamId": ids.stream, "accountId": ids.account, "tracks": tracks,
				"mediaFormat": map[string]any{"encoding": encoding, "sampleRate": rate},
			},
		}
	case provider.Telnyx:
		st := map[string]any{
			"user_id": ids.account, "call_control_id": ids.call, "call_session_id": ids.stream,
			"from": "+15550100001", "to": "+15550100002",
			"media_format": map[string]any{"encoding": string(enc), "sample_rate": rate, "channels": 1},
		}
		if len(params) > 0 {
			b, _ := json.Marshal(params)
			st["client_state"] = base64.StdEncoding.EncodeToString(b)
		}
		v = map[string]any{"event": "start", "sequence_number": "1", "start": st, "stream_id": ids.stream}
	case provider.Exotel:
		v = map[string]any{
			"event": "start", "sequence_number": "1", "stream_sid": ids.stream,
			"start": map[string]any{
				"stream_sid": ids.stream, "call_sid": ids.call, "account_sid": ids.account,
				"from": "+915550100001", "to": "+915550100002", "custom_parameters": params,
				"media_format": map[string]any{"encoding": "audio/x-raw", "sample_rate": strconv.Itoa(rate), "bit_rate": "16"},
			},
		}
	}
	b, _ := json.Marshal(v)
	return b
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

// firstSeq is the sequence number of the first frame after start.
func (d *simDialect) firstSeq() int64 {
	if d.name == provider.Vobiz {
		return 1
	}
	return 2
}

// appendMedia appends one media frame. seq is the stream's message
// counter, chunk the track's frame counter (from 1), ts the timestamp as
// the provider sends it, payload the base64 audio.
func (d *simDialect) appendMedia(dst []byte, ids simIDs, seq, chunk, ts int64, track string, payload []byte) []byte {
	switch d.name {
	case provider.Twilio, provider.SignalWire:
		dst = append(dst, `{"event":"media","sequenceNumber":"`...)
		dst = strconv.AppendInt(dst, seq, 10)
		if d.name == provider.Twilio {
			dst = append(dst, `","streamSid":"`...)
			dst = append(dst, ids.stream...)
		}
		dst = append(dst, `","media":{"track":"`...)
		dst = append(dst, track...)
		dst = append(dst, `","chunk":"`...)
		dst = strconv.AppendInt(dst, chunk, 10)
		dst = append(dst, `","timestamp":"`...)
		dst = strconv.AppendInt(dst, ts, 10)
		dst = append(dst, `","payload":"`...)
		dst = append(dst, payload...)
		return append(dst, `"}}`...)
	case provider.Plivo, provider.Vobiz:
		dst = append(dst, `{"event":"media","sequenceNumber":`...)
		dst = strconv.AppendInt(dst, seq, 10)
		dst = append(dst, `,"streamId":"`...)
		dst = append(dst, ids.stream...)
		dst = append(dst, `","media":{"track":"`...)
		dst = append(dst, track...)
		dst = append(dst, `","timestamp":"`...)
		dst = strconv.AppendInt(dst, ts, 10)
		dst = append(dst, `","chunk":`...)
		dst = strconv.AppendInt(dst, chunk, 10)
		dst = append(dst, `,"payload":"`...)
		dst = append(dst, payload...)
		return append(dst, `"}}`...)
	case provider.Telnyx:
		dst = append(dst, `{"event":"media","sequence_number":"`...)
		dst = strconv.AppendInt(dst, seq, 10)
		dst = append(dst, `","media":{"track":"`...)
		dst = append(dst, track...)
		dst = append(dst, `","chunk":"`...)
		dst = strconv.AppendInt(dst, chunk, 10)
		dst = append(dst, `","timestamp":"`...)
		dst = strconv.AppendInt(dst, ts, 10)
		dst = append(dst, `","payload":"`...)
		dst = append(dst, payload...)
		dst = append(dst, `"},"stream_id":"`...)
		dst = append(dst, ids.stream...)
		return append(dst, `"}`...)
	case provider.Exotel:
		dst = append(dst, `{"event":"media","sequence_number":"`...)
		dst = strconv.AppendInt(dst, seq, 10)
		dst = append(dst, `","stream_sid":"`...)
		dst = append(dst, ids.stream...)
		dst = append(dst, `","media":{"chunk":"`...)
		dst = strconv.AppendInt(dst, chunk, 10)
		dst = append(dst, `","timestamp":"`...)
		dst = strconv.AppendInt(dst, ts, 10)
		dst = append(dst, `","payload":"`...)
		dst = append(dst, payload...)
		return append(dst, `"}}`...)
	}
	return dst
}

// stop is the stop frame, or nil for providers that end by closing.
func (d *simDialect) stop(ids simIDs, seq int64) []byte {
	s := strconv.FormatInt(seq, 10)
	switch d.name {
	case provider.Twilio:
		return []byte(`{"event":"stop","sequenceNumber":"` + s + `","streamSid":"` + ids.stream + `","stop":{"accountSid":"` + ids.account + `","callSid":"` + ids.call + `"}}`)
	case provider.SignalWire:
		return []byte(`{"event":"stop","sequenceNumber":"` + s + `"}`)
	case provider.Telnyx:
		return []byte(`{"event":"stop","sequence_number":"` + s + `","stop":{"user_id":"` + ids.account + `","call_control_id":"` + ids.call + `"},"stream_id":"` + ids.stream + `"}`)
	case provider.Exotel:
		return []byte(`{"event":"stop","sequence_number":"` + s + `","stream_sid":"` + ids.stream + `","stop":{"call_sid":"` + ids.call + `","account_sid":"` + ids.account + `","reason":"callended"}}`)
	}
	return nil
}

// twilioSignature is X-Twilio-Signature for a WebSocket upgrade: the
// base64 HMAC-SHA1 of the wss:// URL, keyed with the account's auth token
// (a GET has no parameters to append).
func twilioSignature(authToken, wssURL string) string {
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(wssURL))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
