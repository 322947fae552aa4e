package bridge

import (
	"cmp"
	"fmt"
	"runtime/debug"

	"github.com/callcaptions/bridge/bridge/provider"
)

// Where a recovered panic happened, as counted by Metrics.Panic (the label
// "where" of bridge_panics_total). The web layer adds its own ("http",
// "socket").
const (
	PanicCall  = "call"  // a call's own goroutine (documents, timers, finalization)
	PanicTrack = "track" // a track's speech-to-text feeder or results reader
)

// Fail ends the call with reason error, whatever its streams do next: every
// stream is asked to close, no stream may join it any more, and once the
// last one is gone the call is finalized as usual (WAVs closed and patched,
// call.json and transcript.json written, call.ended published). The web
// layer calls it when a socket goroutine of the call panicked; the call's
// own goroutines call it through recovered. err is kept as the call's
// error. Idempotent.
func (c *Call) Fail(err error) {
	c.mu.Lock()
	first := !c.failed
	c.failed = true
	c.rec.Error = cmp.Or(c.rec.Error, err.Error())
	c.recDirty = true
	c.mu.Unlock()
	if first {
		c.stopStreams(ReasonError)
	}
	c.signal()
}

// recovered handles a panic recovered on one of the call's goroutines: it
// is counted, logged once with its stack, and ends this call only.
func (c *Call) recovered(where string, v any, stack []byte) {
	c.env.metrics.Panic(where)
	c.log.Error().Str("where", where).Str("panic", fmt.Sprint(v)).Str("stack", string(stack)).
		Msg("panic recovered; the call ends with reason error")
	c.Fail(fmt.Errorf("internal error (%s): %v", where, v))
}

// guard runs fn and turns a panic in it into the end of the call. It is for
// the steps of finalization, each of which must run even when another
// failed: a WAV that is not closed is not playable.
func (c *Call) guard(where string, fn func()) {
	defer func() {
		if v := recover(); v != nil {
			c.recovered(where, v, debug.Stack())
		}
	}()
	fn()
}

// endReasonLocked is the reason the call ends with as things stand.
func (c *Call) endReasonLocked() string {
	if c.failed {
		return ReasonError
	}
	return c.lastReason
}

// join is addStream on the joining socket's goroutine, with a panic turned
// into the end of the call: the stream is refused and taken out of the call
// again (its socket will never end it).
func (c *Call) join(p provider.Name, st *provider.Start) (s *Stream, err error) {
	defer func() {
		if v := recover(); v != nil {
			c.mu.Lock()
			for o := range c.streams {
				if o.start == st {
					delete(c.streams, o)
				}
			}
			c.mu.Unlock()
			c.recovered(PanicCall, v, debug.Stack())
			s, err = nil, fmt.Errorf("internal error (call): %v", v)
		}
	}()
	return c.addStream(p, st)
}
