// Package speechtest is a fake Google Speech-to-Text v1 server for tests of
// the Google engine and of the bridge wired to it. It "recognises" words
// from the audio itself, so a test can say exactly which words must come out
// and where; it enforces Google's rules (the first message carries the
// config, request size, stream length, audio timeout) and can be scripted
// to fail streams in the ways Google does.
package speechtest

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
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

// A word is a burst of square wave at ±WordAmp(k); anything quieter than
// LoudLevel is silence. WordAmp is monotonic, so the fake reads k back from
// the level.
const (
	LoudLevel   = 1000
	WordAmpBase = 2000
	WordAmpStep = 8
)

// WordAmp is the amplitude that speaks word k.
func WordAmp(k int) int16 { return int16(WordAmpBase + WordAmpStep*k) }

// WordName is the text the fake recognises for word k.
func WordName(k int) string { return fmt.Sprintf("w%d", k) }

// Config holds the rules the fake enforces. Durations of audio are
// measured on the audio received, not on wall time, because tests send
// faster than real time.
type Config struct {
	// StreamLimit is the audio one stream may carry; default 305 s, as
	// Google.
	StreamLimit time.Duration
	// AudioTimeout is the wall time without an audio message after which a
	// stream that is not half-closed fails; default 10 s, about Google's.
	AudioTimeout time.Duration
	// Refuse, unless OK, fails every stream with this code as soon as it
	// has sent its config.
	Refuse codes.Code
	// Echo, if set, replaces word recognition: a stream answers its
	// half-close with one final of this text ending where its audio did.
	Echo string
	// Script, if set, runs after every audio message of stream n (1-based,
	// in opening order) and may end it with an error: a status error is
	// returned from the handler, an InBand one is sent in the response's
	// error field. ErrStall makes the stream stop reading; ErrEndOK ends
	// it with OK.
	Script func(n int, st State) error
	// KeepAudio keeps every audio message for Audio.
	KeepAudio bool
}

// State is what a Script sees of a stream after an audio message.
type State struct {
	Audio  time.Duration // audio received on this stream
	InWord bool          // a word is being spoken at the end of it
}

// InBand marks a scripted error sent in StreamingRecognizeResponse.error.
type InBand struct{ Err error }

func (e InBand) Error() string { return e.Err.Error() }

// ErrStall makes the fake stop reading the stream.
var ErrStall = errors.New("stall")

// ErrEndOK makes the fake end the stream at once with OK, unasked.
var ErrEndOK = errors.New("end ok")

// finalPause is the silence after a word that settles a final.
const finalPause = 400 * time.Millisecond

// MaxAudioBytes is the largest audio message the fake accepts (Google
// documents 25 KB).
const MaxAudioBytes = 25600

// Server is the fake; Start runs it.
type Server struct {
	speechpb.UnimplementedSpeechServer
	cfg Config

	mu        sync.Mutex
	opened    int
	opens     []time.Time // when each stream sent its config
	active    int
	maxActive int
	maxMsg    int
	configs   []*speechpb.StreamingRecognitionConfig
	failures  map[codes.Code]int // errors the fake returned, scripted or not
	timeouts  int
	samples   time.Duration // audio received over all streams
	audio     [][][]byte    // the audio messages of each stream, in opening order
	// Stop ends the server and waits for it; Start registers it as a
	// cleanup, a test may call it earlier to cut every stream.
	Stop func()
}

// Start serves the fake on a random local port until the test ends and
// returns it with its address.
func Start(t testing.TB, cfg Config) (*Server, string) {
	t.Helper()
	cfg.StreamLimit = cmp.Or(cfg.StreamLimit, 305*time.Second)
	cfg.AudioTimeout = cmp.Or(cfg.AudioTimeout, 10*time.Second)
	f := &Server{cfg: cfg, failures: map[codes.Code]int{}}
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
	f.Stop = sync.OnceFunc(func() {
		srv.Stop()
		<-done
	})
	t.Cleanup(f.Stop)
	return f, lis.Addr().String()
}

// Stats reports the streams opened, the most open at once, the largest
// audio message, the errors returned by code and the audio timeouts.
func (f *Server) Stats() (opened, maxActive, maxMsg int, failures map[codes.Code]int, timeouts int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.opened, f.maxActive, f.maxMsg, maps.Clone(f.failures), f.timeouts
}

// Heard is the audio received over all streams.
func (f *Server) Heard() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.samples
}

// Audio returns the audio messages each stream received, streams in
// opening order; Config.KeepAudio must be set.
func (f *Server) Audio() [][][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([][][]byte, len(f.audio))
	for i, msgs := range f.audio {
		out[i] = append([][]byte(nil), msgs...)
	}
	return out
}

// Configs are the valid configs streams sent, in order.
func (f *Server) Configs() []*speechpb.StreamingRecognitionConfig {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*speechpb.StreamingRecognitionConfig(nil), f.configs...)
}

// Opens are the times streams sent their config, in order.
func (f *Server) Opens() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.opens...)
}

type fword struct {
	k          int
	start, end int64 // samples on this stream
}

// stream is the recogniser state of one stream.
type stream struct {
	rate      int64
	interim   bool
	words     bool
	pos       int64
	inWord    bool
	cur       fword
	pending   []fword
	announced int // pending words + in-word state last reported in an interim
}

func (f *Server) fail(code codes.Code, msg string) error { return f.count(status.Error(code, msg)) }

// count records err as an error the fake returned and returns it.
func (f *Server) count(err error) error {
	f.locked(func() { f.failures[status.Code(err)]++ })
	return err
}

