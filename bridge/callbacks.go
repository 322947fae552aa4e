package bridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Limits on provider status callbacks. A stream sends two or three
// (started, stopped, error) of a few hundred bytes each; a call has a few
// streams.
const (
	// MaxCallbacksPerCall and MaxCallbackBytesPerCall bound the callbacks
	// of one call (attached or pending), in count and in JSON bytes. When
	// full, a further callback is refused (ErrTooManyCallbacks) and counted
	// as dropped, reason "call_full"; those kept are not touched.
	MaxCallbacksPerCall     = 64
	MaxCallbackBytesPerCall = 64 << 10
	// maxPendingCalls, maxPendingCallbacks and maxPendingBytes bound the
	// callbacks held for calls that have not started, in total. When full,
	// the callbacks of the call waiting longest are dropped until the new
	// one fits (counted, reason "pending_evicted"): a stream-started
	// callback precedes its socket by seconds, so the oldest is the least
	// likely to be claimed.
	maxPendingCalls     = 1024
	maxPendingCallbacks = 4096
	maxPendingBytes     = 1 << 20
	// pendingTTL is how long such callbacks wait; older ones are dropped
	// (counted, reason "expired").
	pendingTTL = 10 * time.Minute
)

// Where AttachCallback put a callback.
const (
	CallbackLive    = "live"    // the record of a call in progress
	CallbackStored  = "stored"  // the call.json of a call that has ended
	CallbackPending = "pending" // held for a call that has not started yet
)

// ErrTooManyCallbacks is returned when a call already holds its share of
// callbacks (MaxCallbacksPerCall, MaxCallbackBytesPerCall).
var ErrTooManyCallbacks = errors.New("too many callbacks for this call")

// pendingCallbacks are callbacks for calls the bridge has not seen yet.
type pendingCallbacks struct {
	calls     map[string]*pendingCall
	callbacks int // in all calls
	bytes     int // JSON bytes in all calls
}

type pendingCall struct {
	since time.Time
	list  []map[string]any
	bytes int
}

// callbackSize is what a callback costs in a call record: its JSON size.
func callbackSize(cb map[string]any) (int, error) {
	b, err := json.Marshal(cb)
	return len(b), err
}

func callbacksSize(cbs []map[string]any) int {
	n := 0
	for _, cb := range cbs {
		s, _ := callbackSize(cb) // kept callbacks were measured when they came
		n += s
	}
	return n
}

// PendingCallbacks is what the callbacks held for calls that have not
// started cost now: calls, callbacks and JSON bytes.
func (r *Registry) PendingCallbacks() (calls, callbacks, bytes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending.calls), r.pending.callbacks, r.pending.bytes
}

// AttachCallback adds a provider's status callback (stream started,
// stopped, failed …) to the record of call id: a live call's record
// (persisted with its next update), a stored call's call.json, or, since a
// provider's callback can arrive before the media socket it reports on,
// a short-lived pending list that the call's record takes when it starts.
// It returns where the callback went. cb must not be changed afterwards.
func (r *Registry) AttachCallback(id string, cb map[string]any) (string, error) {
	size, err := callbackSize(cb)
	if err != nil {
		return "", fmt.Errorf("encode the callback: %w", err)
	}
	if size > MaxCallbackBytesPerCall {
		r.metrics.callbacksDropped.WithLabelValues("call_full").Inc()
		return "", fmt.Errorf("%w: one callback of %d bytes (at most %d per call)", ErrTooManyCallbacks, size, MaxCallbackBytesPerCall)
	}
	for {
		c, rec, indexed, _ := r.claim(id, false) // not limited: never refused
		if c == nil {
			return r.attachStored(id, cb, size, rec, indexed)
		}
		ending, err := c.attachCallback(cb, size, func(n, held int) error { return r.fits(n, held, size) })
		if ending {
			// Finalization writes the record a last time without it:
			// attach to the stored record once the call has moved there.
			<-c.done
			continue
		}
		if err != nil {
			return "", err
		}
		return CallbackLive, nil
	}
}

