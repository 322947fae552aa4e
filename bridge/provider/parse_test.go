package provider

import (
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

const plivoL16Start = `{"event":"start","sequenceNumber":1,"start":{"callId":"c","streamId":"s","mediaFormat":{"encoding":"audio/x-l16;rate=16000"}}}`

// TestMalformed: every broken frame gives an error that wraps ErrMalformed
// and says what is wrong; nothing panics. Frames that are odd but usable
// parse, with a Warning where the bridge should know.
func TestMalformed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		provider Name
		before   string // a frame parsed first (a start, for its format)
		frame    string
		binary   bool
		err      string // "" when the frame must parse
	}{
		{"not JSON", Twilio, "", "hello", false, "parse twilio frame: not JSON"},
		{"empty", Telnyx, "", "", false, "parse telnyx frame: not JSON"},
		{"binary where JSON expected", Exotel, "", "\x00\xff\x80\x01\x02", false, "parse exotel frame: not JSON"},
		{"truncated JSON", Plivo, "", `{"event":"media","media":{"payload":"//8="`, false, "parse plivo frame: not JSON"},
		{"JSON array", Twilio, "", `[{"event":"media"}]`, false, "parse twilio frame: not a JSON object but array"},
		{"JSON string", Twilio, "", `"media"`, false, "parse twilio frame: not a JSON object but string"},
		{"missing event", Twilio, "", `{"sequenceNumber":"1","media":{"payload":"//8="}}`, false, "parse twilio frame: missing event"},
		{"event not a string", SignalWire, "", `{"event":5}`, false, "parse signalwire frame: event is number, not a string"},
		{"media object missing", Twilio, "", `{"event":"media","sequenceNumber":"2"}`, false, "parse twilio media: missing media object"},
		{"payload missing", Twilio, "", `{"event":"media","media":{"track":"inbound"}}`, false, "parse twilio media: missing payload"},
		{"payload not a string", Telnyx, "", `{"event":"media","media":{"payload":12}}`, false, "parse telnyx media: payload is number, not a string"},
		{"invalid base64", Twilio, "", `{"event":"media","media":{"track":"inbound","payload":"not base64!"}}`, false, "parse twilio media: invalid base64 payload: illegal base64 data at input byte"},
		{"unknown track", Twilio, "", `{"event":"media","media":{"track":"sideways","payload":"//8="}}`, false, `parse twilio media: unknown track "sideways"`},
		{"track not a string", Twilio, "", `{"event":"media","media":{"track":1,"payload":"//8="}}`, false, "parse twilio media: track is number, not a string"},
		{"chunk not a number", Twilio, "", `{"event":"media","media":{"chunk":"abc","payload":"//8="}}`, false, `parse twilio media: invalid chunk "\"abc\""`},
		{"timestamp fractional", Plivo, "", `{"event":"media","media":{"timestamp":1.5,"payload":"//8="}}`, false, "parse plivo media: invalid timestamp"},
		{"sequence number object", Vobiz, "", `{"event":"media","sequenceNumber":{},"media":{"payload":"//8="}}`, false, "parse vobiz media: invalid sequenceNumber"},
		{"start not an object", Twilio, "", `{"event":"start","start":"x"}`, false, "parse twilio start: start is string, not an object"},
		{"sample rate not a number", Twilio, "", `{"event":"start","start":{"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":"fast"}}}`, false, "parse twilio start: invalid sample rate"},
		{"sample rate negative", Exotel, "", `{"event":"start","start":{"media_format":{"sample_rate":"-8000"}}}`, false, "parse exotel start: invalid sample rate"},
		{"channels zero", Telnyx, "", `{"event":"start","start":{"media_format":{"channels":0}}}`, false, "parse telnyx start: invalid channels"},
		{"dtmf duration not a number", Exotel, "", `{"event":"dtmf","dtmf":{"digit":"5","duration":"long"}}`, false, "parse exotel dtmf: invalid duration"},
		{"frame over the limit", Twilio, "", `{"event":"media","media":{"payload":"` + strings.Repeat("A", MaxFrameSize) + `"}}`, false, "parse twilio frame: frame of"},
		{"binary frame on a text protocol", Twilio, "", "\x00\x01", true, "parse twilio binary frame: twilio sends only text frames"},
		{"binary frame over the limit", Vonage, "", strings.Repeat("\x00", MaxFrameSize+2), true, "parse vonage binary frame: frame of"},

		{"odd-length L16", Plivo, plivoL16Start, `{"event":"media","media":{"track":"inbound","payload":"AQID"}}`, false, ""},
		{"odd-length L16 binary", Vonage, "", "\x01\x02\x03", true, ""},
		{"odd-length μ-law is normal", Twilio, "", `{"event":"media","media":{"track":"inbound","payload":"AQID"}}`, false, ""},
		{"unpadded base64", Twilio, "", `{"event":"media","media":{"payload":"AQI"}}`, false, ""},
		{"escaped slash in base64", Twilio, "", `{"event":"media","media":{"payload":"\/\/8="}}`, false, ""},
		{"unknown event", Twilio, "", `{"event":"surprise","sequenceNumber":"9"}`, false, ""},
		{"null fields", Twilio, "", `{"event":"media","sequenceNumber":null,"media":{"track":null,"chunk":null,"timestamp":"","payload":""}}`, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewParser(tc.provider)
			var ev Event
			if tc.before != "" {
				if err := p.Parse([]byte(tc.before), &ev); err != nil {
					t.Fatal(err)
				}
			}
			var err error
			if tc.binary {
				err = p.ParseBinary([]byte(tc.frame), &ev)
			} else {
				err = p.Parse([]byte(tc.frame), &ev)
			}
			if tc.err == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.err)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("%v does not wrap ErrMalformed", err)
			}
			if !strings.HasPrefix(err.Error(), tc.err) {
				t.Errorf("error %q\n does not start with %q", err, tc.err)
			}
			if len(err.Error()) > 300 {
				t.Errorf("error of %d bytes repeats the input", len(err.Error()))
			}
			if !reflect.DeepEqual(ev, Event{}) {
				t.Errorf("failed frame left %s", dump(ev))
			}
		})
	}
}

