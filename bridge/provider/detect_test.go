package provider

import (
	"errors"
	"strings"
	"testing"
)

// TestDetectFixtures: the detector names the right provider for every
// session fixture, after one frame for providers whose first frame decides
// (Vonage, Plivo, Vobiz) and two for those that open with "connected".
func TestDetectFixtures(t *testing.T) {
	for _, s := range sessions {
		t.Run(s.file, func(t *testing.T) {
			var d Detector
			lines := readLines(t, s.file)
			need := 2
			if s.provider == Plivo || s.provider == Vobiz {
				need = 1
			}
			for i, line := range lines {
				name, done, err := d.Feed(line, true)
				if err != nil {
					t.Fatalf("frame %d: %v", i+1, err)
				}
				if done {
					if name != s.provider || i+1 != need {
						t.Fatalf("detected %s after %d frames, want %s after %d", name, i+1, s.provider, need)
					}
					// Once decided, the answer does not change.
					if n, ok, err := d.Feed([]byte("garbage"), false); n != name || !ok || err != nil {
						t.Fatalf("after done: %s %v %v", n, ok, err)
					}
					return
				}
			}
			t.Fatalf("not decided after %d frames", len(lines))
		})
	}
}

const (
	twConnected  = `{"event":"connected","protocol":"Call","version":"1.0.0"}`
	txConnected  = `{"event":"connected","version":"1.0.0"}`
	exConnected  = `{"event":"connected"}`
	twStart      = `{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC9f3c1b2e4d5a60718293a4b5c6d7e8f9","streamSid":"MZ7c8817f8a231170163c51f360708d9a2","callSid":"CA3ae75ffe1c5d8847e478556c07d07103"},"streamSid":"MZ7c8817f8a231170163c51f360708d9a2"}`
	swStart      = `{"event":"start","sequenceNumber":"1","start":{"streamSid":"7d56cc11-536d-4a45-b4fb-ed3d55be843b","callSid":"76ac3c36-56da-4a3e-a0d6-b5f8df6da9ad"}}`
	txStart      = `{"event":"start","sequence_number":"1","start":{"call_control_id":"v3:abc"},"stream_id":"32de0dea-53cb-4b21-89a4-9e1819c043bc"}`
	twMedia      = `{"event":"media","sequenceNumber":"2","media":{"track":"inbound","chunk":"1","timestamp":"5","payload":"//8="},"streamSid":"MZ7c8817f8a231170163c51f360708d9a2"}`
	vonageHello  = `{"event":"websocket:connected","content-type":"audio/l16;rate=16000"}`
	plivoLikeFmt = `{"event":"start","sequenceNumber":%s,"start":{"callId":"12345678-1234-1234-1234-123456789abc","streamId":"87654321-4321-4321-4321-cba987654321"%s}}`
)

func plivoLike(seq, account string) string {
	acct := ""
	if account != "" {
		acct = `,"accountId":` + account
	}
	return strings.Replace(strings.Replace(plivoLikeFmt, "%s", seq, 1), "%s", acct, 1)
}

