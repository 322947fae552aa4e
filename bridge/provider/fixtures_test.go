package provider

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The fixtures live at the repository root so that other packages' end to
// end tests can play them too. The shared reference sessions are copied
// there unchanged; the variants below are generated into the same folder
// and checked against it on every run (go test -run TestVariantFixtures
// -update rewrites them).
const fixtureDir = "../../testdata/providers"

var update = flag.Bool("update", false, "rewrite the generated fixtures in testdata/providers")

// expectedFile is the schema of expected.json.
type expectedFile struct {
	WireCodec  string          `json:"wire_codec"`
	SampleRate int             `json:"sample_rate"`
	Note       string          `json:"note,omitempty"`
	Media      []expectedMedia `json:"media"`
}

type expectedMedia struct {
	Line         int     `json:"line"`
	Track        string  `json:"track"`
	PayloadBytes int     `json:"payload_bytes"`
	Samples      int     `json:"samples"`
	DurationMs   int     `json:"duration_ms"`
	SHA256       string  `json:"decoded_s16le_sha256"`
	First8       []int16 `json:"decoded_first8"`
	Peak         int     `json:"decoded_peak"`
}

// ulaw decodes one G.711 μ-law byte (protocols.md §7.1, Sun g711.c).
func ulaw(b byte) int16 {
	u := ^b
	mag := (int16(u&0x0F)<<3+0x84)<<((u&0x70)>>4) - 0x84
	if u&0x80 != 0 {
		return -mag
	}
	return mag
}

// decodeRef decodes a wire payload to samples the slow, obvious way.
func decodeRef(codec string, p []byte) []int16 {
	switch codec {
	case "mulaw":
		s := make([]int16, len(p))
		for i, b := range p {
			s[i] = ulaw(b)
		}
		return s
	case "l16le", "l16be":
		s := make([]int16, len(p)/2)
		for i := range s {
			if codec == "l16le" {
				s[i] = int16(binary.LittleEndian.Uint16(p[2*i:]))
			} else {
				s[i] = int16(binary.BigEndian.Uint16(p[2*i:]))
			}
		}
		return s
	}
	panic("unknown codec " + codec)
}

func describe(codec string, rate, line int, track string, payload []byte) expectedMedia {
	s := decodeRef(codec, payload)
	var le bytes.Buffer
	peak := 0
	for _, v := range s {
		_ = binary.Write(&le, binary.LittleEndian, v)
		if a := int(math.Abs(float64(v))); a > peak {
			peak = a
		}
	}
	sum := sha256.Sum256(le.Bytes())
	return expectedMedia{
		Line: line, Track: track, PayloadBytes: len(payload), Samples: len(s),
		DurationMs: len(s) * 1000 / rate, SHA256: hex.EncodeToString(sum[:]),
		First8: s[:min(8, len(s))], Peak: peak,
	}
}

// tone is the audio of every fixture: inbound a 1 kHz sine whose frame k
// (from 1) has peak 4000·k, outbound a 2 kHz sine of peak 3000, both phase
// continuous from sample 0 of the track.
func tone(track string, frame, rate, samples int) []int16 {
	freq, amp := 1000.0, 4000.0*float64(frame)
	if track == TrackOutbound {
		freq, amp = 2000, 3000
	}
	s := make([]int16, samples)
	for i := range s {
		n := (frame-1)*samples + i
		s[i] = int16(math.Round(amp * math.Sin(2*math.Pi*freq*float64(n)/float64(rate))))
	}
	return s
}

func encodeL16(s []int16, bigEndian bool) []byte {
	b := make([]byte, 2*len(s))
	for i, v := range s {
		if bigEndian {
			binary.BigEndian.PutUint16(b[2*i:], uint16(v))
		} else {
			binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
		}
	}
	return b
}

// variant is a generated fixture. Lines hold "$in1".."$in3" and "$out1"..
// "$out3" where a payload of that track and frame goes.
type variant struct {
	file    string
	codec   string // mulaw (payloads reused from the shared fixtures), l16le, l16be
	rate    int
	frameMs int
	note    string
	lines   []string
}

