package session

import (
	"context"
	"reflect"
	"time"
)

// Engine is a streaming recognition service as a Stream sees it: it
// declares its limits, opens engine streams, and says what a failure
// means. Everything else (queueing, rotation, replay, hold, retries, the
// drain) is the Stream's, the same for every engine.
type Engine interface {
	// Limits are the engine's hard limits; a Policy is kept within them.
	Limits() Limits
	// Open starts one engine stream for the track, its configuration
	// sent. Cancelling ctx abandons it.
	Open(ctx context.Context) (Conn, error)
	// Failure classifies an error of Open or Conn.Recv.
	Failure(err error) Failure
}

// Conn is one engine stream. Send and CloseSend are called from one
// goroutine, Recv from another.
type Conn interface {
	// Send sends audio; it may block (flow control). An error means the
	// stream is broken: its status comes from Recv.
	Send(pcm []byte) error
	// CloseSend says no more audio comes; the engine settles its finals.
	CloseSend() error
	// Recv returns the next response; io.EOF at a clean end.
	Recv() (Response, error)
}

// Response is one engine response: hypotheses in the engine's order.
type Response []Hypothesis

// Hypothesis is one result of an engine stream, with times as offsets
// into the audio sent on that stream.
type Hypothesis struct {
	Final      bool
	Text       string // a partial's text is joined with the next partial's as is
	Stability  float64
	Confidence float64
	End        time.Duration
	Words      []WordTime
}

// WordTime is one word of a final with its offsets.
type WordTime struct {
	Word       string
	Start, End time.Duration
	Confidence float64
}

// Failure is what an engine stream's error means.
type Failure struct {
	Code    string // the engine's name for it, as in stt.StatusInfo.Code
	Message string
	// Retry is set when a new engine stream may work (an outage, a
	// limit); unset, the error would repeat (credentials, configuration).
	Retry bool
	// Slow asks for the slower backoff (a quota was exhausted).
	Slow bool
}

// Codes of failures a Stream detects itself.
const (
	CodeUnavailable      = "Unavailable"
	CodeDeadlineExceeded = "DeadlineExceeded"
)

// Limits are what an engine allows one engine stream.
type Limits struct {
	// MaxSession is the most audio one engine stream may carry.
	MaxSession time.Duration
	// MaxChunkBytes is the largest audio payload per Send.
	MaxChunkBytes int
	// AudioTimeout is the longest an engine stream may go without audio,
	// with a margin below the engine's own timeout; IdleClose stays
	// within it.
	AudioTimeout time.Duration
}

// Hold policies, what a stream does while the track carries no speech (see
// the package doc): HoldReopen closes the engine stream after SilenceClose
// of quiet audio and reopens it, PreRoll early, when speech returns (silence
// is not billed); HoldKeepAlive streams quiet audio like speech.
const (
	HoldReopen    = "reopen"
	HoldKeepAlive = "keepalive"
)

// Policy is how a Stream uses its engine. A zero field means
// DefaultPolicy's; the engine's configuration validates the rest.
type Policy struct {
	// RotateAfter is the audio after which an engine stream is replaced at
	// the next pause of RotatePause; at StreamLimit it is replaced
	// regardless.
	RotateAfter, StreamLimit, RotatePause time.Duration
	// Hold is HoldReopen or HoldKeepAlive.
	Hold string
	// IdleClose is the wall time without audio after which the engine
	// stream is half-closed; SilenceClose the quiet audio after which
	// HoldReopen half-closes it; quiet is an RMS at or below SilenceLevel.
	IdleClose, SilenceClose time.Duration
	SilenceLevel            int
	// PreRoll is the audio before the first loud chunk sent when a stream
	// reopens after a hold.
	PreRoll time.Duration
	// GapFill is the longest jump in positions sent as silence.
	GapFill time.Duration
	// ChunkDuration is the audio per Send.
	ChunkDuration time.Duration
	// QueueDuration bounds the audio waiting to be sent (beyond it the
	// newest is dropped and reported as a gap); ReplayLimit the
	// unfinalized audio kept for replay after a failure.
	QueueDuration, ReplayLimit time.Duration
	// DrainTimeout bounds the wait for a half-closed engine stream's last
	// results; SendTimeout a blocked Send.
	DrainTimeout, SendTimeout time.Duration
	// BackoffInitial doubles up to BackoffMax between reopen attempts;
	// after a Slow failure ExhaustedBackoff doubles up to 4×BackoffMax.
	BackoffInitial, BackoffMax, ExhaustedBackoff time.Duration
	// MaxRetries failed engine streams in a row without transcript text
	// stop the track.
	MaxRetries int
	// Metrics counts engine streams; nil counts nothing.
	Metrics *Metrics
}

// DefaultPolicy is the policy of the zero Policy's fields. Its rotation
// and hold fit Google's limits (305 s per stream, about 10 s without
// audio), which are the tightest of the engines.
func DefaultPolicy() Policy {
	return Policy{
		RotateAfter: 4*time.Minute + 30*time.Second, StreamLimit: 4*time.Minute + 50*time.Second,
		RotatePause: 300 * time.Millisecond,
		Hold:        HoldReopen, IdleClose: 3 * time.Second, SilenceClose: 10 * time.Second, SilenceLevel: 150,
		PreRoll: time.Second, GapFill: time.Second, ChunkDuration: 100 * time.Millisecond,
		QueueDuration: 10 * time.Second, ReplayLimit: 30 * time.Second,
		DrainTimeout: 10 * time.Second, SendTimeout: 10 * time.Second,
		BackoffInitial: 250 * time.Millisecond, BackoffMax: 10 * time.Second, ExhaustedBackoff: 2 * time.Second,
		MaxRetries: 8,
	}
}

// WithDefaults returns p with every zero field set to DefaultPolicy's.
func (p Policy) WithDefaults() Policy {
	v, d := reflect.ValueOf(&p).Elem(), reflect.ValueOf(DefaultPolicy())
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			v.Field(i).Set(d.Field(i))
		}
	}
	return p
}

// within fills in p's defaults and keeps it inside the engine's limits.
func (p Policy) within(l Limits) Policy {
	p = p.WithDefaults()
	if l.MaxSession > 0 {
		p.StreamLimit = min(p.StreamLimit, l.MaxSession)
	}
	if l.AudioTimeout > 0 {
		p.IdleClose = min(p.IdleClose, l.AudioTimeout)
	}
	return p
}