// TestWarnings: odd L16 payloads are passed on whole (the codec drops the
// last byte) and flagged; μ-law payloads of any length are not.
func TestWarnings(t *testing.T) {
	var ev Event
	p := NewParser(Plivo)
	if err := p.Parse([]byte(plivoL16Start), &ev); err != nil {
		t.Fatal(err)
	}
	if err := p.Parse([]byte(`{"event":"media","media":{"payload":"AQID"}}`), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Warning != WarnOddPayload || len(ev.Payload) != 3 {
		t.Errorf("odd L16: warning %q, %d bytes", ev.Warning, len(ev.Payload))
	}
	tw := NewParser(Twilio)
	if err := tw.Parse([]byte(`{"event":"media","media":{"payload":"AQID"}}`), &ev); err != nil || ev.Warning != "" {
		t.Errorf("odd μ-law: %v, warning %q", err, ev.Warning)
	}
	v := NewParser(Vonage)
	if err := v.ParseBinary([]byte{1, 2, 3}, &ev); err != nil || ev.Warning != WarnOddPayload {
		t.Errorf("odd Vonage binary: %v, warning %q", err, ev.Warning)
	}
}

func TestUnknownProviderParser(t *testing.T) {
	var ev Event
	p := NewParser("skype")
	if err := p.Parse([]byte(`{"event":"start"}`), &ev); !errors.Is(err, ErrUnknownProvider) {
		t.Errorf("Parse: %v", err)
	}
	if err := p.ParseBinary([]byte{0}, &ev); !errors.Is(err, ErrUnknownProvider) {
		t.Errorf("ParseBinary: %v", err)
	}
}

// TestCustomParameterLimits: thousands of custom parameters, over-long
// keys and values keep at most the limits and count the rest, in every
// form they arrive in.
func TestCustomParameterLimits(t *testing.T) {
	const n = 5000
	var obj, kv strings.Builder
	obj.WriteString(`{"long_value":"` + strings.Repeat("v", MaxParameterValueLen+1) + `","` + strings.Repeat("k", MaxParameterKeyLen+1) + `":"x"`)
	for i := range n {
		fmt.Fprintf(&obj, `,"p%d":"v%d"`, i, i)
		fmt.Fprintf(&kv, "p%d=v%d;", i, i)
	}
	obj.WriteString("}")
	for _, tc := range []struct {
		name     string
		provider Name
		frame    string
		dropped  int
	}{
		{"twilio customParameters", Twilio, `{"event":"start","start":{"customParameters":` + obj.String() + `}}`, n + 2 - MaxCustomParameters},
		{"exotel custom_parameters", Exotel, `{"event":"start","start":{"custom_parameters":` + obj.String() + `}}`, n + 2 - MaxCustomParameters},
		{"plivo extra_headers k=v", Plivo, `{"event":"start","start":{},"extra_headers":"` + kv.String() + `"}`, n - MaxCustomParameters},
		{"plivo extra_headers JSON string", Plivo, `{"event":"start","start":{},"extra_headers":` + fmt.Sprintf("%q", obj.String()) + `}`, n + 2 - MaxCustomParameters},
		{"vonage headers", Vonage, strings.Replace(obj.String(), "{", `{"event":"websocket:connected","content-type":"audio/l16;rate=8000",`, 1), n + 2 - MaxCustomParameters},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ev Event
			if err := NewParser(tc.provider).Parse([]byte(tc.frame), &ev); err != nil {
				t.Fatal(err)
			}
			s := ev.Start
			if len(s.CustomParameters) != MaxCustomParameters || s.DroppedParameters != tc.dropped || ev.Warning != WarnDroppedParameters {
				t.Fatalf("%d kept, %d dropped (want %d), warning %q", len(s.CustomParameters), s.DroppedParameters, tc.dropped, ev.Warning)
			}
			for k, v := range s.CustomParameters {
				if len(k) > MaxParameterKeyLen || len(v) > MaxParameterValueLen {
					t.Fatalf("kept %d-byte key / %d-byte value", len(k), len(v))
				}
			}
		})
	}
}

