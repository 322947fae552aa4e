package google

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/speech/apiv1/speechpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The fake Speech server "recognises" words from the audio itself, so a
// test can say exactly which words must come out and where. A word is a
// burst of square wave at ±wordAmp(k); anything quieter than loudLevel is
// silence. wordAmp is monotonic, so the fake reads k back from the level.
const (
	loudLevel   = 1000
	wordAmpBase = 2000
	wordAmpStep = 8
)

func wordAmp(k int) int16 { return int16(wordAmpBase + wordAmpStep*k) }
func wordName(k int) string {
	return fmt.Sprintf("w%d", k)
}

// fakeConfig holds the rules the fake enforces. Durations of audio are
// measured on the audio received, not on wall time, because tests send
// faster than real time.
type fakeConfig struct {
	// StreamLimit is the audio one stream may carry (Google: 305 s).
	StreamLimit time.Duration
	// AudioTimeout is the wall time without an audio message after which a
	// stream that is not half-closed fails (Google: about 10 s).
	AudioTimeout time.Duration
	// FinalPause is the silence after a word that settles a final.
	FinalPause time.Duration
	// Script, if set, runs after every audio message of stream n (1-based,
	// in opening order) and may end it with an error: a status error is
	// returned from the handler, an inBand one is sent in the response's
	// error field. errStall makes the stream stop reading; errEndOK ends
	// it with OK.
	Script func(n int, st fakeState) error
}

type fakeState struct {
	Audio  time.Duration // audio received on this stream
	InWord bool          // a word is being spoken at the end of it
}

// inBand marks a scripted error sent in StreamingRecognizeResponse.error.
type inBand struct{ err error }

func (e inBand) Error() string { return e.err.Error() }

var errStall = errors.New("stall")

// errEndOK makes the fake end the stream at once with OK, unasked.
var errEndOK = errors.New("end ok")

const maxAudioBytes = 25600

type fakeSpeech struct {
	speechpb.UnimplementedSpeechServer
	cfg fakeConfig

	mu        sync.Mutex
	opened    int
	active    int
	maxActive int
	maxMsg    int
	configs   []*speechpb.StreamingRecognitionConfig
	failures  map[codes.Code]int // errors the fake returned, scripted or not
	timeouts  int
	samples   time.Duration // audio received over all streams
	stop      func()
}

func startFake(t *testing.T, cfg fakeConfig) (*fakeSpeech, string) {
	t.Helper()
	if cfg.FinalPause == 0 {
		cfg.FinalPause = 400 * time.Millisecond
	}
	f := &fakeSpeech{cfg: cfg, failures: map[codes.Code]int{}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	speechpb.RegisterSpeechServer(srv, f)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	f.stop = sync.OnceFunc(func() {
		srv.Stop()
		<-done
	})
	t.Cleanup(f.stop)
	return f, lis.Addr().String()
}

func (f *fakeSpeech) stats() (opened, maxActive, maxMsg int, failures map[codes.Code]int, timeouts int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fs := map[codes.Code]int{}
	for k, v := range f.failures {
		fs[k] = v
	}
	return f.opened, f.maxActive, f.maxMsg, fs, f.timeouts
}

func (f *fakeSpeech) heard() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.samples
}

func (f *fakeSpeech) lastConfigs() []*speechpb.StreamingRecognitionConfig {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*speechpb.StreamingRecognitionConfig(nil), f.configs...)
}

type fword struct {
	k          int
	start, end int64 // samples on this stream
}

// fakeStream is the recogniser state of one stream.
type fakeStream struct {
	rate      int64
	interim   bool
	words     bool
	pos       int64
	inWord    bool
	cur       fword
	pending   []fword
	announced int // pending words + in-word state last reported in an interim
}

func (f *fakeSpeech) fail(code codes.Code, msg string) error {
	f.mu.Lock()
	f.failures[code]++
	f.mu.Unlock()
	return status.Error(code, msg)
}