var variants = []variant{
	{
		file: "twilio-toplevel-ids.jsonl", codec: "mulaw", rate: 8000, frameMs: 20,
		note: "Twilio with the stream id only at the top level, no customParameters and the connected version of a real capture (0.2.0)",
		lines: []string{
			`{"event": "connected", "protocol": "Call", "version": "0.2.0"}`,
			`{"event": "start", "sequenceNumber": "1", "start": {"accountSid": "AC9f3c1b2e4d5a60718293a4b5c6d7e8f9", "callSid": "CA0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e", "tracks": ["inbound"], "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}, "streamSid": "MZ0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"}`,
			`{"event": "media", "sequenceNumber": "2", "media": {"track": "inbound", "chunk": "1", "timestamp": "102", "payload": "$in1"}, "streamSid": "MZ0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"}`,
			`{"event": "media", "sequenceNumber": "3", "media": {"track": "inbound", "chunk": "2", "timestamp": "122", "payload": "$in2"}, "streamSid": "MZ0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"}`,
			`{"event": "media", "sequenceNumber": "4", "media": {"track": "inbound", "chunk": "3", "timestamp": "142", "payload": "$in3"}, "streamSid": "MZ0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"}`,
			`{"event": "stop", "sequenceNumber": "5", "stop": {"accountSid": "AC9f3c1b2e4d5a60718293a4b5c6d7e8f9", "callSid": "CA0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"}, "streamSid": "MZ0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"}`,
		},
	},
	{
		file: "twilio-numbers.jsonl", codec: "mulaw", rate: 8000, frameMs: 20,
		note: "Twilio with every documented string number sent as a JSON number, and sampleRate/channels as strings",
		lines: []string{
			`{"event": "connected", "protocol": "Call", "version": "1.0.0"}`,
			`{"event": "start", "sequenceNumber": 1, "start": {"accountSid": "AC9f3c1b2e4d5a60718293a4b5c6d7e8f9", "streamSid": "MZ7c8817f8a231170163c51f360708d9a2", "callSid": "CA3ae75ffe1c5d8847e478556c07d07103", "tracks": ["inbound"], "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": "8000", "channels": "1"}, "customParameters": {"Attempt": 2, "Vip": true}}, "streamSid": "MZ7c8817f8a231170163c51f360708d9a2"}`,
			`{"event": "media", "sequenceNumber": 2, "media": {"track": "inbound", "chunk": 1, "timestamp": 102, "payload": "$in1"}, "streamSid": "MZ7c8817f8a231170163c51f360708d9a2"}`,
			`{"event": "media", "sequenceNumber": 3, "media": {"track": "inbound", "chunk": 2, "timestamp": 122, "payload": "$in2"}, "streamSid": "MZ7c8817f8a231170163c51f360708d9a2"}`,
			`{"event": "media", "sequenceNumber": 4, "media": {"track": "inbound", "chunk": 3, "timestamp": 142, "payload": "$in3"}, "streamSid": "MZ7c8817f8a231170163c51f360708d9a2"}`,
			`{"event": "dtmf", "streamSid": "MZ7c8817f8a231170163c51f360708d9a2", "sequenceNumber": 5, "dtmf": {"track": "inbound_track", "digit": 1}}`,
			`{"event": "stop", "sequenceNumber": 6, "stop": {"accountSid": "AC9f3c1b2e4d5a60718293a4b5c6d7e8f9", "callSid": "CA3ae75ffe1c5d8847e478556c07d07103"}, "streamSid": "MZ7c8817f8a231170163c51f360708d9a2"}`,
		},
	},
	{
		file: "signalwire-swml.jsonl", codec: "l16le", rate: 16000, frameMs: 20,
		note: "SignalWire SWML stream with custom_parameters and track both_tracks, codec L16@16000h. SignalWire does not document L16 byte order: the payload is written little-endian and the parser reports OrderUnknown",
		lines: []string{
			`{"event": "connected", "protocol": "Call", "version": "0.2.0"}`,
			`{"event": "start", "sequenceNumber": "1", "start": {"streamSid": "a3f1c2d4-5b6e-4f70-8a91-b2c3d4e5f607", "accountSid": "b08dacad-2f6c-4de1-93d6-cc732e0c69c5", "callSid": "e2d7b1c9-0a4f-4f6e-9b3d-7c8a1e2f3b4c", "tracks": ["inbound", "outbound"], "customParameters": {"caller_tier": "gold", "ticket": "T-1001"}, "mediaFormat": {"encoding": "audio/x-L16", "sampleRate": 16000, "channels": 1}}}`,
			`{"event": "media", "sequenceNumber": "2", "media": {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": "$in1"}}`,
			`{"event": "media", "sequenceNumber": "3", "media": {"track": "outbound", "chunk": "1", "timestamp": "0", "payload": "$out1"}}`,
			`{"event": "media", "sequenceNumber": "4", "media": {"track": "inbound", "chunk": "2", "timestamp": "20", "payload": "$in2"}}`,
			`{"event": "media", "sequenceNumber": "5", "media": {"track": "outbound", "chunk": "2", "timestamp": "20", "payload": "$out2"}}`,
			`{"event": "media", "sequenceNumber": "6", "media": {"track": "inbound", "chunk": "3", "timestamp": "40", "payload": "$in3"}}`,
			`{"event": "dtmf", "sequenceNumber": "7", "dtmf": {"digit": "#", "duration": 240}}`,
			`{"event": "stop", "sequenceNumber": "8"}`,
		},
	},
	{
		file: "plivo-toplevel-ids.jsonl", codec: "mulaw", rate: 8000, frameMs: 20,
		note: "Plivo with callId/streamId at the top level of start and extra_headers in the comma form of Plivo's XML doc",
		lines: []string{
			`{"event": "start", "sequenceNumber": 1, "callId": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "streamId": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "start": {"accountId": "MAXXXXXXXXXXXXXXXXXX", "tracks": ["inbound"], "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000}}, "extra_headers": "test1=12,test2=123"}`,
			`{"event": "media", "sequenceNumber": 2, "streamId": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "media": {"track": "inbound", "timestamp": "1705312200000", "chunk": 1, "payload": "$in1"}, "extra_headers": "test1=12,test2=123"}`,
			`{"event": "media", "sequenceNumber": 3, "streamId": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "media": {"track": "inbound", "timestamp": "1705312200020", "chunk": 2, "payload": "$in2"}, "extra_headers": "test1=12,test2=123"}`,
			`{"event": "media", "sequenceNumber": 4, "streamId": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "media": {"track": "inbound", "timestamp": "1705312200040", "chunk": 3, "payload": "$in3"}, "extra_headers": "test1=12,test2=123"}`,
		},
	},
	{
		file: "plivo-calluuid.jsonl", codec: "mulaw", rate: 8000, frameMs: 20,
		note: "Plivo with start.callUUID and extra_headers as a JSON-object string",
		lines: []string{
			`{"event": "start", "sequenceNumber": 1, "start": {"callUUID": "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d", "streamId": "6d5c4b3a-2f1e-4d0c-8b9a-7f6e5d4c3b2a", "accountId": "SAYYYYYYYYYYYYYYYYYY", "tracks": ["inbound"], "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000}}, "extra_headers": "{\"userId\": \"12345\", \"sessionId\": \"abc-xyz\"}"}`,
			`{"event": "media", "sequenceNumber": 2, "streamId": "6d5c4b3a-2f1e-4d0c-8b9a-7f6e5d4c3b2a", "media": {"track": "inbound", "timestamp": "1705312200000", "chunk": 1, "payload": "$in1"}}`,
		},
	},
	{
		file: "plivo-strings.jsonl", codec: "mulaw", rate: 8000, frameMs: 20,
		note: "Plivo with its numbers (sequenceNumber, chunk, sampleRate) sent as strings and the timestamp as a number",
		lines: []string{
			`{"event": "start", "sequenceNumber": "1", "start": {"callId": "12345678-1234-1234-1234-123456789abc", "streamId": "87654321-4321-4321-4321-cba987654321", "accountId": "MAXXXXXXXXXXXXXXXXXX", "tracks": ["inbound"], "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": "8000"}}, "extra_headers": "userId=12345;sessionId=abc-xyz"}`,
			`{"event": "media", "sequenceNumber": "2", "streamId": "87654321-4321-4321-4321-cba987654321", "media": {"track": "inbound", "timestamp": 1705312200000, "chunk": "1", "payload": "$in1"}}`,
			`{"event": "media", "sequenceNumber": "3", "streamId": "87654321-4321-4321-4321-cba987654321", "media": {"track": "inbound", "timestamp": 1705312200020, "chunk": "2", "payload": "$in2"}}`,
		},
	},
	{
		file: "plivo-l16.jsonl", codec: "l16le", rate: 16000, frameMs: 20,
		note: "Plivo contentType audio/x-l16;rate=16000: little-endian per plivo-labs/agent-transport; the rate comes from the content type (no sampleRate); ends with the stop Plivo does not document",
		lines: []string{
			`{"event": "start", "sequenceNumber": 1, "start": {"callId": "12345678-1234-1234-1234-123456789abc", "streamId": "2b3c4d5e-6f70-4819-a2b3-c4d5e6f70819", "accountId": "MAXXXXXXXXXXXXXXXXXX", "tracks": ["inbound"], "mediaFormat": {"encoding": "audio/x-l16;rate=16000"}}, "extra_headers": "userId=12345;sessionId=abc-xyz"}`,
			`{"event": "media", "sequenceNumber": 2, "streamId": "2b3c4d5e-6f70-4819-a2b3-c4d5e6f70819", "media": {"track": "inbound", "timestamp": "1705312200000", "chunk": 1, "payload": "$in1"}, "extra_headers": "userId=12345;sessionId=abc-xyz"}`,
			`{"event": "media", "sequenceNumber": 3, "streamId": "2b3c4d5e-6f70-4819-a2b3-c4d5e6f70819", "media": {"track": "inbound", "timestamp": "1705312200020", "chunk": 2, "payload": "$in2"}, "extra_headers": "userId=12345;sessionId=abc-xyz"}`,
			`{"event": "media", "sequenceNumber": 4, "streamId": "2b3c4d5e-6f70-4819-a2b3-c4d5e6f70819", "media": {"track": "inbound", "timestamp": "1705312200040", "chunk": 3, "payload": "$in3"}, "extra_headers": "userId=12345;sessionId=abc-xyz"}`,
			`{"event": "stop", "sequenceNumber": 5, "streamId": "2b3c4d5e-6f70-4819-a2b3-c4d5e6f70819"}`,
		},
	},
	{
		file: "vobiz.jsonl", codec: "l16be", rate: 16000, frameMs: 20,
		note: "Vobiz audio/x-l16 at 16 kHz (the stream-events doc example), big-endian per Vobiz's agent skill (uncorroborated by captures)",
		lines: []string{
			`{"sequenceNumber": 0, "event": "start", "start": {"callId": "5401fd2e-6344-40df-a22c-c8ffea7a92e7", "streamId": "c4dfd815-a92a-4140-ab85-5ff28c004116", "accountId": "500025", "tracks": ["inbound"], "mediaFormat": {"encoding": "audio/x-l16", "sampleRate": 16000}}, "extra_headers": "{}"}`,
			`{"sequenceNumber": 1, "streamId": "c4dfd815-a92a-4140-ab85-5ff28c004116", "event": "media", "media": {"track": "inbound", "timestamp": "1778597597071", "chunk": 1, "payload": "$in1"}, "extra_headers": "{}"}`,
			`{"sequenceNumber": 2, "streamId": "c4dfd815-a92a-4140-ab85-5ff28c004116", "event": "media", "media": {"track": "inbound", "timestamp": "1778597597091", "chunk": 2, "payload": "$in2"}, "extra_headers": "{}"}`,
			`{"sequenceNumber": 3, "streamId": "c4dfd815-a92a-4140-ab85-5ff28c004116", "event": "media", "media": {"track": "inbound", "timestamp": "1778597597111", "chunk": 3, "payload": "$in3"}, "extra_headers": "{}"}`,
			`{"event": "playedStream", "name": "response-3"}`,
			`{"sequenceNumber": 0, "event": "clearedAudio", "streamId": "c4dfd815-a92a-4140-ab85-5ff28c004116"}`,
		},
	},
	{
		file: "vobiz-reconnect-1.jsonl", codec: "mulaw", rate: 8000, frameMs: 20,
		note: "Vobiz maxRetries: the first socket of a call, closed without stop after two frames",
		lines: []string{
			`{"sequenceNumber": 0, "event": "start", "start": {"callId": "7e6d5c4b-3a29-4817-a6b5-c4d3e2f1a0b9", "streamId": "11111111-2222-4333-8444-555555555555", "accountId": "500025", "tracks": ["inbound"], "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000}}, "extra_headers": "{}"}`,
			`{"sequenceNumber": 1, "streamId": "11111111-2222-4333-8444-555555555555", "event": "media", "media": {"track": "inbound", "timestamp": "1778597600000", "chunk": 1, "payload": "$in1"}, "extra_headers": "{}"}`,
			`{"sequenceNumber": 2, "streamId": "11111111-2222-4333-8444-555555555555", "event": "media", "media": {"track": "inbound", "timestamp": "1778597600020", "chunk": 2, "payload": "$in2"}, "extra_headers": "{}"}`,
		},
	},
	{
		file: "vobiz-reconnect-2.jsonl", codec: "mulaw", rate: 8000, frameMs: 20,
		note: "Vobiz maxRetries: the reconnect of the same call, a new socket with a new start and streamId, the same callId; counters restart and the epoch timestamps continue after the gap",
		lines: []string{
			`{"sequenceNumber": 0, "event": "start", "start": {"callId": "7e6d5c4b-3a29-4817-a6b5-c4d3e2f1a0b9", "streamId": "66666666-7777-4888-9999-aaaaaaaaaaaa", "accountId": "500025", "tracks": ["inbound"], "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000}}, "extra_headers": "{}"}`,
			`{"sequenceNumber": 1, "streamId": "66666666-7777-4888-9999-aaaaaaaaaaaa", "event": "media", "media": {"track": "inbound", "timestamp": "1778597601040", "chunk": 1, "payload": "$in3"}, "extra_headers": "{}"}`,
		},
	},
	{
		file: "telnyx-reordered.jsonl", codec: "mulaw", rate: 8000, frameMs: 20,
		note: "Telnyx media frames out of order (Telnyx does not guarantee order): chunk 2 arrives before chunk 1, each keeping its own sequence_number",
		lines: []string{
			`{"event": "connected", "version": "1.0.0"}`,
			`{"event": "start", "sequence_number": "1", "start": {"user_id": "3e6f995f-85f7-4705-9741-53b116d28237", "call_control_id": "v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg", "call_session_id": "ff55a038-6f5d-11ef-9692-02420aeffb1f", "from": "+13122010094", "to": "+13122123456", "media_format": {"encoding": "audio/x-mulaw", "sample_rate": 8000, "channels": 1}}, "stream_id": "32de0dea-53cb-4b21-89a4-9e1819c043bc"}`,
			`{"event": "media", "sequence_number": "3", "media": {"track": "inbound", "chunk": "2", "timestamp": "25", "payload": "$in2"}, "stream_id": "32de0dea-53cb-4b21-89a4-9e1819c043bc"}`,
			`{"event": "media", "sequence_number": "2", "media": {"track": "inbound", "chunk": "1", "timestamp": "5", "payload": "$in1"}, "stream_id": "32de0dea-53cb-4b21-89a4-9e1819c043bc"}`,
			`{"event": "media", "sequence_number": "4", "media": {"track": "inbound", "chunk": "3", "timestamp": "45", "payload": "$in3"}, "stream_id": "32de0dea-53cb-4b21-89a4-9e1819c043bc"}`,
			`{"event": "error", "sequence_number": "5", "stream_id": "32de0dea-53cb-4b21-89a4-9e1819c043bc", "payload": {"code": 100003, "title": "malformed_frame", "detail": "The frame could not be parsed"}}`,
			`{"event": "stop", "sequence_number": "6", "stop": {"user_id": "3e6f995f-85f7-4705-9741-53b116d28237", "call_control_id": "v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg"}, "stream_id": "32de0dea-53cb-4b21-89a4-9e1819c043bc"}`,
		},
	},
	{
		file: "exotel-16k.jsonl", codec: "l16le", rate: 16000, frameMs: 100,
		note: "Exotel at ?sample-rate=16000: 100 ms frames of 3200 bytes, stop reason stopped",
		lines: []string{
			`{"event": "connected"}`,
			`{"event": "start", "sequence_number": "1", "stream_sid": "MZ9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d", "start": {"stream_sid": "MZ9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d", "call_sid": "CA9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d", "account_sid": "exotel-acct-sid", "from": "+919876543210", "to": "+918047491899", "custom_parameters": {"key1": "value1", "key2": "value2"}, "media_format": {"encoding": "audio/x-raw", "sample_rate": "16000", "bit_rate": "16"}}}`,
			`{"event": "media", "sequence_number": "2", "stream_sid": "MZ9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d", "media": {"chunk": "1", "timestamp": "100", "payload": "$in1"}}`,
			`{"event": "media", "sequence_number": "3", "stream_sid": "MZ9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d", "media": {"chunk": "2", "timestamp": "200", "payload": "$in2"}}`,
			`{"event": "stop", "sequence_number": "4", "stream_sid": "MZ9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d", "stop": {"call_sid": "CA9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d", "account_sid": "exotel-acct-sid", "reason": "stopped"}}`,
		},
	},
	{
		file: "exotel-numbers.jsonl", codec: "l16le", rate: 8000, frameMs: 100,
		note: "Exotel with numbers as JSON numbers (some Exotel examples do this) and raw/slin as the encoding",
		lines: []string{
			`{"event": "connected"}`,
			`{"event": "start", "sequence_number": 1, "stream_sid": "MZ4f0c1e1b2a3d4c5b6a79887766554433", "start": {"stream_sid": "MZ4f0c1e1b2a3d4c5b6a79887766554433", "call_sid": "CA1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f", "account_sid": "exotel-acct-sid", "from": "+919876543210", "to": "+918047491899", "media_format": {"encoding": "raw/slin", "sample_rate": 8000, "bit_rate": 16}}}`,
			`{"event": "media", "sequence_number": 2, "stream_sid": "MZ4f0c1e1b2a3d4c5b6a79887766554433", "media": {"chunk": 1, "timestamp": 100, "payload": "$in1"}}`,
			`{"event": "dtmf", "sequence_number": 3, "stream_sid": "MZ4f0c1e1b2a3d4c5b6a79887766554433", "dtmf": {"digit": "9", "duration": 100}}`,
			`{"event": "stop", "sequence_number": 4, "stream_sid": "MZ4f0c1e1b2a3d4c5b6a79887766554433", "stop": {"call_sid": "CA1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f", "account_sid": "exotel-acct-sid", "reason": "callended"}}`,
		},
	},
}

