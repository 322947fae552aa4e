package provider

import (
	"fmt"
	"reflect"
	"testing"
)

// none marks an absent sequence number, chunk or timestamp in a want.
const none = -1

func base(kind Kind, name string, seq int64, stream string) Event {
	ev := Event{Kind: kind, Name: name, StreamID: stream}
	if seq != none {
		ev.Seq, ev.HasSeq = seq, true
	}
	return ev
}

func connected() Event { return Event{Kind: KindConnected, Name: "connected"} }

func start(seq int64, stream, call string, s *Start) Event {
	ev := base(KindStart, "start", seq, stream)
	ev.CallID, ev.Start = call, s
	return ev
}

func media(seq int64, stream, track string, chunk, ts int64) Event {
	ev := base(KindMedia, "media", seq, stream)
	ev.Track = track
	if chunk != none {
		ev.Chunk, ev.HasChunk = chunk, true
	}
	if ts != none {
		ev.TimestampMs, ev.HasTimestamp = ts, true
	}
	return ev
}

func dtmf(seq int64, stream, track, digit string, durMs int64) Event {
	ev := base(KindDTMF, "dtmf", seq, stream)
	ev.Track, ev.Digit, ev.DurationMs = track, digit, durMs
	return ev
}

func other(name string, seq int64, stream string) Event { return base(KindOther, name, seq, stream) }

func stop(seq int64, stream, call, reason string) Event {
	ev := base(KindStop, "stop", seq, stream)
	ev.CallID, ev.Reason = call, reason
	return ev
}

// vobizSession is the Vobiz stream-events doc example in format f.
func vobizSession(f Format) []Event {
	return []Event{
		start(0, vbStream, vbCall, &Start{CallID: vbCall, StreamID: vbStream, AccountID: "500025", Tracks: inOnly, Format: f}),
		media(1, vbStream, in, 1, 1778597597071),
		media(2, vbStream, in, 2, 1778597597091),
		media(3, vbStream, in, 3, 1778597597111),
		other("playedStream", none, ""),
		other("clearedAudio", 0, vbStream),
	}
}

const (
	twStream  = "MZ7c8817f8a231170163c51f360708d9a2"
	twStream2 = "MZ18ad3ab5a668481ce02b83e7395059f0"
	twCall    = "CA3ae75ffe1c5d8847e478556c07d07103"
	twAcct    = "AC9f3c1b2e4d5a60718293a4b5c6d7e8f9"
	swStream  = "7d56cc11-536d-4a45-b4fb-ed3d55be843b"
	plStream  = "87654321-4321-4321-4321-cba987654321"
	plCall    = "12345678-1234-1234-1234-123456789abc"
	vbStream  = "c4dfd815-a92a-4140-ab85-5ff28c004116"
	vbCall    = "5401fd2e-6344-40df-a22c-c8ffea7a92e7"
	txStream  = "32de0dea-53cb-4b21-89a4-9e1819c043bc"
	txCall    = "v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg"
	exStream  = "MZ4f0c1e1b2a3d4c5b6a79887766554433"
	exCall    = "CA1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f"
	in, out   = TrackInbound, TrackOutbound
)

var (
	inOnly  = []string{in}
	inOut   = []string{in, out}
	pcmu8k  = Format{Encoding: PCMU, Raw: "audio/x-mulaw", SampleRate: 8000, Channels: 1}
	plivoMu = Format{Encoding: PCMU, Raw: "audio/x-mulaw", SampleRate: 8000, Channels: 1, Order: LittleEndian}
	vobizMu = Format{Encoding: PCMU, Raw: "audio/x-mulaw", SampleRate: 8000, Channels: 1, Order: BigEndian}
	plivoHd = map[string]string{"userId": "12345", "sessionId": "abc-xyz"}
)

