package main

import (
	"fmt"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/config"
	"github.com/callcaptions/bridge/stt"
	"github.com/callcaptions/bridge/stt/google/speechtest"
	"github.com/callcaptions/bridge/stt/session"
)

// TestGoogleConfigCopiesEveryField: every setting of config.Google reaches
// the engine's google.Config under the same name (InterimResults as its
// negation), and every field of the engine's has a setting.
func TestGoogleConfigCopiesEveryField(t *testing.T) {
	var g config.Google
	gv := reflect.ValueOf(&g).Elem()
	for i := range gv.NumField() {
		switch f := gv.Field(i); f.Kind() {
		case reflect.String:
			f.SetString(strconv.Itoa(i))
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(i + 1))
		case reflect.Float64:
			f.SetFloat(float64(i))
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{strconv.Itoa(i)}))
		default:
			t.Fatalf("config.Google.%s: no test value for %s", gv.Type().Field(i).Name, f.Kind())
		}
	}
	g.InterimResults = false
	m := session.NewMetrics(nil)
	gc := googleConfig(g, m)
	require.Same(t, m, gc.Metrics)
	require.True(t, gc.DisableInterimResults)

	engine := map[string]reflect.Value{}
	var flatten func(v reflect.Value)
	flatten = func(v reflect.Value) {
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.Anonymous {
				flatten(v.Field(i))
			} else if f.Name != "Metrics" && f.Name != "DisableInterimResults" {
				engine[f.Name] = v.Field(i)
			}
		}
	}
	flatten(reflect.ValueOf(gc))
	for i := range gv.NumField() {
		name := gv.Type().Field(i).Name
		if name == "InterimResults" {
			continue
		}
		e, ok := engine[name]
		require.True(t, ok, "config.Google.%s has no field in google.Config", name)
		require.Equal(t, gv.Field(i).Interface(), e.Interface(), "config.Google.%s is not copied", name)
		delete(engine, name)
	}
	require.Empty(t, engine, "google.Config fields without a setting")
}

// TestGoogleEngineWiring runs the bridge with --stt google against a local
// Speech server: the real client is used, and its finals reach the
// transcript on the call clock.
func TestGoogleEngineWiring(t *testing.T) {
	fake, addr := speechtest.Start(t, speechtest.Config{Echo: "hello from google"})

	cfg := testConfig(t)
	cfg.STT = "google"
	cfg.Google.Endpoint = addr
	cfg.Google.Insecure = true
	_, base := startBridge(t, cfg)

	const callSid, streamSid = "CA9000000000000000000000000000000a", "MZ9000000000000000000000000000000a"
	c := dial(t, base, "/media", nil)
	send(t, c, twilioStart(callSid, streamSid, []string{"inbound"}, nil))
	gen := bursts(300, 8000, 0, 0.5, 1)
	for k := range 100 { // 2 s
		send(t, c, twilioMedia(streamSid, "inbound", k+2, k+1, 20*k, mulawFrame(gen, 160*k, 160)))
	}
	send(t, c, twilioStop(streamSid, callSid, 200))
	waitEnded(t, base, callSid)
	var tr bridge.Transcript
	require.Equal(t, 200, getJSON(t, base, "/api/calls/"+callSid+"/transcript", &tr))
	require.Len(t, tr.Segments, 1)
	require.Equal(t, "hello from google", tr.Segments[0].Text)
	require.Equal(t, "inbound-1", tr.Segments[0].SegmentID)
	require.InDelta(t, 2000, tr.Segments[0].EndMs, 100, "the final ends where the audio did, on the call clock")
	configs := fake.Configs()
	require.NotEmpty(t, configs)
	require.Equal(t, int32(8000), configs[len(configs)-1].GetConfig().GetSampleRateHertz())
}

// TestGoogleFailuresThroughTheBridge plays calls in real time into a bridge
// whose Speech server refuses every stream, and counts the streams opened:
// a permanent error is one stream and one stt.failed for the whole call; an
// outage is retried ever more slowly, not once a second.
func TestGoogleFailuresThroughTheBridge(t *testing.T) {
	tests := []struct {
		code      codes.Code
		permanent bool
	}{
		{code: codes.PermissionDenied, permanent: true},
		{code: codes.InvalidArgument, permanent: true},
		{code: codes.Unavailable},
	}
	for i, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			fake, addr := speechtest.Start(t, speechtest.Config{Refuse: tt.code})

			cfg := testConfig(t)
			cfg.APIToken = authAPIToken
			cfg.STT = "google"
			cfg.Google.Endpoint = addr
			cfg.Google.Insecure = true
			// An outage scaled down ten times: 25 ms doubling to 1 s
			// stands for 250 ms doubling to 10 s, so 3.2 s of call
			// stand for 32 s.
			cfg.Google.BackoffInitial = 25 * time.Millisecond
			cfg.Google.BackoffMax = time.Second
			cfg.Google.MaxRetries = 1000 // the engine rides out the whole outage
			_, base := startBridge(t, cfg)

			callSid := fmt.Sprintf("CA91000000000000000000000000000%03d", i)
			streamSid := fmt.Sprintf("MZ91000000000000000000000000000%03d", i)
			c := dial(t, base, "/media", nil)
			send(t, c, twilioStart(callSid, streamSid, []string{"inbound"}, nil))
			// 3.2 s of speech-like audio at the pace a provider sends it:
			// long enough for several reopen delays of the track.
			const frames = 160
			gen := bursts(300, 8000, 0, 0.5, 1)
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for k := range frames {
				<-tick.C
				send(t, c, twilioMedia(streamSid, "inbound", k+2, k+1, 20*k, mulawFrame(gen, 160*k, 160)))
			}
			stopped := time.Now()
			send(t, c, twilioStop(streamSid, callSid, frames+2))
			rec := waitEndedVia(t, apiGet, base, callSid)
			require.Equal(t, int64(frames*160), rec.Tracks[0].Samples, "the recording is complete")

			var tr bridge.Transcript
			require.Equal(t, 200, apiGet(t, base, "/api/calls/"+callSid+"/transcript", &tr))
			failed := 0
			for _, ev := range tr.Events {
				if ev.Type == bridge.TypeSTTPrefix+stt.EventFailed {
					failed++
					require.Equal(t, tt.code.String(), ev.Code)
				}
			}
			opens := fake.Opens()
			if tt.permanent {
				require.Len(t, opens, 1, "a permanent error is never retried")
				require.Equal(t, 1, failed, "exactly one stt.failed:\n%+v", tr.Events)
				return
			}
			// Jittered backoff waits at least half of 25 ms, 50 ms, … 1 s:
			// at most 12 streams fit in the 3.2 s of the call. (The
			// engine keeps trying while the call's end drains, also
			// with backoff.)
			require.Zero(t, failed, "an outage is not a failure:\n%+v", tr.Events)
			during := 0
			for _, at := range opens {
				if at.Before(stopped) {
					during++
				}
			}
			require.GreaterOrEqual(t, during, 2, "an outage is retried")
			require.LessOrEqual(t, during, 12, "opens grow with the log of the call's length")
			delay := cfg.Google.BackoffInitial
			for j := 1; j < len(opens); j++ {
				require.GreaterOrEqual(t, opens[j].Sub(opens[j-1]), delay/2, "stream %d reopened too soon", j+1)
				delay = min(2*delay, cfg.Google.BackoffMax)
			}
		})
	}
}
