package provider

import (
	"bytes"
	"errors"
	"testing"
)

// mediaCase is one provider's steady state: its start frame, then two
// media frames of the same size that alternate (so the id and payload
// buffers are really reused, not just hit the same input twice).
type mediaCase struct {
	provider Name
	start    []byte
	media    [2][]byte
	binary   bool
}

func mediaCases(t testing.TB) []mediaCase {
	t.Helper()
	fromFile := func(name Name, file string, start, m1, m2 int) mediaCase {
		l := readLines(t, file)
		return mediaCase{provider: name, start: l[start-1], media: [2][]byte{l[m1-1], l[m2-1]}}
	}
	vonage := mediaCase{
		provider: Vonage,
		start:    []byte(`{"event":"websocket:connected","content-type":"audio/l16;rate=16000"}`),
		media:    [2][]byte{encodeL16(tone(TrackInbound, 1, 16000, 320), false), encodeL16(tone(TrackInbound, 2, 16000, 320), false)},
		binary:   true,
	}
	return []mediaCase{
		fromFile(Twilio, "twilio.jsonl", 2, 3, 4),
		fromFile(SignalWire, "signalwire-compat.jsonl", 2, 3, 4),
		fromFile(Plivo, "plivo.jsonl", 1, 2, 3),
		fromFile(Vobiz, "vobiz.jsonl", 1, 2, 3),
		fromFile(Telnyx, "telnyx.jsonl", 2, 3, 4),
		fromFile(Exotel, "exotel.jsonl", 2, 3, 4),
		vonage,
	}
}

func (c mediaCase) parse(p *Parser, i int, ev *Event) error {
	if c.binary {
		return p.ParseBinary(c.media[i%2], ev)
	}
	return p.Parse(c.media[i%2], ev)
}

// started is a parser that has parsed c's start frame, and that event.
func (c mediaCase) started(tb testing.TB) (*Parser, *Event) {
	tb.Helper()
	p, ev := NewParser(c.provider), &Event{}
	if err := p.Parse(c.start, ev); err != nil {
		tb.Fatal(err)
	}
	return p, ev
}

// TestMediaAllocations: once a parser has seen a media frame, parsing
// media allocates nothing, for every provider.
func TestMediaAllocations(t *testing.T) {
	for _, c := range mediaCases(t) {
		t.Run(string(c.provider), func(t *testing.T) {
			p, ev := c.started(t)
			for i := range 2 {
				if err := c.parse(p, i, ev); err != nil {
					t.Fatal(err)
				}
			}
			i := 0
			allocs := testing.AllocsPerRun(200, func() {
				if err := c.parse(p, i, ev); err != nil || ev.Kind != KindMedia {
					t.Fatal(err)
				}
				i++
			})
			if allocs != 0 {
				t.Errorf("%v allocations per media frame", allocs)
			}
		})
	}
}