// sessions is what every line of every fixture must parse to. Payloads are
// checked separately against the decoded hashes of expected*.json.
var sessions = []struct {
	file     string
	provider Name
	want     []Event
}{
	{"twilio.jsonl", Twilio, []Event{
		connected(),
		start(1, twStream, twCall, &Start{CallID: twCall, StreamID: twStream, AccountID: twAcct, Tracks: inOnly, Format: pcmu8k,
			CustomParameters: map[string]string{"FirstName": "Jane", "LastName": "Doe", "RemoteParty": "Bob"}}),
		media(2, twStream, in, 1, 102),
		media(3, twStream, in, 2, 122),
		media(4, twStream, in, 3, 142),
		dtmf(5, twStream, in, "1", 0),
		other("mark", 6, twStream),
		stop(7, twStream, twCall, ""),
	}},
	{"twilio-both-tracks.jsonl", Twilio, []Event{
		connected(),
		start(1, twStream2, twCall, &Start{CallID: twCall, StreamID: twStream2, AccountID: twAcct, Tracks: inOut, Format: pcmu8k}),
		media(2, twStream2, out, 1, 5),
		media(3, twStream2, in, 1, 5),
		media(4, twStream2, out, 2, 25),
		media(5, twStream2, in, 2, 25),
		media(6, twStream2, out, 3, 45),
		media(7, twStream2, in, 3, 45),
		stop(8, twStream2, twCall, ""),
	}},
	{"twilio-toplevel-ids.jsonl", Twilio, []Event{
		connected(),
		start(1, "MZ0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e", "CA0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e", &Start{
			CallID: "CA0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e", StreamID: "MZ0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e", AccountID: twAcct, Tracks: inOnly, Format: pcmu8k}),
		media(2, "MZ0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e", in, 1, 102),
		media(3, "MZ0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e", in, 2, 122),
		media(4, "MZ0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e", in, 3, 142),
		stop(5, "MZ0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e", "CA0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e", ""),
	}},
	{"twilio-numbers.jsonl", Twilio, []Event{
		connected(),
		start(1, twStream, twCall, &Start{CallID: twCall, StreamID: twStream, AccountID: twAcct, Tracks: inOnly, Format: pcmu8k,
			CustomParameters: map[string]string{"Attempt": "2", "Vip": "true"}}),
		media(2, twStream, in, 1, 102),
		media(3, twStream, in, 2, 122),
		media(4, twStream, in, 3, 142),
		dtmf(5, twStream, in, "1", 0),
		stop(6, twStream, twCall, ""),
	}},
	{"signalwire-compat.jsonl", SignalWire, []Event{
		connected(),
		start(1, swStream, "76ac3c36-56da-4a3e-a0d6-b5f8df6da9ad", &Start{CallID: "76ac3c36-56da-4a3e-a0d6-b5f8df6da9ad", StreamID: swStream,
			AccountID: "b08dacad-2f6c-4de1-93d6-cc732e0c69c5", Tracks: inOnly, Format: pcmu8k,
			CustomParameters: map[string]string{"Cookie": "948f9938-299a-d43e-0df4-af3a7eccb0ac", "Type": "SIP"}}),
		media(2, "", in, 1, 0),
		media(3, "", in, 2, 20),
		media(4, "", in, 3, 40),
		dtmf(5, swStream, "", "5", 2000),
		other("mark", none, swStream),
		stop(6, "", "", ""),
	}},
	{"signalwire-swml.jsonl", SignalWire, []Event{
		connected(),
		start(1, "a3f1c2d4-5b6e-4f70-8a91-b2c3d4e5f607", "e2d7b1c9-0a4f-4f6e-9b3d-7c8a1e2f3b4c", &Start{
			CallID: "e2d7b1c9-0a4f-4f6e-9b3d-7c8a1e2f3b4c", StreamID: "a3f1c2d4-5b6e-4f70-8a91-b2c3d4e5f607",
			AccountID: "b08dacad-2f6c-4de1-93d6-cc732e0c69c5", Tracks: inOut,
			Format:           Format{Encoding: L16, Raw: "audio/x-L16", SampleRate: 16000, Channels: 1, Order: OrderUnknown},
			CustomParameters: map[string]string{"caller_tier": "gold", "ticket": "T-1001"}}),
		media(2, "", in, 1, 0),
		media(3, "", out, 1, 0),
		media(4, "", in, 2, 20),
		media(5, "", out, 2, 20),
		media(6, "", in, 3, 40),
		dtmf(7, "", "", "#", 240),
		stop(8, "", "", ""),
	}},
	{"plivo.jsonl", Plivo, []Event{
		start(1, plStream, plCall, &Start{CallID: plCall, StreamID: plStream, AccountID: "MAXXXXXXXXXXXXXXXXXX", Tracks: inOnly, Format: plivoMu,
			CustomParameters: plivoHd}),
		media(2, plStream, in, 1, 1705312200000),
		media(3, plStream, in, 2, 1705312200020),
		media(4, plStream, in, 3, 1705312200040),
		dtmf(5, plStream, in, "5", 0),
		other("playedStream", 6, plStream),
		other("clearedAudio", 7, plStream),
	}},
	{"plivo-toplevel-ids.jsonl", Plivo, []Event{
		start(1, "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", &Start{
			CallID: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", StreamID: "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", AccountID: "MAXXXXXXXXXXXXXXXXXX",
			Tracks: inOnly, Format: plivoMu, CustomParameters: map[string]string{"test1": "12", "test2": "123"}}),
		media(2, "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", in, 1, 1705312200000),
		media(3, "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", in, 2, 1705312200020),
		media(4, "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", in, 3, 1705312200040),
	}},
	{"plivo-calluuid.jsonl", Plivo, []Event{
		start(1, "6d5c4b3a-2f1e-4d0c-8b9a-7f6e5d4c3b2a", "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d", &Start{
			CallID: "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d", StreamID: "6d5c4b3a-2f1e-4d0c-8b9a-7f6e5d4c3b2a", AccountID: "SAYYYYYYYYYYYYYYYYYY",
			Tracks: inOnly, Format: plivoMu, CustomParameters: plivoHd}),
		media(2, "6d5c4b3a-2f1e-4d0c-8b9a-7f6e5d4c3b2a", in, 1, 1705312200000),
	}},
	{"plivo-strings.jsonl", Plivo, []Event{
		start(1, plStream, plCall, &Start{CallID: plCall, StreamID: plStream, AccountID: "MAXXXXXXXXXXXXXXXXXX", Tracks: inOnly, Format: plivoMu,
			CustomParameters: plivoHd}),
		media(2, plStream, in, 1, 1705312200000),
		media(3, plStream, in, 2, 1705312200020),
	}},
	{"plivo-l16.jsonl", Plivo, []Event{
		start(1, "2b3c4d5e-6f70-4819-a2b3-c4d5e6f70819", plCall, &Start{CallID: plCall, StreamID: "2b3c4d5e-6f70-4819-a2b3-c4d5e6f70819",
			AccountID: "MAXXXXXXXXXXXXXXXXXX", Tracks: inOnly, CustomParameters: plivoHd,
			Format: Format{Encoding: L16, Raw: "audio/x-l16;rate=16000", SampleRate: 16000, Channels: 1, Order: LittleEndian}}),
		media(2, "2b3c4d5e-6f70-4819-a2b3-c4d5e6f70819", in, 1, 1705312200000),
		media(3, "2b3c4d5e-6f70-4819-a2b3-c4d5e6f70819", in, 2, 1705312200020),
		media(4, "2b3c4d5e-6f70-4819-a2b3-c4d5e6f70819", in, 3, 1705312200040),
		stop(5, "2b3c4d5e-6f70-4819-a2b3-c4d5e6f70819", "", ""),
	}},
	{"vobiz-mulaw.jsonl", Vobiz, vobizSession(vobizMu)},
	{"vobiz.jsonl", Vobiz, vobizSession(Format{Encoding: L16, Raw: "audio/x-l16", SampleRate: 16000, Channels: 1, Order: BigEndian})},
	{"vobiz-reconnect-1.jsonl", Vobiz, []Event{
		start(0, "11111111-2222-4333-8444-555555555555", "7e6d5c4b-3a29-4817-a6b5-c4d3e2f1a0b9", &Start{
			CallID: "7e6d5c4b-3a29-4817-a6b5-c4d3e2f1a0b9", StreamID: "11111111-2222-4333-8444-555555555555", AccountID: "500025",
			Tracks: inOnly, Format: vobizMu}),
		media(1, "11111111-2222-4333-8444-555555555555", in, 1, 1778597600000),
		media(2, "11111111-2222-4333-8444-555555555555", in, 2, 1778597600020),
	}},
	{"vobiz-reconnect-2.jsonl", Vobiz, []Event{
		start(0, "66666666-7777-4888-9999-aaaaaaaaaaaa", "7e6d5c4b-3a29-4817-a6b5-c4d3e2f1a0b9", &Start{
			CallID: "7e6d5c4b-3a29-4817-a6b5-c4d3e2f1a0b9", StreamID: "66666666-7777-4888-9999-aaaaaaaaaaaa", AccountID: "500025",
			Tracks: inOnly, Format: vobizMu}),
		media(1, "66666666-7777-4888-9999-aaaaaaaaaaaa", in, 1, 1778597601040),
	}},
	{"telnyx.jsonl", Telnyx, []Event{
		connected(),
		start(1, txStream, txCall, &Start{CallID: txCall, StreamID: txStream, AccountID: "3e6f995f-85f7-4705-9741-53b116d28237",
			From: "+13122010094", To: "+13122123456", CustomParameters: map[string]string{"client_state": "aGF2ZSBhIG5pY2UgZGF5ID1d"},
			Format: Format{Encoding: PCMU, Raw: "PCMU", SampleRate: 8000, Channels: 1, Order: BigEndian}}),
		media(2, txStream, in, 1, 5),
		media(3, txStream, in, 2, 25),
		media(4, txStream, in, 3, 45),
		dtmf(5, txStream, "", "1", 0),
		other("mark", 6, txStream),
		stop(7, txStream, txCall, ""),
	}},
	{"telnyx-reordered.jsonl", Telnyx, []Event{
		connected(),
		start(1, txStream, txCall, &Start{CallID: txCall, StreamID: txStream, AccountID: "3e6f995f-85f7-4705-9741-53b116d28237",
			From: "+13122010094", To: "+13122123456",
			Format: Format{Encoding: PCMU, Raw: "audio/x-mulaw", SampleRate: 8000, Channels: 1, Order: BigEndian}}),
		media(3, txStream, in, 2, 25),
		media(2, txStream, in, 1, 5),
		media(4, txStream, in, 3, 45),
		func() Event {
			ev := other("error", 5, txStream)
			ev.Reason = "The frame could not be parsed"
			return ev
		}(),
		stop(6, txStream, txCall, ""),
	}},
	{"exotel.jsonl", Exotel, []Event{
		connected(),
		start(1, exStream, exCall, &Start{CallID: exCall, StreamID: exStream, AccountID: "exotel-acct-sid", From: "+919876543210", To: "+918047491899",
			CustomParameters: map[string]string{"key1": "value1"},
			Format:           Format{Encoding: L16, Raw: "audio/x-raw", SampleRate: 8000, Channels: 1, Order: LittleEndian}}),
		media(2, exStream, "", 1, 100),
		media(3, exStream, "", 2, 200),
		media(4, exStream, "", 3, 300),
		dtmf(5, exStream, "", "5", 100),
		other("mark", 6, exStream),
		stop(7, exStream, exCall, "callended"),
	}},
	{"exotel-16k.jsonl", Exotel, []Event{
		connected(),
		start(1, "MZ9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d", "CA9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d", &Start{CallID: "CA9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d",
			StreamID: "MZ9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d", AccountID: "exotel-acct-sid", From: "+919876543210", To: "+918047491899",
			CustomParameters: map[string]string{"key1": "value1", "key2": "value2"},
			Format:           Format{Encoding: L16, Raw: "audio/x-raw", SampleRate: 16000, Channels: 1, Order: LittleEndian}}),
		media(2, "MZ9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d", "", 1, 100),
		media(3, "MZ9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d", "", 2, 200),
		stop(4, "MZ9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d", "CA9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d", "stopped"),
	}},
	{"exotel-numbers.jsonl", Exotel, []Event{
		connected(),
		start(1, exStream, exCall, &Start{CallID: exCall, StreamID: exStream, AccountID: "exotel-acct-sid", From: "+919876543210", To: "+918047491899",
			Format: Format{Encoding: L16, Raw: "raw/slin", SampleRate: 8000, Channels: 1, Order: LittleEndian}}),
		media(2, exStream, "", 1, 100),
		dtmf(3, exStream, "", "9", 100),
		stop(4, exStream, exCall, "callended"),
	}},
}