// fits refuses a callback of size bytes for a call that holds n callbacks
// of held bytes already, and counts it.
func (r *Registry) fits(n, held, size int) error {
	if n >= MaxCallbacksPerCall || held+size > MaxCallbackBytesPerCall {
		r.metrics.callbacksDropped.WithLabelValues("call_full").Inc()
		return fmt.Errorf("%w (at most %d, %d bytes)", ErrTooManyCallbacks, MaxCallbacksPerCall, MaxCallbackBytesPerCall)
	}
	return nil
}

// attachStored adds cb to an ended call's stored record, or holds it for
// a call not seen yet. The caller has claimed id (busy): the record is
// read and written outside the registry lock, and a stream starting the
// same call id waits until it is written.
func (r *Registry) attachStored(id string, cb map[string]any, size int, indexed CallRecord, isIndexed bool) (string, error) {
	rec, ok := r.pastUnlocked(id, indexed, isIndexed)
	if !ok {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.releaseLocked(id)
		return CallbackPending, r.holdLocked(id, cb, size)
	}
	err := r.fits(len(rec.Callbacks), callbacksSize(rec.Callbacks), size)
	if err == nil {
		rec.Callbacks = append(slices.Clone(rec.Callbacks), cb)
		if err = r.writeRecord(rec); err != nil {
			err = fmt.Errorf("write the callback into call.json: %w", err)
		}
	}
	if err := r.settleStored(id, rec, err); err != nil {
		return "", err
	}
	return CallbackStored, nil
}

// settleStored ends an update of an ended call's stored record rec that
// claimed id: the claim is released and, when err says the update was
// written, rec becomes the record the registry remembers.
func (r *Registry) settleStored(id string, rec CallRecord, err error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.releaseLocked(id)
	if err != nil {
		return err
	}
	r.rememberLocked(rec)
	return nil
}

// holdLocked keeps cb for call id, which has not started, within the
// pending bounds.
func (r *Registry) holdLocked(id string, cb map[string]any, size int) error {
	now := r.cfg.Now()
	pc := &r.pending
	for k, p := range pc.calls {
		if now.Sub(p.since) > pendingTTL {
			r.dropPendingLocked(k, "expired")
		}
	}
	p := pc.calls[id]
	if p != nil {
		if err := r.fits(len(p.list), p.bytes, size); err != nil {
			return err
		}
	}
	for (p == nil && len(pc.calls) >= maxPendingCalls) || pc.callbacks >= maxPendingCallbacks || pc.bytes+size > maxPendingBytes {
		oldest := ""
		for k, q := range pc.calls {
			if k != id && (oldest == "" || q.since.Before(pc.calls[oldest].since)) {
				oldest = k
			}
		}
		if oldest == "" { // only this call's own: its per-call bound comes first
			r.metrics.callbacksDropped.WithLabelValues("call_full").Inc()
			return fmt.Errorf("%w (pending)", ErrTooManyCallbacks)
		}
		r.dropPendingLocked(oldest, "pending_evicted")
	}
	if p == nil {
		p = &pendingCall{since: now}
		pc.calls[id] = p
	}
	p.list = append(p.list, cb)
	p.bytes += size
	pc.callbacks++
	pc.bytes += size
	return nil
}

// dropPendingLocked forgets the callbacks held for id, counting them.
func (r *Registry) dropPendingLocked(id, reason string) {
	r.metrics.callbacksDropped.WithLabelValues(reason).Add(float64(len(r.takePendingLocked(id, true))))
}

// takePendingLocked hands over the callbacks held for a call that starts,
// dropping them once expired unless anyAge is set.
func (r *Registry) takePendingLocked(id string, anyAge bool) []map[string]any {
	p := r.pending.calls[id]
	if p == nil {
		return nil
	}
	if !anyAge && r.cfg.Now().Sub(p.since) > pendingTTL {
		r.dropPendingLocked(id, "expired")
		return nil
	}
	delete(r.pending.calls, id)
	r.pending.callbacks -= len(p.list)
	r.pending.bytes -= p.bytes
	return p.list
}
