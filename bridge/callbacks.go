package bridge

import (
	"errors"
	"fmt"
	"time"
)

// Limits on provider status callbacks kept in call records.
const (
	// MaxCallbacksPerCall bounds a call record's callbacks: a stream sends
	// two or three (started, stopped, error); a call has a few streams.
	MaxCallbacksPerCall = 64
	// maxPendingCalls bounds the calls whose callbacks wait for their first
	// media socket; the oldest is dropped beyond it.
	maxPendingCalls = 1024
	// pendingTTL is how long such callbacks wait: a stream-started callback
	// precedes its socket by at most seconds.
	pendingTTL = 10 * time.Minute
)

// Where AttachCallback put a callback.
const (
	CallbackLive    = "live"    // the record of a call in progress
	CallbackStored  = "stored"  // the call.json of a call that has ended
	CallbackPending = "pending" // held for a call that has not started yet
)

// ErrTooManyCallbacks is returned when a call already holds
// MaxCallbacksPerCall callbacks.
var ErrTooManyCallbacks = errors.New("too many callbacks for this call")

// pendingCallbacks are callbacks for a call the bridge has not seen yet.
type pendingCallbacks struct {
	since time.Time
	list  []map[string]any
}

// AttachCallback adds a provider's status callback (stream started,
// stopped, failed …) to the record of call id: a live call's record
// (persisted with its next update), a stored call's call.json, or, since a
// provider's callback can arrive before the media socket it reports on,
// a short-lived pending list that the call's record takes when it starts.
// It returns where the callback went. cb must not be changed afterwards.
func (r *Registry) AttachCallback(id string, cb map[string]any) (string, error) {
	for {
		r.mu.Lock()
		c := r.active[id]
		if c == nil {
			defer r.mu.Unlock()
			return r.attachStoredLocked(id, cb)
		}
		r.mu.Unlock()
		c.mu.Lock()
		if c.ending {
			// Finalization writes the record a last time without it:
			// attach to the stored record once the call has moved there.
			c.mu.Unlock()
			<-c.done
			continue
		}
		if len(c.rec.Callbacks) >= MaxCallbacksPerCall {
			c.mu.Unlock()
			return "", fmt.Errorf("%w (%d)", ErrTooManyCallbacks, MaxCallbacksPerCall)
		}
		c.rec.Callbacks = append(c.rec.Callbacks, cb)
		c.recDirty = true
		c.mu.Unlock()
		c.signal()
		return CallbackLive, nil
	}
}

// attachStoredLocked adds cb to an ended call's stored record, or holds it
// for a call not seen yet. The record is written under the registry lock so
// that a stream starting the same call id cannot interleave with it.
func (r *Registry) attachStoredLocked(id string, cb map[string]any) (string, error) {
	rec, ok := r.pastLocked(id)
	if !ok {
		return CallbackPending, r.holdLocked(id, cb)
	}
	if len(rec.Callbacks) >= MaxCallbacksPerCall {
		return "", fmt.Errorf("%w (%d)", ErrTooManyCallbacks, MaxCallbacksPerCall)
	}
	rec.Callbacks = append(append([]map[string]any(nil), rec.Callbacks...), cb)
	files, err := r.cfg.Store.Open(id)
	if err == nil {
		err = files.WriteJSON("call.json", rec)
	}
	if err != nil {
		return "", fmt.Errorf("write the callback into call.json: %w", err)
	}
	r.rememberLocked(rec)
	return CallbackStored, nil
}

func (r *Registry) holdLocked(id string, cb map[string]any) error {
	now := r.now()
	if r.pending == nil {
		r.pending = map[string]*pendingCallbacks{}
	}
	for k, p := range r.pending {
		if now.Sub(p.since) > pendingTTL {
			delete(r.pending, k)
		}
	}
	p := r.pending[id]
	if p == nil {
		if len(r.pending) >= maxPendingCalls {
			var oldest string
			for k, q := range r.pending {
				if oldest == "" || q.since.Before(r.pending[oldest].since) {
					oldest = k
				}
			}
			delete(r.pending, oldest)
		}
		p = &pendingCallbacks{since: now}
		r.pending[id] = p
	}
	if len(p.list) >= MaxCallbacksPerCall {
		return fmt.Errorf("%w (%d)", ErrTooManyCallbacks, MaxCallbacksPerCall)
	}
	p.list = append(p.list, cb)
	return nil
}

// takePendingLocked hands over the callbacks held for a call that starts.
func (r *Registry) takePendingLocked(id string) []map[string]any {
	p := r.pending[id]
	if p == nil {
		return nil
	}
	delete(r.pending, id)
	if r.now().Sub(p.since) > pendingTTL {
		return nil
	}
	return p.list
}
