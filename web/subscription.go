package web

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"
)

// DisconnectError is returned by Next when the hub cuts a subscription off.
// The hub returns one of the Disconnect* values, so errors.Is works with
// them; Reason is meant for logs and close frames.
type DisconnectError struct {
	Reason string
}

func (e *DisconnectError) Error() string { return "web: subscriber disconnected: " + e.Reason }

// Reasons a subscription is cut off.
var (
	// DisconnectSlow: the outbox exceeded Outbox events or OutboxBytes.
	DisconnectSlow = &DisconnectError{Reason: "slow"}
	// DisconnectCallNotStarted: the call did not start within WaitTimeout.
	DisconnectCallNotStarted = &DisconnectError{Reason: "call_not_started"}
	// DisconnectShutdown: the hub was closed.
	DisconnectShutdown = &DisconnectError{Reason: "shutdown"}
	// DisconnectClusterUnavailable: the subscription follows another
	// replica's events, which can no longer reach this hub.
	DisconnectClusterUnavailable = &DisconnectError{Reason: "cluster_unavailable"}
)

// Subscription is one subscriber's view of the hub. Next must be called from
// one goroutine at a time; Close may be called from any goroutine.
type Subscription struct {
	hub    *Hub
	callID string
	all    bool
	// notify wakes Next. One slot is enough: Next re-reads the state after
	// every wake-up, so a pending signal covers any number of pushes.
	notify chan struct{}

	mu       sync.Mutex
	replay   []*message // the log snapshot taken at Subscribe, served first
	ri       int        // next replay index
	out      outbox     // live events
	maxLen   int
	maxBytes int
	err      error // terminal error Next returns, once replay and outbox are done or cleared
	eos      bool  // the call ended: io.EOF once drained
	detached bool  // no longer receives events nor counts as a subscriber
	closed   bool
	waiting  bool // the call has not started yet
	deadline time.Time
}

// Next returns the next encoded event (a JSON object, shared with other
// subscribers: do not modify it). It returns io.EOF after call.ended of a
// one-call subscription, a *DisconnectError when the hub cut the
// subscription off, ErrSubscriptionClosed after Close, or ctx's error.
func (s *Subscription) Next(ctx context.Context) ([]byte, error) { return s.next(ctx, nil) }

// errPingDue is next's answer when tick fired while it waited.
var errPingDue = errors.New("ping due")

// next is Next that also returns errPingDue when tick fires while it
// waits for an event: the caption socket's write loop pings on it.
func (s *Subscription) next(ctx context.Context, tick <-chan time.Time) ([]byte, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		s.mu.Lock()
		if s.err != nil {
			err := s.err
			s.mu.Unlock()
			return nil, err
		}
		if s.ri < len(s.replay) {
			m := s.replay[s.ri]
			s.replay[s.ri] = nil
			s.ri++
			s.mu.Unlock()
			return m.data, nil
		}
		if m, ok := s.out.pop(); ok {
			s.mu.Unlock()
			return m.data, nil
		}
		if s.eos {
			s.err = io.EOF
			s.mu.Unlock()
			return nil, io.EOF
		}
		var expired <-chan time.Time
		if s.waiting {
			d := time.Until(s.deadline)
			if d <= 0 {
				s.endLocked(DisconnectCallNotStarted)
				s.mu.Unlock()
				return nil, DisconnectCallNotStarted
			}
			if timer == nil {
				timer = time.NewTimer(d)
			}
			expired = timer.C
		}
		s.mu.Unlock()
		select {
		case <-s.notify:
		case <-expired:
		case <-tick:
			return nil, errPingDue
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close detaches the subscription from the hub, releases what it still
// holds and wakes a blocked Next, which then returns ErrSubscriptionClosed
// (or the *DisconnectError that ended it before). It is idempotent.
func (s *Subscription) Close() {
	s.mu.Lock()
	s.endLocked(ErrSubscriptionClosed)
	if s.err == nil || s.err == io.EOF {
		s.err = ErrSubscriptionClosed
	}
	s.replay = nil
	s.out = outbox{}
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	s.wake()
	if !already {
		s.hub.remove(s)
	}
}

func (s *Subscription) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// endLocked detaches s. With err nil the subscription drains and then
// returns io.EOF; otherwise everything pending is released and Next
// returns err. It reports whether s was attached.
func (s *Subscription) endLocked(err error) bool {
	if s.detached {
		return false
	}
	s.detached = true
	s.waiting = false
	s.hub.subscribers.Add(-1)
	if err == nil {
		s.eos = true
		return true
	}
	s.err = err
	s.replay = nil
	s.out = outbox{}
	return true
}

// end detaches s from outside its own goroutine: err nil after the call's
// call.ended, else the *DisconnectError that cuts it off.
func (s *Subscription) end(err error) {
	s.mu.Lock()
	s.endLocked(err)
	s.mu.Unlock()
	s.wake()
}

// push queues m. It reports false if s no longer takes events (detached
// before, or cut off as slow now).
func (s *Subscription) push(m *message) bool {
	s.mu.Lock()
	if s.detached {
		s.mu.Unlock()
		return false
	}
	s.waiting = false
	if s.out.push(m) {
		s.hub.droppedPartials.Add(1)
	}
	slow := s.out.live > s.maxLen || s.out.bytes > s.maxBytes
	var pending, pendingBytes int
	if slow {
		pending, pendingBytes = s.out.live, s.out.bytes
		s.endLocked(DisconnectSlow)
	}
	s.mu.Unlock()
	s.wake()
	if slow {
		s.hub.slow.Add(1)
		s.hub.log.Warn().Str("call_id", s.callID).Int("pending", pending).Int("pending_bytes", pendingBytes).
			Msg("slow subscriber disconnected")
	}
	return !slow
}

// outbox is a subscriber's queue of live events: a slice used as a FIFO
// from head, where a removed partial leaves a nil hole. Holes and the