func TestDetect(t *testing.T) {
	type frame struct {
		data string
		text bool
	}
	txt := func(s string) frame { return frame{s, true} }
	for _, tc := range []struct {
		name   string
		frames []frame
		want   Name   // "" when refused
		reason string // part of the refusal
	}{
		{"vonage", []frame{txt(vonageHello)}, Vonage, ""},
		{"twilio 0.2.0 connected", []frame{txt(strings.Replace(twConnected, "1.0.0", "0.2.0", 1)), txt(twStart)}, Twilio, ""},
		{"signalwire 1.0.0 connected", []frame{txt(twConnected), txt(swStart)}, SignalWire, ""},
		{"twilio start without connected", []frame{txt(twStart)}, Twilio, ""},
		{"telnyx", []frame{txt(txConnected), txt(txStart)}, Telnyx, ""},
		{"connected then a mark then start", []frame{txt(twConnected), txt(`{"event":"mark"}`), txt(twStart)}, Twilio, ""},
		{"plivo by account", []frame{txt(plivoLike("1", `"MAXXXXXXXXXXXXXXXXXX"`))}, Plivo, ""},
		{"plivo sub-account", []frame{txt(plivoLike("1", `"SAYYYYYYYYYYYYYYYYYY"`))}, Plivo, ""},
		{"plivo account wins over sequence 0", []frame{txt(plivoLike("0", `"MAXXXXXXXXXXXXXXXXXX"`))}, Plivo, ""},
		{"vobiz by numeric account string", []frame{txt(plivoLike("1", `"500025"`))}, Vobiz, ""},
		{"vobiz by account number", []frame{txt(plivoLike("0", `500025`))}, Vobiz, ""},
		{"vobiz by sequence 0", []frame{txt(plivoLike("0", ""))}, Vobiz, ""},
		{"plivo by sequence 1", []frame{txt(plivoLike(`"1"`, ""))}, Plivo, ""},

		{"binary first", []frame{{"\x00\x01", false}}, "", "binary"},
		{"not JSON", []frame{txt("hello")}, "", "not JSON"},
		{"empty", []frame{txt("")}, "", "not JSON"},
		{"JSON array", []frame{txt(`[1,2]`)}, "", "not a JSON object"},
		{"no event", []frame{txt(`{"type":"start"}`)}, "", "no event name"},
		{"media first", []frame{txt(twMedia)}, "", `first frame is "media"`},
		{"unknown first event", []frame{txt(`{"event":"hello"}`)}, "", `first frame is "hello"`},
		{"start without ids", []frame{txt(`{"event":"start","start":{}}`)}, "", "no id of any known provider"},
		{"twilio-like ids that are neither", []frame{txt(twConnected), txt(`{"event":"start","start":{"streamSid":"abc","callSid":"def"}}`)}, "", "neither all Twilio SIDs"},
		{"twilio-like ids mixed", []frame{txt(twConnected), txt(`{"event":"start","start":{"streamSid":"MZ7c8817f8a231170163c51f360708d9a2","callSid":"76ac3c36-56da-4a3e-a0d6-b5f8df6da9ad"}}`)}, "", "neither all Twilio SIDs"},
		{"twilio connected, telnyx start", []frame{txt(twConnected), txt(txStart)}, "", "looks like telnyx"},
		{"telnyx connected, twilio start", []frame{txt(txConnected), txt(twStart)}, "", "looks like twilio"},
		{"exotel connected, twilio start", []frame{txt(exConnected), txt(twStart)}, "", "looks like twilio"},
		{"plivo or vobiz undecidable", []frame{txt(plivoLike("5", `"acct-1"`))}, "", "Plivo or Vobiz"},
		{"no start in three frames", []frame{txt(twConnected), txt(twMedia), txt(twMedia)}, "", "no start frame in the first 3"},
		{"second connected", []frame{txt(twConnected), txt(twConnected)}, "", "second connected"},
		{"vonage after connected", []frame{txt(twConnected), txt(vonageHello)}, "", "websocket:connected after"},
		{"binary after connected", []frame{txt(twConnected), {"\x00\x01", false}}, "", "frame 2 is binary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d Detector
			var (
				name Name
				done bool
				err  error
			)
			for i, f := range tc.frames {
				name, done, err = d.Feed([]byte(f.data), f.text)
				if (done || err != nil) && i != len(tc.frames)-1 {
					t.Fatalf("decided at frame %d of %d: %s %v", i+1, len(tc.frames), name, err)
				}
			}
			if tc.want != "" {
				if err != nil || !done || name != tc.want {
					t.Fatalf("got %q done=%v err=%v, want %s", name, done, err, tc.want)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrUnknownProvider) {
				t.Fatalf("got %q done=%v err=%v, want a refusal", name, done, err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("reason %q does not say %q", err, tc.reason)
			}
			if _, _, again := d.Feed([]byte(twStart), true); again != err {
				t.Fatalf("after a refusal Feed answered %v", again)
			}
		})
	}
}