func (f *fakeSpeech) StreamingRecognize(srv speechpb.Speech_StreamingRecognizeServer) error {
	f.mu.Lock()
	f.opened++
	n := f.opened
	f.active++
	f.maxActive = max(f.maxActive, f.active)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.active--
		f.mu.Unlock()
	}()

	first, err := srv.Recv()
	if err != nil {
		return err
	}
	sc := first.GetStreamingConfig()
	if sc == nil {
		return f.fail(codes.InvalidArgument, "Malformed request: the first message must contain streaming_config")
	}
	rc := sc.GetConfig()
	switch {
	case rc.GetEncoding() != speechpb.RecognitionConfig_LINEAR16:
		return f.fail(codes.InvalidArgument, "fake supports LINEAR16 only")
	case rc.GetSampleRateHertz() < 8000 || rc.GetSampleRateHertz() > 48000:
		return f.fail(codes.InvalidArgument, "sample_rate_hertz must be 8000..48000")
	case rc.GetLanguageCode() == "":
		return f.fail(codes.InvalidArgument, "language_code is required")
	case rc.GetAudioChannelCount() > 1:
		return f.fail(codes.InvalidArgument, "mono only")
	case rc.GetMaxAlternatives() > 30:
		return f.fail(codes.InvalidArgument, "max_alternatives must be 0..30")
	}
	for _, c := range rc.GetSpeechContexts() {
		if c.GetBoost() > 20 {
			return f.fail(codes.InvalidArgument, "boost must be at most 20")
		}
	}
	f.mu.Lock()
	f.configs = append(f.configs, sc)
	f.mu.Unlock()

	st := &fakeStream{rate: int64(rc.GetSampleRateHertz()), interim: sc.GetInterimResults(), words: rc.GetEnableWordTimeOffsets()}
	limit := int64(f.cfg.StreamLimit) * st.rate / int64(time.Second)
	pause := int64(f.cfg.FinalPause) * st.rate / int64(time.Second)

	// Recv runs apart so that the audio timeout can fire between messages.
	type msg struct {
		req *speechpb.StreamingRecognizeRequest
		err error
	}
	ctx := srv.Context()
	msgs := make(chan msg)
	go func() {
		for {
			req, err := srv.Recv()
			select {
			case msgs <- msg{req, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	timeout := time.NewTimer(f.cfg.AudioTimeout)
	defer timeout.Stop()
	for {
		var m msg
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout.C:
			f.mu.Lock()
			f.timeouts++
			f.mu.Unlock()
			return f.fail(codes.OutOfRange, "Audio Timeout Error: Long duration elapsed without audio. Audio should be sent close to real time.")
		case m = <-msgs:
		}
		if errors.Is(m.err, io.EOF) {
			// Half-close: settle everything heard, then end with OK.
			if st.inWord {
				st.endWord()
			}
			if err := st.flush(srv); err != nil {
				return err
			}
			return srv.Send(&speechpb.StreamingRecognizeResponse{TotalBilledTime: st.dur(st.pos)})
		}
		if m.err != nil {
			return m.err
		}
		if m.req.GetStreamingConfig() != nil {
			return f.fail(codes.InvalidArgument, "Malformed request: streaming_config is only allowed in the first message")
		}
		audio := m.req.GetAudioContent()
		f.mu.Lock()
		f.maxMsg = max(f.maxMsg, len(audio))
		f.samples += time.Duration(int64(len(audio)/2) * int64(time.Second) / st.rate)
		f.mu.Unlock()
		if len(audio) > maxAudioBytes {
			return f.fail(codes.InvalidArgument, fmt.Sprintf("Audio chunk can be of a maximum of %d bytes", maxAudioBytes))
		}
		timeout.Reset(f.cfg.AudioTimeout)
		if err := st.hear(srv, audio, pause); err != nil {
			return err
		}
		if st.pos > limit {
			return f.fail(codes.OutOfRange, "Exceeded maximum allowed stream duration of 305 seconds.")
		}
		if f.cfg.Script != nil {
			err := f.cfg.Script(n, fakeState{Audio: time.Duration(st.pos * int64(time.Second) / st.rate), InWord: st.inWord})
			var ib inBand
			switch {
			case err == nil:
			case errors.Is(err, errStall):
				<-ctx.Done()
				return ctx.Err()
			case errors.Is(err, errEndOK):
				return nil
			case errors.As(err, &ib):
				s, _ := status.FromError(ib.err)
				f.mu.Lock()
				f.failures[s.Code()]++
				f.mu.Unlock()
				return srv.Send(&speechpb.StreamingRecognizeResponse{Error: s.Proto()})
			default:
				f.mu.Lock()
				f.failures[status.Code(err)]++
				f.mu.Unlock()
				return err
			}
		}
	}
}

func (st *fakeStream) dur(samples int64) *durationpb.Duration {
	return durationpb.New(time.Duration(samples * int64(time.Second) / st.rate))
}

// hear runs the word detector over one audio message and sends the
// finals and interims it produces.
func (st *fakeStream) hear(srv speechpb.Speech_StreamingRecognizeServer, audio []byte, pause int64) error {
	for i := 0; i+1 < len(audio); i += 2 {
		v := int(int16(uint16(audio[i]) | uint16(audio[i+1])<<8))
		if v < 0 {
			v = -v
		}
		loud := v >= loudLevel
		switch {
		case loud && !st.inWord:
			st.inWord = true
			st.cur = fword{k: (v - wordAmpBase + wordAmpStep/2) / wordAmpStep, start: st.pos}
		case !loud && st.inWord:
			st.endWord()
		case !loud && len(st.pending) > 0 && st.pos-st.pending[len(st.pending)-1].end >= pause:
			if err := st.flush(srv); err != nil {
				return err
			}
		}
		st.pos++
	}
	if !st.interim {
		return nil
	}
	state := 2 * len(st.pending)
	if st.inWord {
		state++
	}
	if state == st.announced || state == 0 {
		return nil
	}
	st.announced = state
	var results []*speechpb.StreamingRecognitionResult
	if len(st.pending) > 0 {
		results = append(results, &speechpb.StreamingRecognitionResult{
			Alternatives:  []*speechpb.SpeechRecognitionAlternative{{Transcript: st.text(st.pending)}},
			Stability:     0.9,
			ResultEndTime: st.dur(st.pending[len(st.pending)-1].end),
		})
	}
	if st.inWord {
		results = append(results, &speechpb.StreamingRecognitionResult{
			Alternatives:  []*speechpb.SpeechRecognitionAlternative{{Transcript: " " + wordName(st.cur.k)}},
			Stability:     0.1,
			ResultEndTime: st.dur(st.pos),
		})
	}
	return srv.Send(&speechpb.StreamingRecognizeResponse{Results: results})
}

func (st *fakeStream) endWord() {
	st.cur.end = st.pos
	st.pending = append(st.pending, st.cur)
	st.inWord = false
}

func (st *fakeStream) text(ws []fword) string {
	names := make([]string, len(ws))
	for i, w := range ws {
		names[i] = wordName(w.k)
	}
	return strings.Join(names, " ")
}

// flush sends the pending words as one final.
func (st *fakeStream) flush(srv speechpb.Speech_StreamingRecognizeServer) error {
	if len(st.pending) == 0 {
		return nil
	}
	alt := &speechpb.SpeechRecognitionAlternative{Transcript: st.text(st.pending), Confidence: 0.9}
	if st.words {
		for _, w := range st.pending {
			alt.Words = append(alt.Words, &speechpb.WordInfo{Word: wordName(w.k), StartTime: st.dur(w.start), EndTime: st.dur(w.end)})
		}
	}
	end := st.pending[len(st.pending)-1].end
	st.pending = nil
	st.announced = 0
	return srv.Send(&speechpb.StreamingRecognizeResponse{Results: []*speechpb.StreamingRecognitionResult{{
		Alternatives: []*speechpb.SpeechRecognitionAlternative{alt}, IsFinal: true, ResultEndTime: st.dur(end),
	}}})
}