// locked runs fn with f.mu held.
func (f *Server) locked(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

func (f *Server) StreamingRecognize(srv speechpb.Speech_StreamingRecognizeServer) error {
	f.mu.Lock()
	f.opened++
	n := f.opened
	f.active++
	f.maxActive = max(f.maxActive, f.active)
	f.mu.Unlock()
	defer f.locked(func() { f.active-- })

	first, err := srv.Recv()
	if err != nil {
		return err
	}
	f.locked(func() { f.opens = append(f.opens, time.Now()) })
	if f.cfg.Refuse != codes.OK {
		return f.fail(f.cfg.Refuse, "refused by the test")
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
	f.locked(func() { f.configs = append(f.configs, sc) })

	st := &stream{rate: int64(rc.GetSampleRateHertz()), interim: sc.GetInterimResults(), words: rc.GetEnableWordTimeOffsets()}
	limit := int64(f.cfg.StreamLimit) * st.rate / int64(time.Second)
	pause := int64(finalPause) * st.rate / int64(time.Second)

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
			f.locked(func() { f.timeouts++ })
			return f.fail(codes.OutOfRange, "Audio Timeout Error: Long duration elapsed without audio. Audio should be sent close to real time.")
		case m = <-msgs:
		}
		if errors.Is(m.err, io.EOF) && f.cfg.Echo != "" {
			if st.pos == 0 {
				return nil
			}
			return srv.Send(&speechpb.StreamingRecognizeResponse{Results: []*speechpb.StreamingRecognitionResult{{
				Alternatives: []*speechpb.SpeechRecognitionAlternative{{Transcript: f.cfg.Echo, Confidence: 0.8}},
				IsFinal:      true, ResultEndTime: st.dur(st.pos),
			}}})
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
		if f.cfg.KeepAudio {
			for len(f.audio) < n {
				f.audio = append(f.audio, nil)
			}
			f.audio[n-1] = append(f.audio[n-1], append([]byte(nil), audio...))
		}
		f.maxMsg = max(f.maxMsg, len(audio))
		f.samples += time.Duration(int64(len(audio)/2) * int64(time.Second) / st.rate)
		f.mu.Unlock()
		if len(audio) > MaxAudioBytes {
			return f.fail(codes.InvalidArgument, fmt.Sprintf("Audio chunk can be of a maximum of %d bytes", MaxAudioBytes))
		}
		timeout.Reset(f.cfg.AudioTimeout)
		if f.cfg.Echo != "" {
			st.pos += int64(len(audio) / 2)
		} else if err := st.hear(srv, audio, pause); err != nil {
			return err
		}
		if st.pos > limit {
			return f.fail(codes.OutOfRange, "Exceeded maximum allowed stream duration of 305 seconds.")
		}
		if f.cfg.Script != nil {
			err := f.cfg.Script(n, State{Audio: time.Duration(st.pos * int64(time.Second) / st.rate), InWord: st.inWord})
			var ib InBand
			switch {
			case err == nil:
			case errors.Is(err, ErrStall):
				<-ctx.Done()
				return ctx.Err()
			case errors.Is(err, ErrEndOK):
				return nil
			case errors.As(err, &ib):
				s, _ := status.FromError(f.count(ib.Err))
				return srv.Send(&speechpb.StreamingRecognizeResponse{Error: s.Proto()})
			default:
				return f.count(err)
			}
		}
	}
}

func (st *stream) dur(samples int64) *durationpb.Duration {
	return durationpb.New(time.Duration(samples * int64(time.Second) / st.rate))
}

// hear runs the word detector over one audio message and sends the
// finals and interims it produces.
func (st *stream) hear(srv speechpb.Speech_StreamingRecognizeServer, audio []byte, pause int64) error {
	for i := 0; i+1 < len(audio); i += 2 {
		v := int(int16(uint16(audio[i]) | uint16(audio[i+1])<<8))
		if v < 0 {
			v = -v
		}
		loud := v >= LoudLevel
		switch {
		case loud && !st.inWord:
			st.inWord = true
			st.cur = fword{k: (v - WordAmpBase + WordAmpStep/2) / WordAmpStep, start: st.pos}
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
			Alternatives:  []*speechpb.SpeechRecognitionAlternative{{Transcript: " " + WordName(st.cur.k)}},
			Stability:     0.1,
			ResultEndTime: st.dur(st.pos),
		})
	}
	return srv.Send(&speechpb.StreamingRecognizeResponse{Results: results})
}

func (st *stream) endWord() {
	st.cur.end = st.pos
	st.pending = append(st.pending, st.cur)
	st.inWord = false
}

func (st *stream) text(ws []fword) string {
	names := make([]string, len(ws))
	for i, w := range ws {
		names[i] = WordName(w.k)
	}
	return strings.Join(names, " ")
}

// flush sends the pending words as one final.
func (st *stream) flush(srv speechpb.Speech_StreamingRecognizeServer) error {
	if len(st.pending) == 0 {
		return nil
	}
	alt := &speechpb.SpeechRecognitionAlternative{Transcript: st.text(st.pending), Confidence: 0.9}
	if st.words {
		for _, w := range st.pending {
			alt.Words = append(alt.Words, &speechpb.WordInfo{Word: WordName(w.k), StartTime: st.dur(w.start), EndTime: st.dur(w.end)})
		}
	}
	end := st.pending[len(st.pending)-1].end
	st.pending = nil
	st.announced = 0
	return srv.Send(&speechpb.StreamingRecognizeResponse{Results: []*speechpb.StreamingRecognitionResult{{
		Alternatives: []*speechpb.SpeechRecognitionAlternative{alt}, IsFinal: true, ResultEndTime: st.dur(end),
	}}})
}