// TestConformance parses every line of every session fixture and checks
// kind, ids, tracks, placement, start metadata, DTMF and stop reasons, and
// that the decoded payload of every media line has the hash expected*.json
// gives for it.
func TestConformance(t *testing.T) {
	expected := loadExpected(t)
	covered := map[string]bool{}
	for _, s := range sessions {
		t.Run(s.file, func(t *testing.T) {
			covered[s.file] = true
			lines := readLines(t, s.file)
			if len(lines) != len(s.want) {
				t.Fatalf("%d lines, %d wants", len(lines), len(s.want))
			}
			exp, ok := expected[s.file]
			if !ok {
				t.Fatalf("no entry in expected*.json")
			}
			media := map[int]expectedMedia{}
			for _, m := range exp.Media {
				media[m.Line] = m
			}
			p := NewParser(s.provider)
			var format Format
			var ev Event
			for i, line := range lines {
				n := i + 1
				if err := p.Parse(line, &ev); err != nil {
					t.Fatalf("line %d: %v", n, err)
				}
				if ev.Warning != "" {
					t.Errorf("line %d: unexpected warning %q", n, ev.Warning)
				}
				got := ev
				got.Payload = nil
				if ev.Start != nil {
					format = ev.Start.Format
				}
				if !reflect.DeepEqual(got, s.want[i]) {
					t.Errorf("line %d:\n got  %s\n want %s", n, dump(got), dump(s.want[i]))
				}
				m, isMedia := media[n]
				if isMedia != (ev.Kind == KindMedia) {
					t.Fatalf("line %d: kind %v, expected*.json media entry %v", n, ev.Kind, isMedia)
				}
				if !isMedia {
					continue
				}
				checkFormat(t, format, exp)
				got2 := describe(exp.WireCodec, exp.SampleRate, n, m.Track, ev.Payload)
				if ev.Track != "" && ev.Track != m.Track {
					t.Errorf("line %d: track %q, expected.json %q", n, ev.Track, m.Track)
				}
				if got2.SHA256 != m.SHA256 || got2.PayloadBytes != m.PayloadBytes || !reflect.DeepEqual(got2.First8, m.First8) || got2.Peak != m.Peak {
					t.Errorf("line %d: decoded %+v, expected %+v", n, got2, m)
				}
			}
		})
	}
	for _, f := range sessionFiles(t) {
		if !covered[f] {
			t.Errorf("fixture %s has no conformance entry", f)
		}
	}
}

