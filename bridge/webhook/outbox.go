package webhook

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// delivery is one event for one endpoint, as the outbox keeps it.
type delivery struct {
	ID       string          `json:"id"`
	CallID   string          `json:"call_id"`
	Seq      uint64          `json:"seq"`
	Type     string          `json:"type"`
	QueuedAt time.Time       `json:"queued_at"`
	Body     json.RawMessage `json:"body"`
	// Attempts made so far, written back after each failed one, so a
	// restart goes on counting toward Config.Attempts.
	Attempts int `json:"attempts,omitempty"`

	file string // file name in the outbox directory
	size int64  // bytes of the file
}

// outbox keeps an endpoint's pending deliveries in one directory, one
// file per delivery named by a counter, so that the name order is the
// order they were queued in (per call: seq order). A file is written
// (temporary file, then rename) before the delivery is tried and removed
// once it is settled (accepted, given up or gone), so a restart finds
// exactly what was still pending. Files are not fsynced one by one: a
// process crash keeps them, a power loss may lose the last few.
//
// After each failed attempt the file is written again (temporary file,
// then rename) with the attempts made, so a restart does not give the
// delivery its full attempts again.
//
// The outbox is bounded by maxBytes (file bytes, each with attemptsRoom
// reserved for the attempts field); add refuses a delivery that does not
// fit (the caller counts and reports it).
type outbox struct {
	dir      string
	maxBytes int64

	mu      sync.Mutex
	pending []*delivery // in queue order
	bytes   int64
	next    uint64              // the next file number
	busy    map[string]struct{} // calls a worker is delivering
	// wake tells a waiting worker there may be work: of 1, coalesced.
	wake chan struct{}
}

// attemptsRoom is reserved in a delivery's size for `,"attempts":N`,
// which later writes add, so they keep within maxBytes.
const attemptsRoom = 32

// errFull is returned by add when the outbox holds maxBytes.
var errFull = fmt.Errorf("outbox full")

// openOutbox opens (creating) dir and loads the deliveries it holds.
// Unreadable files are removed and reported in bad.
func openOutbox(dir string, maxBytes int64) (box *outbox, bad int, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, 0, fmt.Errorf("create webhook outbox: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("read webhook outbox: %w", err)
	}
	box = &outbox{dir: dir, maxBytes: maxBytes, busy: map[string]struct{}{}, wake: make(chan struct{}, 1)}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") { // a write the last run did not finish
			_ = os.Remove(filepath.Join(dir, name))
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(name, ".json"), 10, 64)
		if err != nil || !strings.HasSuffix(name, ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		d := &delivery{}
		if err != nil || json.Unmarshal(b, d) != nil || d.ID == "" || len(d.Body) == 0 {
			_ = os.Remove(filepath.Join(dir, name))
			bad++
			continue
		}
		d.file, d.size = name, int64(len(b))+attemptsRoom
		box.pending = append(box.pending, d)
		box.bytes += d.size
		box.next = max(box.next, n+1)
	}
	slices.SortFunc(box.pending, func(a, b *delivery) int { return strings.Compare(a.file, b.file) })
	return box, bad, nil
}

// add writes d and queues it last.
func (o *outbox) add(d *delivery) error {
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode delivery: %w", err)
	}
	size := int64(len(b)) + attemptsRoom
	o.mu.Lock()
	if o.bytes+size > o.maxBytes {
		o.mu.Unlock()
		return errFull
	}
	n := o.next
	o.next++
	o.bytes += size // reserved before the write, so concurrent adds keep the bound
	o.mu.Unlock()

	d.file, d.size = fmt.Sprintf("%020d.json", n), size
	tmp := filepath.Join(o.dir, "."+d.file)
	err = os.WriteFile(tmp, b, 0o600)
	if err == nil {
		err = os.Rename(tmp, filepath.Join(o.dir, d.file))
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		_ = os.Remove(tmp)
		o.bytes -= d.size
		return fmt.Errorf("write webhook outbox: %w", err)
	}
	// Keep name order: an add that reserved a lower number may finish later.
	i, _ := slices.BinarySearchFunc(o.pending, d.file, func(e *delivery, f string) int { return strings.Compare(e.file, f) })
	o.pending = slices.Insert(o.pending, i, d)
	o.signal()
	return nil
}

// take returns the oldest pending delivery of a call that no other
// worker is delivering, and marks that call busy until release; nil when
// there is none. A call's oldest delivery is its lowest seq, so each call
// goes in order while calls go side by side.
func (o *outbox) take() *delivery {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, d := range o.pending {
		if _, busy := o.busy[d.CallID]; busy {
			continue
		}
		o.busy[d.CallID] = struct{}{}
		if i+1 < len(o.pending) {
			o.signal() // more may be there for another worker
		}
		return d
	}
	return nil
}

// release ends a worker's hold on call id.
func (o *outbox) release(id string) {
	o.mu.Lock()
	delete(o.busy, id)
	more := len(o.pending) > 0
	o.mu.Unlock()
	if more {
		o.signal()
	}
}

// signal wakes one waiting worker (or the next to wait).
func (o *outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// setAttempts records that n attempts of d were made: in memory, and in
// its file, replaced whole (temporary file, then rename) so a crash
// leaves the old count or the new one. Only the worker holding d's call
// calls it. If the write fails the file keeps the last count written.
func (o *outbox) setAttempts(d *delivery, n int) error {
	d.Attempts = n
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode delivery: %w", err)
	}
	tmp := filepath.Join(o.dir, "."+d.file)
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write webhook outbox: %w", err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !slices.Contains(o.pending, d) { // settled meanwhile
		_ = os.Remove(tmp)
		return nil
	}
	if err := os.Rename(tmp, filepath.Join(o.dir, d.file)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write webhook outbox: %w", err)
	}
	return nil
}

// remove settles d: its file goes.
func (o *outbox) remove(d *delivery) {
	o.mu.Lock()
	defer o.mu.Unlock()
	i := slices.Index(o.pending, d)
	if i < 0 {
		return
	}
	o.pending = slices.Delete(o.pending, i, i+1)
	o.bytes -= d.size
	_ = os.Remove(filepath.Join(o.dir, d.file))
}

// removeCall settles every pending delivery of call id and returns how many.
func (o *outbox) removeCall(id string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	o.pending = slices.DeleteFunc(o.pending, func(d *delivery) bool {
		if d.CallID != id {
			return false
		}
		o.bytes -= d.size
		_ = os.Remove(filepath.Join(o.dir, d.file))
		n++
		return true
	})
	return n
}

// stats returns the pending deliveries and their bytes.
func (o *outbox) stats() (int, int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.pending), o.bytes
}