// TestExtraHeaders: Plivo/Vobiz extra_headers in every documented form, and
// customParameters winning over extra_headers for the same key.
func TestExtraHeaders(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]string
	}{
		{`"userId=12345;sessionId=abc-xyz"`, map[string]string{"userId": "12345", "sessionId": "abc-xyz"}},
		{`"test1=12,test2=123"`, map[string]string{"test1": "12", "test2": "123"}},
		{`" a = 1 ; b=2;; "`, map[string]string{"a": "1", "b": "2"}},
		{`"flag;x=1"`, map[string]string{"flag": "", "x": "1"}},
		{`"{\"userId\":\"12345\",\"n\":7}"`, map[string]string{"userId": "12345", "n": "7"}},
		{`{"userId":"12345"}`, map[string]string{"userId": "12345"}},
		{`"{}"`, nil},
		{`""`, nil},
		{`"{not json"`, map[string]string{"{not json": ""}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var ev Event
			frame := `{"event":"start","start":{"callId":"c"},"extra_headers":` + tc.in + `}`
			if err := NewParser(Plivo).Parse([]byte(frame), &ev); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ev.Start.CustomParameters, tc.want) {
				t.Errorf("got %v, want %v", ev.Start.CustomParameters, tc.want)
			}
		})
	}
	var ev Event
	frame := `{"event":"start","start":{"customParameters":{"k":"from params"}},"extra_headers":"k=from headers;j=1"}`
	if err := NewParser(Plivo).Parse([]byte(frame), &ev); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"k": "from params", "j": "1"}; !reflect.DeepEqual(ev.Start.CustomParameters, want) {
		t.Errorf("merge: got %v, want %v", ev.Start.CustomParameters, want)
	}
}