// checkFormat ties the parsed format to the codec the fixture declares: the
// byte order the parser reports is the one the audio decodes correctly
// with (SignalWire reports none; its fixture is little-endian by choice).
func checkFormat(t *testing.T, f Format, exp expectedFile) {
	t.Helper()
	if f.SampleRate != exp.SampleRate {
		t.Errorf("sample rate %d, fixture %d", f.SampleRate, exp.SampleRate)
	}
	switch exp.WireCodec {
	case "mulaw":
		if f.Encoding != PCMU {
			t.Errorf("encoding %q, fixture μ-law", f.Encoding)
		}
	case "l16le":
		if f.Encoding != L16 || (f.Order != LittleEndian && f.Order != OrderUnknown) {
			t.Errorf("format %+v, fixture L16 little-endian", f)
		}
	case "l16be":
		if f.Encoding != L16 || f.Order != BigEndian {
			t.Errorf("format %+v, fixture L16 big-endian", f)
		}
	}
}

func dump(ev Event) string {
	s := fmt.Sprintf("%+v", ev)
	if ev.Start != nil {
		s += fmt.Sprintf(" start=%+v", *ev.Start)
	}
	return s
}

// TestVobizReconnect: a reconnect is a new socket with a new start and
// streamId for the same callId, which is what joins both to one call.
func TestVobizReconnect(t *testing.T) {
	var ids [2]*Start
	for i, f := range []string{"vobiz-reconnect-1.jsonl", "vobiz-reconnect-2.jsonl"} {
		var d Detector
		lines := readLines(t, f)
		name, done, err := d.Feed(lines[0], true)
		if err != nil || !done || name != Vobiz {
			t.Fatalf("%s: detected %q %v %v", f, name, done, err)
		}
		var ev Event
		if err := NewParser(name).Parse(lines[0], &ev); err != nil {
			t.Fatal(err)
		}
		ids[i] = ev.Start
	}
	if ids[0].CallID != ids[1].CallID || ids[0].StreamID == ids[1].StreamID {
		t.Errorf("reconnect: call ids %q %q, stream ids %q %q", ids[0].CallID, ids[1].CallID, ids[0].StreamID, ids[1].StreamID)
	}
}