func BenchmarkParseMedia(b *testing.B) {
	for _, c := range mediaCases(b) {
		b.Run(string(c.provider), func(b *testing.B) {
			p, ev := c.started(b)
			b.SetBytes(int64(len(c.media[0])))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := c.parse(p, i, ev); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func BenchmarkParseStart(b *testing.B) {
	for _, c := range mediaCases(b) {
		b.Run(string(c.provider), func(b *testing.B) {
			p := NewParser(c.provider)
			var ev Event
			b.SetBytes(int64(len(c.start)))
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Parse(c.start, &ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// fuzzSeeds adds every frame of every fixture (sessions and the frames we
// send back) to a fuzz corpus.
func fuzzSeeds(f *testing.F, add func(frame []byte)) {
	files := sessionFiles(f)
	for _, s := range []string{"twilio", "signalwire-compat", "plivo", "vobiz", "telnyx", "exotel"} {
		files = append(files, s+".server.jsonl")
	}
	for _, file := range files {
		for _, line := range readLines(f, file) {
			add(line)
		}
	}
	add([]byte(`{"event":"websocket:connected","content-type":"audio/l16;rate=16000","x":{"y":[1,2]}}`))
	add([]byte(`{"event":"websocket:dtmf","digit":"5","duration":260}`))
	add([]byte(`{"event":"start","start":{},"extra_headers":"{\"a\":\"b\"}"}`))
}

// fuzzParser checks one provider's parser on arbitrary input: no panic,
// every error wraps ErrMalformed, and what parses keeps its invariants.
// Each input is parsed whole, as a binary frame, and line by line through
// one parser so that state carried between frames is exercised too.
func fuzzParser(f *testing.F, name Name) {
	fuzzSeeds(f, func(frame []byte) { f.Add(frame) })
	f.Fuzz(func(t *testing.T, data []byte) {
		p := NewParser(name)
		var ev Event
		check := func(frame []byte, err error) {
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("error does not wrap ErrMalformed: %v", err)
				}
				return
			}
			if ev.Kind == KindMedia && len(ev.Payload) > len(frame) {
				t.Fatalf("payload of %d bytes from a %d-byte frame", len(ev.Payload), len(frame))
			}
			switch ev.Track {
			case "", TrackInbound, TrackOutbound:
			default:
				t.Fatalf("track %q", ev.Track)
			}
			if (ev.Kind == KindStart) != (ev.Start != nil) {
				t.Fatalf("kind %v with start %v", ev.Kind, ev.Start)
			}
			if s := ev.Start; s != nil {
				if len(s.CustomParameters) > MaxCustomParameters {
					t.Fatalf("%d custom parameters", len(s.CustomParameters))
				}
				for k, v := range s.CustomParameters {
					if k == "" || len(k) > MaxParameterKeyLen || len(v) > MaxParameterValueLen {
						t.Fatalf("custom parameter %q of %d bytes", k, len(v))
					}
				}
				switch s.Format.Encoding {
				case "", PCMU, PCMA, L16:
				default:
					t.Fatalf("encoding %q", s.Format.Encoding)
				}
				if s.Format.Encoding != "" && (s.Format.SampleRate <= 0 || s.Format.Channels <= 0) {
					t.Fatalf("format %+v", s.Format)
				}
			}
		}
		check(data, p.Parse(data, &ev))
		check(data, p.ParseBinary(data, &ev))
		for len(data) > 0 {
			line := data
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				line, data = data[:i], data[i+1:]
			} else {
				data = nil
			}
			check(line, p.Parse(line, &ev))
		}
	})
}

func FuzzParseTwilio(f *testing.F)     { fuzzParser(f, Twilio) }
func FuzzParseSignalWire(f *testing.F) { fuzzParser(f, SignalWire) }
func FuzzParsePlivo(f *testing.F)      { fuzzParser(f, Plivo) }
func FuzzParseVobiz(f *testing.F)      { fuzzParser(f, Vobiz) }
func FuzzParseTelnyx(f *testing.F)     { fuzzParser(f, Telnyx) }
func FuzzParseExotel(f *testing.F)     { fuzzParser(f, Exotel) }
func FuzzParseVonage(f *testing.F)     { fuzzParser(f, Vonage) }

// FuzzDetector feeds up to four frames split at newlines; bit i of binary
// makes frame i a binary frame. The detector must not panic, must decide or
// refuse within MaxDetectFrames, refuse only with ErrUnknownProvider, and
// name only valid providers.
func FuzzDetector(f *testing.F) {
	for _, s := range sessions {
		lines := readLines(f, s.file)
		var joined []byte
		for _, l := range lines[:min(3, len(lines))] {
			joined = append(append(joined, l...), '\n')
		}
		f.Add(joined, uint8(0))
	}
	fuzzSeeds(f, func(frame []byte) { f.Add(frame, uint8(0)) })
	f.Add([]byte("\x00\x01\n{}"), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, binary uint8) {
		var d Detector
		var (
			name Name
			done bool
			err  error
		)
		for i := 0; i < 4 && len(data) > 0; i++ {
			frame := data
			if j := bytes.IndexByte(data, '\n'); j >= 0 {
				frame, data = data[:j], data[j+1:]
			} else {
				data = nil
			}
			name, done, err = d.Feed(frame, binary&(1<<i) == 0)
			if i+1 >= MaxDetectFrames && !done && err == nil {
				t.Fatalf("undecided after %d frames", i+1)
			}
		}
		switch {
		case err != nil && !errors.Is(err, ErrUnknownProvider):
			t.Fatalf("refusal does not wrap ErrUnknownProvider: %v", err)
		case done && !name.Valid():
			t.Fatalf("detected %q", name)
		case done && err != nil:
			t.Fatalf("done with error %v", err)
		}
	})
}