// TestFormats: encodings normalised case-insensitively, rates from the
// field, the content-type parameter or the codec default, unsupported
// codecs reported with Encoding "" and Raw, and byte order per provider.
func TestFormats(t *testing.T) {
	for _, tc := range []struct {
		provider Name
		mf       string
		want     Format
	}{
		{Twilio, `{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}`, Format{PCMU, "audio/x-mulaw", 8000, 1, OrderUnknown}},
		{Twilio, ``, Format{PCMU, "", 8000, 1, OrderUnknown}},
		{SignalWire, `{"encoding":"audio/x-L16","sampleRate":24000}`, Format{L16, "audio/x-L16", 24000, 1, OrderUnknown}},
		{SignalWire, `{"encoding":"L16@24000h@40i"}`, Format{L16, "L16@24000h@40i", 24000, 1, OrderUnknown}},
		{SignalWire, `{"encoding":"PCMA"}`, Format{PCMA, "PCMA", 8000, 1, OrderUnknown}},
		{Plivo, `{"encoding":"audio/x-l16;rate=8000"}`, Format{L16, "audio/x-l16;rate=8000", 8000, 1, LittleEndian}},
		{Plivo, `{"encoding":"audio/x-l16; rate=16000"}`, Format{L16, "audio/x-l16; rate=16000", 16000, 1, LittleEndian}},
		{Plivo, `{"encoding":"audio/x-mulaw;rate=8000"}`, Format{PCMU, "audio/x-mulaw;rate=8000", 8000, 1, LittleEndian}},
		{Plivo, `{"sampleRate":8000}`, Format{"", "", 8000, 1, LittleEndian}},
		{Vobiz, `{"encoding":"AUDIO/X-L16;RATE=24000"}`, Format{L16, "AUDIO/X-L16;RATE=24000", 24000, 1, BigEndian}},
		{Vobiz, `{"encoding":"audio/x-l16;rate=24000","sampleRate":16000}`, Format{L16, "audio/x-l16;rate=24000", 16000, 1, BigEndian}},
		{Telnyx, `{"encoding":"PCMU","sample_rate":8000,"channels":1}`, Format{PCMU, "PCMU", 8000, 1, BigEndian}},
		{Telnyx, `{"encoding":"L16","sample_rate":16000}`, Format{L16, "L16", 16000, 1, BigEndian}},
		{Telnyx, `{"encoding":"OPUS","sample_rate":16000}`, Format{"", "OPUS", 16000, 1, BigEndian}},
		{Telnyx, `{"encoding":"G722","sample_rate":8000}`, Format{"", "G722", 8000, 1, BigEndian}},
		{Telnyx, `{"encoding":"AMR-WB","sample_rate":16000}`, Format{"", "AMR-WB", 16000, 1, BigEndian}},
		{Exotel, `{"encoding":"audio/x-raw","sample_rate":"24000","bit_rate":"16"}`, Format{L16, "audio/x-raw", 24000, 1, LittleEndian}},
		{Exotel, `{"encoding":"raw/slin","sample_rate":"8000","bit_rate":"8"}`, Format{"", "raw/slin (bit_rate 8)", 8000, 1, LittleEndian}},
		{Exotel, `{}`, Format{L16, "", 8000, 1, LittleEndian}},
	} {
		t.Run(string(tc.provider)+" "+tc.mf, func(t *testing.T) {
			frame := `{"event":"start","start":{"mediaFormat":` + tc.mf + `}}`
			if tc.mf == "" {
				frame = `{"event":"start","start":{}}`
			}
			var ev Event
			if err := NewParser(tc.provider).Parse([]byte(frame), &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Start.Format != tc.want {
				t.Errorf("got %+v, want %+v", ev.Start.Format, tc.want)
			}
		})
	}
}

func TestTracks(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`["inbound"]`, []string{in}},
		{`["outbound","inbound"]`, []string{in, out}},
		{`["inbound_track","outbound_track"]`, []string{in, out}},
		{`["both_tracks"]`, []string{in, out}},
		{`"both"`, []string{in, out}},
		{`["Inbound","sideways",7]`, []string{in}},
		{`[]`, nil},
	} {
		var ev Event
		if err := NewParser(Twilio).Parse([]byte(`{"event":"start","start":{"tracks":`+tc.in+`}}`), &ev); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ev.Start.Tracks, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.in, ev.Start.Tracks, tc.want)
		}
	}
}

