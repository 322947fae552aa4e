package bridge

import (
	"cmp"

	"github.com/callcaptions/bridge/bridge/provider"
)

// defaultReorderFrames is Config.ReorderFrames when zero: five 20 ms frames
// hold a late frame back by at most 100 ms, well inside what captions
// tolerate, and cover the reordering seen on a jittery path.
const defaultReorderFrames = 5

// firstChunk is the chunk number a stream starts with (Telnyx, like Twilio,
// counts media chunks from 1): a held frame with this number can go on at
// once, since no frame can come before it.
const firstChunk = 1

// reorderer is the jitter window of a track of p, or nil when p keeps
// order or reordering is off.
func (e *callEnv) reorderer(p provider.Name) *reorderer {
	if d := provider.Lookup(p); d == nil || !d.Reorder || e.cfg.ReorderFrames < 0 {
		return nil
	}
	return newReorderer(cmp.Or(e.cfg.ReorderFrames, defaultReorderFrames))
}

// reorderer is a jitter window over one track's frames: frames that arrive
// ahead of a missing one are held (copied into fixed slots, whose buffers
// are reused) until the missing frame arrives or the window is full, then
// go on in chunk order. A frame that arrives after its successors went on is
// passed through and dropped by the media clock as too late. In steady
// state (frames in order) nothing is held, copied or allocated.
//
// It is owned by the stream's read loop, like the track's clock.
type reorderer struct {
	slots   []heldFrame
	held    int
	started bool  // a frame has gone on
	next    int64 // the chunk expected next, once started
}

type heldFrame struct {
	used    bool
	chunk   int64
	ts      int64
	hasTs   bool
	payload []byte // wire payload, copied; capacity kept for reuse
}

func newReorderer(window int) *reorderer {
	return &reorderer{slots: make([]heldFrame, window)}
}

// bypass reports whether a frame can go on without being held: it is the
// one expected next and nothing is waiting, or it is older than what went
// on already.
func (r *reorderer) bypass(chunk int64) bool {
	if !r.started {
		return false
	}
	if chunk == r.next && r.held == 0 {
		r.next++
		return true
	}
	return chunk < r.next
}

// add holds a frame. It returns false when a frame with the same chunk is
// already held (a duplicate).
func (r *reorderer) add(chunk, ts int64, hasTs bool, payload []byte) bool {
	free := -1
	for i := range r.slots {
		switch {
		case r.slots[i].used && r.slots[i].chunk == chunk:
			return false
		case !r.slots[i].used && free < 0:
			free = i
		}
	}
	// pop runs after every add, so a slot is always free here.
	f := &r.slots[free]
	f.used, f.chunk, f.ts, f.hasTs = true, chunk, ts, hasTs
	f.payload = append(f.payload[:0], payload...)
	r.held++
	return true
}

// pop returns the next held frame that may go on now, in chunk order: the
// one expected next, or the lowest one when the window is full (the frames
// before it are given up as lost) or when draining. The frame's payload
// stays valid until the next add.
func (r *reorderer) pop(draining bool) (*heldFrame, bool) {
	if r.held == 0 {
		return nil, false
	}
	var f *heldFrame
	for i := range r.slots {
		if r.slots[i].used && (f == nil || r.slots[i].chunk < f.chunk) {
			f = &r.slots[i]
		}
	}
	switch {
	case draining, r.held >= len(r.slots):
	case r.started && f.chunk <= r.next:
	case !r.started && f.chunk <= firstChunk:
	default:
		return nil, false
	}
	f.used = false
	r.held--
	r.started = true
	r.next = f.chunk + 1
	return f, true
}

// release places the frames track i holds that may go on (all of them
// when draining), in chunk order, and returns the first error.
func (s *Stream) release(i int, ro *reorderer, draining bool) error {
	var first error
	for {
		f, ok := ro.pop(draining)
		if !ok {
			return first
		}
		if err := s.place(s.tracks[i], f.payload, f.chunk, true, f.ts, f.hasTs); err != nil && first == nil {
			first = err
		}
	}
}

// drainAll places every held frame of every track: the stream is ending.
func (s *Stream) drainAll() {
	for i, ro := range s.reorder {
		if ro != nil {
			_ = s.release(i, ro, true) // the stream is ending: a frame that does not decode is dropped
		}
	}
}
