package web

import (
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"
)

// Where a recovered panic happened, as counted in bridge_panics_total
// beside the bridge's own (bridge.PanicCall, bridge.PanicTrack).
const (
	PanicHTTP   = "http"   // an HTTP handler: the request gets a 500
	PanicSocket = "socket" // a media or caption socket's goroutines: that socket closes
)

// errRecovered answers a request whose handler panicked. The panic itself
// is logged with its stack where it was recovered, not again by the error
// handler.
var errRecovered = fiber.NewError(fiber.StatusInternalServerError, "internal error")

// recoverHTTP turns a panic in any handler behind it into a 500 with the
// usual JSON error body, logged once with its stack and counted. Without it
// a panic would end fasthttp's worker and with it the process and every
// live call.
func (s *Server) recoverHTTP(c *fiber.Ctx) (err error) {
	defer func() {
		if v := recover(); v != nil {
			s.panicked(PanicHTTP, v, debug.Stack()).Str("method", c.Method()).Str("path", redactPath(c.Path())).
				Msg("HTTP handler panicked; answered 500")
			err = errRecovered
		}
	}()
	return c.Next()
}

// panicked counts a recovered panic and returns the error log entry that
// reports it, with the panic and its stack; the caller adds context and
// sends it.
func (s *Server) panicked(where string, v any, stack []byte) *zerolog.Event {
	s.metr.bridge.Panic(where)
	if rp, ok := v.(*socketPanic); ok {
		v, stack = rp.v, rp.stack
	}
	return s.log.Error().Str("where", where).Str("panic", fmt.Sprint(v)).Str("stack", string(stack))
}

// socketPanic is a panic recovered on a helper goroutine of a socket (a
// reader, a watcher), carried to the socket handler's own
// goroutine, which re-panics with it so that its RecoverHandler logs the
// original stack.
type socketPanic struct {
	v     any
	stack []byte
}

func (p *socketPanic) Error() string { return fmt.Sprint(p.v) }

// panicCatcher keeps the first panic of a socket's helper goroutines.
type panicCatcher struct {
	mu    sync.Mutex
	first *socketPanic
}

// catch is deferred at the top of a helper goroutine.
func (p *panicCatcher) catch() {
	if v := recover(); v != nil {
		p.mu.Lock()
		if p.first == nil {
			p.first = &socketPanic{v: v, stack: debug.Stack()}
		}
		p.mu.Unlock()
	}
}

// rethrow re-panics on the caller's goroutine with the first panic caught,
// if any. Called once the helper goroutines have exited: waiting for them
// orders their catch before this read.
func (p *panicCatcher) rethrow() {
	if p.first != nil {
		panic(p.first)
	}
}
