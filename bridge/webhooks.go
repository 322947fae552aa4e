package bridge

import (
	"errors"
	"fmt"
	"slices"
)

// MaxWebhookFailures bounds the failed webhook deliveries a call record
// lists; later ones are logged and counted by the webhook metrics only.
const MaxWebhookFailures = 64

// errWebhookFailuresFull: the record lists MaxWebhookFailures already.
var errWebhookFailuresFull = errors.New("call record lists the most webhook failures it keeps")

// AttachWebhookFailure lists a webhook delivery that was given up on in
// the record of call id: a live call's (persisted with its next update)
// or an ended call's call.json. A call the bridge does not know is an
// error. It may wait for a call being finalized to be stored.
func (r *Registry) AttachWebhookFailure(id string, f WebhookFailure) error {
	for {
		c, rec, indexed, _ := r.claim(id, false)
		if c == nil {
			return r.attachWebhookStored(id, f, rec, indexed)
		}
		c.mu.Lock()
		if c.ending {
			c.mu.Unlock()
			<-c.done // the record moves to call.json: attach there
			continue
		}
		if len(c.rec.WebhooksFailed) >= MaxWebhookFailures {
			c.mu.Unlock()
			return errWebhookFailuresFull
		}
		c.rec.WebhooksFailed = append(c.rec.WebhooksFailed, f)
		c.recDirty = true
		c.mu.Unlock()
		c.signal()
		return nil
	}
}

// attachWebhookStored adds f to an ended call's call.json. The caller has
// claimed id (see attachStored).
func (r *Registry) attachWebhookStored(id string, f WebhookFailure, indexed CallRecord, isIndexed bool) error {
	rec, ok := r.pastUnlocked(id, indexed, isIndexed)
	var err error
	switch {
	case !ok:
		err = fmt.Errorf("call %q not found", id)
	case len(rec.WebhooksFailed) >= MaxWebhookFailures:
		err = errWebhookFailuresFull
	default:
		rec.WebhooksFailed = append(slices.Clone(rec.WebhooksFailed), f)
		if err = r.writeRecord(rec); err != nil {
			err = fmt.Errorf("write the webhook failure into call.json: %w", err)
		}
	}
	return r.settleStored(id, rec, err)
}
