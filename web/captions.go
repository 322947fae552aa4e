package web

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/contrib/websocket"
)

// Subscriber socket parameters.
const (
	// pongWait is how long the socket may stay silent (browsers answer
	// pings automatically) before the reader gives up on the peer.
	pongWait = 60 * time.Second
	// closeGrace bounds the wait for the peer's reply to our close frame,
	// so that the frame is read before the connection is torn down.
	closeGrace = 5 * time.Second
	// readLimit: subscribers have nothing to say beyond control frames.
	readLimit = 4096
)

// Close codes of the subscriber socket beyond RFC 6455's.
const (
	CloseSlowConsumer   = 4008
	CloseCallNotStarted = 4004
	// CloseClusterUnavailable: the socket follows other replicas' events
	// (a call held by another replica, or all calls) and they cannot reach
	// this replica (its NATS connection is down). Reconnect with
	// after=<last seq>, here later or to another replica.
	CloseClusterUnavailable = 4503
)

// ServeWS serves GET /ws/captions[?call=<id>][&after=<seq>] on an upgraded
// connection: it subscribes to the hub and writes each event as one text
// frame. It returns only after every goroutine it started has exited. When
// the server ends the socket, the close frame says why:
//
//	1000 "call ended"            after call.ended of a one-call socket
//	1001 "shutdown"              the hub closed
//	1008 "invalid after"         after is not an unsigned integer (before subscribing)
//	1008 "after needs call"      after without call
//	1008 "invalid call"          call id longer than 256 bytes
//	1013 "too many subscribers"  MaxSubscribers or MaxPerCall reached
//	4004 "call not started"      the call did not start within WaitTimeout
//	4008 "slow consumer"         the outbox overflowed
//	4503 "cluster unavailable"   other replicas' events cannot reach this replica,
//	                             and the socket follows another replica's call or all calls
//
// Goroutines: the handler's own goroutine writes events, and a ping every
// 25 s between them; a reader goroutine consumes control frames and
// notices the peer leaving. The reader cancels the write loop's context
// when the connection fails; the write loop ends the reader by a read
// deadline.
func (h *Hub) ServeWS(c *websocket.Conn) {
	callID := c.Query("call")
	var after uint64
	if v := c.Query("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			h.refuse(c, websocket.ClosePolicyViolation, "invalid after")
			return
		}
		after = n
	}
	sub, err := h.Subscribe(callID, after)
	if err != nil {
		code, text := closeFor(err)
		h.refuse(c, code, text)
		return
	}
	defer sub.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rd := &readGuard{c: c}
	var wg sync.WaitGroup
	// A panic on the reader ends the socket: it is carried here and
	// re-raised once the reader has exited, for the socket's
	// RecoverHandler to count and log with its stack.
	var crash panicCatcher
	wg.Go(func() {
		defer cancel()
		defer crash.catch()
		rd.run()
	})

	err = h.writeEvents(ctx, c, sub)
	var werr writeError
	switch {
	case errors.Is(err, context.Canceled), errors.As(err, &werr):
		// The peer left or the connection failed: nothing more can be said.
		rd.stop(0)
	default:
		code, text := closeFor(err)
		if cerr := writeClose(c, code, text, h.cfg.WriteTimeout); cerr != nil {
			rd.stop(0)
		} else {
			rd.stop(closeGrace)
		}
	}
	cancel()
	wg.Wait()
	crash.rethrow()
	h.log.Debug().Str("call_id", callID).Err(err).Msg("subscriber socket closed")
}

// writeError marks a failed websocket write: the connection is unusable.
type writeError struct{ err error }

func (e writeError) Error() string { return "write event: " + e.err.Error() }
func (e writeError) Unwrap() error { return e.err }

// writeEvents writes each event as a text frame, and a ping every
// pingEvery, also while events flow: the peer's pongs keep the reader's
// deadline moving.
func (h *Hub) writeEvents(ctx context.Context, c *websocket.Conn, sub *Subscription) error {
	ping := time.NewTicker(h.pingEvery)
	defer ping.Stop()
	for {
		var data []byte
		var err error
		select {
		case <-ping.C:
			err = errPingDue
		default:
			data, err = sub.next(ctx, ping.C)
		}
		if err == errPingDue {
			if err := c.WriteControl(websocket.PingMessage, nil, time.Now().Add(h.cfg.WriteTimeout)); err != nil {
				return writeError{err}
			}
			continue
		}
		if err != nil {
			return err
		}
		if err := c.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout)); err != nil {
			return writeError{err}
		}
		if err := c.WriteMessage(websocket.TextMessage, data); err != nil {
			return writeError{err}
		}
	}
}

// refuse closes a connection that was never subscribed.
func (h *Hub) refuse(c *websocket.Conn, code int, text string) {
	if err := writeClose(c, code, text, h.cfg.WriteTimeout); err != nil {
		return
	}
	rd := &readGuard{c: c}
	rd.stop(closeGrace)
	rd.run()
}

// readGuard reads (and discards) everything the peer sends until the
// connection fails or its read deadline passes. The deadline is pushed back
// by every frame, until stop fixes it for good.
type readGuard struct {
	c       *websocket.Conn
	mu      sync.Mutex
	stopped bool
}

func (r *readGuard) run() {
	r.c.SetReadLimit(readLimit)
	r.extend()
	r.c.SetPongHandler(func(string) error { r.extend(); return nil })
	for {
		if _, _, err := r.c.ReadMessage(); err != nil {
			return
		}
		r.extend()
	}
}

func (r *readGuard) extend() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.stopped {
		_ = r.c.SetReadDeadline(time.Now().Add(pongWait))
	}
}

// stop makes the reader return at most grace from now (at once for 0).
func (r *readGuard) stop(grace time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	_ = r.c.SetReadDeadline(time.Now().Add(grace))
}

// closeFor maps why a subscription ended (or was refused) to a close frame.
func closeFor(err error) (code int, text string) {
	switch {
	case errors.Is(err, io.EOF):
		return websocket.CloseNormalClosure, "call ended"
	case errors.Is(err, DisconnectSlow):
		return CloseSlowConsumer, "slow consumer"
	case errors.Is(err, DisconnectCallNotStarted):
		return CloseCallNotStarted, "call not started"
	case errors.Is(err, DisconnectClusterUnavailable), errors.Is(err, ErrClusterUnavailable):
		return CloseClusterUnavailable, "cluster unavailable"
	case errors.Is(err, DisconnectShutdown), errors.Is(err, ErrHubClosed):
		return websocket.CloseGoingAway, "shutdown"
	case errors.Is(err, ErrTooManySubscribers), errors.Is(err, ErrTooManyForCall):
		return websocket.CloseTryAgainLater, "too many subscribers"
	case errors.Is(err, ErrAfterWithoutCall):
		return websocket.ClosePolicyViolation, "after needs call"
	case errors.Is(err, ErrInvalidCallID):
		return websocket.ClosePolicyViolation, "invalid call"
	}
	return websocket.CloseInternalServerErr, "internal error"
}
