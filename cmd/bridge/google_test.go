package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/speech/apiv1/speechpb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/stt"
)

// echoSpeech is a minimal Speech server: it checks the stream's config and
// answers each stream with one final covering all the audio it received.
type echoSpeech struct {
	speechpb.UnimplementedSpeechServer
	configs atomic.Int32
	rate    atomic.Int32
}

func (e *echoSpeech) StreamingRecognize(s speechpb.Speech_StreamingRecognizeServer) error {
	first, err := s.Recv()
	if err != nil {
		return err
	}
	cfg := first.GetStreamingConfig().GetConfig()
	if cfg == nil {
		return errors.New("first request must carry the config")
	}
	e.configs.Add(1)
	e.rate.Store(cfg.GetSampleRateHertz())
	var bytes int
	for {
		req, err := s.Recv()
		if errors.Is(err, io.EOF) {
			if bytes == 0 {
				return nil
			}
			end := time.Duration(bytes/2) * time.Second / time.Duration(cfg.GetSampleRateHertz())
			return s.Send(&speechpb.StreamingRecognizeResponse{Results: []*speechpb.StreamingRecognitionResult{{
				Alternatives: []*speechpb.SpeechRecognitionAlternative{{Transcript: "hello from google", Confidence: 0.8}},
				IsFinal:      true, ResultEndTime: durationpb.New(end),
			}}})
		}
		if err != nil {
			return err
		}
		bytes += len(req.GetAudioContent())
	}
}

// TestGoogleEngineWiring runs the bridge with --stt google against a local
// Speech server: the real client is used, and its finals reach the
// transcript on the call clock.
func TestGoogleEngineWiring(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	fake := &echoSpeech{}
	speechpb.RegisterSpeechServer(srv, fake)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)

	cfg := testConfig(t)
	cfg.STT = "google"
	cfg.Google.Endpoint = ln.Addr().String()
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
	require.GreaterOrEqual(t, fake.configs.Load(), int32(1))
	require.Equal(t, int32(8000), fake.rate.Load())
}

// refusingSpeech is a Speech server that answers every stream with one
// error once it has the stream's config, and remembers when each stream
// was opened.
type refusingSpeech struct {
	speechpb.UnimplementedSpeechServer
	code codes.Code

	mu    sync.Mutex
	opens []time.Time
}

func (r *refusingSpeech) StreamingRecognize(s speechpb.Speech_StreamingRecognizeServer) error {
	if _, err := s.Recv(); err != nil {
		return err
	}
	r.mu.Lock()
	r.opens = append(r.opens, time.Now())
	r.mu.Unlock()
	return status.Error(r.code, "refused by the test")
}

func (r *refusingSpeech) opened() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.opens...)
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
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			srv := grpc.NewServer()
			fake := &refusingSpeech{code: tt.code}
			speechpb.RegisterSpeechServer(srv, fake)
			go func() { _ = srv.Serve(ln) }()
			t.Cleanup(srv.Stop)

			cfg := testConfig(t)
			cfg.APIToken = authAPIToken
			cfg.STT = "google"
			cfg.Google.Endpoint = ln.Addr().String()
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
			opens := fake.opened()
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
