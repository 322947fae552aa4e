package main

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/speech/apiv1/speechpb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/callcaptions/bridge/bridge"
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