// mulawFrames are the μ-law payloads of the shared fixtures, reused so the
// μ-law variants carry audio with the hashes of expected.json.
func mulawFrames(t testing.TB) map[string]string {
	t.Helper()
	frames := map[string]string{}
	for _, src := range []struct{ file, track string }{{"twilio.jsonl", "in"}, {"twilio-both-tracks.jsonl", "out"}} {
		n := 0
		for _, line := range readLines(t, src.file) {
			var f struct {
				Event string
				Media struct{ Track, Payload string }
			}
			if err := json.Unmarshal(line, &f); err != nil {
				t.Fatal(err)
			}
			if f.Event == "media" && strings.HasPrefix(f.Media.Track, src.track) {
				n++
				frames[fmt.Sprintf("$%s%d", src.track, n)] = f.Media.Payload
			}
		}
	}
	return frames
}

// generate renders a variant's lines and the expected.json entry for them.
func (v variant) generate(t testing.TB, mulaw map[string]string) ([]byte, expectedFile) {
	exp := expectedFile{WireCodec: v.codec, SampleRate: v.rate, Note: v.note}
	var out bytes.Buffer
	for i, line := range v.lines {
		for _, tr := range []string{"in", "out"} {
			for k := 1; k <= 3; k++ {
				ph := fmt.Sprintf("$%s%d", tr, k)
				if !strings.Contains(line, ph) {
					continue
				}
				var payload []byte
				if v.codec == "mulaw" {
					b, err := base64.StdEncoding.DecodeString(mulaw[ph])
					if err != nil || len(b) == 0 {
						t.Fatalf("%s: no shared μ-law frame for %s", v.file, ph)
					}
					payload = b
				} else {
					track := map[string]string{"in": TrackInbound, "out": TrackOutbound}[tr]
					payload = encodeL16(tone(track, k, v.rate, v.rate*v.frameMs/1000), v.codec == "l16be")
				}
				line = strings.Replace(line, ph, base64.StdEncoding.EncodeToString(payload), 1)
				track := map[string]string{"in": TrackInbound, "out": TrackOutbound}[tr]
				exp.Media = append(exp.Media, describe(v.codec, v.rate, i+1, track, payload))
			}
		}
		out.WriteString(line)
		out.WriteByte('\n')
	}
	return out.Bytes(), exp
}