// TestVonage: the text handshake becomes the start (L16 little-endian at
// the content-type's rate, headers as custom parameters), binary frames
// are inbound audio passed through byte for byte, websocket:dtmf is a key
// press.
func TestVonage(t *testing.T) {
	p := NewParser(Vonage)
	var ev Event
	hello := `{"event":"websocket:connected","content-type":"audio/l16;rate=16000","prompt":"hello","caller":14155550100,"vip":true,"meta":{"a":1},"none":null}`
	if err := p.Parse([]byte(hello), &ev); err != nil {
		t.Fatal(err)
	}
	want := &Start{Tracks: []string{in}, Format: Format{L16, "audio/l16;rate=16000", 16000, 1, LittleEndian},
		CustomParameters: map[string]string{"prompt": "hello", "caller": "14155550100", "vip": "true", "meta": `{"a":1}`, "none": ""}}
	if ev.Kind != KindStart || ev.Name != "websocket:connected" || !reflect.DeepEqual(ev.Start, want) {
		t.Fatalf("start: %s", dump(ev))
	}

	for k := 1; k <= 3; k++ {
		samples := tone(TrackInbound, k, 16000, 320)
		frame := encodeL16(samples, false)
		if err := p.ParseBinary(frame, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Kind != KindMedia || ev.Track != TrackInbound || ev.HasChunk || ev.HasTimestamp || ev.HasSeq {
			t.Fatalf("binary: %s", dump(ev))
		}
		frame[0] ^= 0xff // the payload is a copy, not the caller's frame
		if got := decodeRef("l16le", ev.Payload); !reflect.DeepEqual(got, samples) {
			t.Fatalf("frame %d: payload does not decode to the tone", k)
		}
	}

	if err := p.Parse([]byte(`{"event":"websocket:dtmf","digit":"5","duration":260}`), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Kind != KindDTMF || ev.Digit != "5" || ev.DurationMs != 260 {
		t.Fatalf("dtmf: %s", dump(ev))
	}
	if err := p.Parse([]byte(`{"event":"websocket:cleared"}`), &ev); err != nil || ev.Kind != KindOther || ev.Name != "websocket:cleared" {
		t.Fatalf("other: %v %s", err, dump(ev))
	}
	if err := p.Parse([]byte(`{"event":"websocket:connected","content-type":"audio/l16;rate=8000"}`), &ev); err != nil || ev.Start.Format.SampleRate != 8000 {
		t.Fatalf("8 kHz: %v %s", err, dump(ev))
	}
}

// TestPayloadAliasesBuffer documents the contract: Payload is valid until
// the next Parse, which reuses the same memory.
func TestPayloadAliasesBuffer(t *testing.T) {
	p := NewParser(Twilio)
	var a, b Event
	frame := func(s string) []byte {
		return []byte(`{"event":"media","media":{"track":"inbound","payload":"` + base64.StdEncoding.EncodeToString([]byte(s)) + `"}}`)
	}
	if err := p.Parse(frame("first"), &a); err != nil {
		t.Fatal(err)
	}
	if err := p.Parse(frame("other"), &b); err != nil {
		t.Fatal(err)
	}
	if string(a.Payload) != "other" || &a.Payload[0] != &b.Payload[0] {
		t.Errorf("payload does not alias the parser's buffer: %q", a.Payload)
	}
}

// TestIDReuse: the id strings of media frames are the ones kept from the
// start frame, not new copies.
func TestIDReuse(t *testing.T) {
	lines := readLines(t, "twilio.jsonl")
	p := NewParser(Twilio)
	var st, m Event
	if err := p.Parse(lines[1], &st); err != nil {
		t.Fatal(err)
	}
	if err := p.Parse(lines[2], &m); err != nil {
		t.Fatal(err)
	}
	if m.StreamID == "" || unsafe.StringData(m.StreamID) != unsafe.StringData(st.StreamID) {
		t.Errorf("media stream id %q is not the start's string", m.StreamID)
	}
}