const variantsExpected = "expected-variants.json"

// TestVariantFixtures checks that the generated fixtures on disk are what
// the generator makes, so nobody edits a payload by hand; -update rewrites
// them.
func TestVariantFixtures(t *testing.T) {
	mulaw := mulawFrames(t)
	all := map[string]expectedFile{}
	for _, v := range variants {
		data, exp := v.generate(t, mulaw)
		all[v.file] = exp
		path := filepath.Join(fixtureDir, v.file)
		if *update {
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./bridge/provider -run TestVariantFixtures -update)", err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("%s differs from the generator; rerun with -update", v.file)
		}
	}
	data, err := json.MarshalIndent(all, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, '\n')
	path := filepath.Join(fixtureDir, variantsExpected)
	if *update {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) {
		t.Errorf("%s differs from the generator (%v); rerun with -update", variantsExpected, err)
	}
}

// TestToneMatchesSharedFixtures ties the generator to the shared audio: the
// Exotel fixture is the inbound tone at 8 kHz in 100 ms L16 frames, so
// regenerating it must reproduce expected.json's hashes exactly.
func TestToneMatchesSharedFixtures(t *testing.T) {
	exp := loadExpected(t)["exotel.jsonl"]
	for k, m := range exp.Media {
		payload := encodeL16(tone(TrackInbound, k+1, 8000, 800), false)
		if got := describe("l16le", 8000, m.Line, m.Track, payload); got.SHA256 != m.SHA256 {
			t.Errorf("frame %d: generated tone hash %s, expected.json %s", k+1, got.SHA256, m.SHA256)
		}
	}
}

// loadExpected reads expected.json and expected-variants.json.
func loadExpected(t testing.TB) map[string]expectedFile {
	t.Helper()
	all := map[string]expectedFile{}
	for _, name := range []string{"expected.json", variantsExpected} {
		data, err := os.ReadFile(filepath.Join(fixtureDir, name))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]expectedFile
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for k, v := range m {
			all[k] = v
		}
	}
	return all
}

// readLines returns the frames of a session fixture, one per line.
func readLines(t testing.TB, file string) [][]byte {
	t.Helper()
	f, err := os.Open(filepath.Join(fixtureDir, file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			lines = append(lines, bytes.Clone(sc.Bytes()))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// sessionFiles lists every inbound session fixture (not *.server.jsonl).
func sessionFiles(t testing.TB) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(fixtureDir, "*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, n := range names {
		if !strings.HasSuffix(n, ".server.jsonl") {
			files = append(files, filepath.Base(n))
		}
	}
	sort.Strings(files)
	return files
}
