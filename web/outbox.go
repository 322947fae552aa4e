package web

import "github.com/callcaptions/bridge/bridge"

// consumed prefix are compacted away when the slice is full and they make
// up at least half of it, so a burst of coalesced partials cannot grow it.
type outbox struct {
	items    []*message
	head     int
	dead     int // nil holes in items[head:]
	live     int
	bytes    int
	partials map[segKey]int // segment → index in items of its queued partial
}

// push appends m and reports whether it made a queued partial obsolete.
func (q *outbox) push(m *message) (dropped bool) {
	if m.kind != bridge.KindDurable && m.seg.segment != "" {
		if i, ok := q.partials[m.seg]; ok {
			old := q.items[i]
			q.items[i] = nil
			q.dead++
			q.live--
			q.bytes -= len(old.data)
			delete(q.partials, m.seg)
			dropped = true
		}
	}
	if len(q.items) == cap(q.items) && 2*(q.head+q.dead) >= len(q.items) && len(q.items) > 0 {
		q.compact()
	}
	q.items = append(q.items, m)
	q.live++
	q.bytes += len(m.data)
	if m.kind == bridge.KindPartial && m.seg.segment != "" {
		if q.partials == nil {
			q.partials = make(map[segKey]int)
		}
		q.partials[m.seg] = len(q.items) - 1
	}
	return dropped
}

func (q *outbox) pop() (*message, bool) {
	for q.head < len(q.items) {
		i := q.head
		m := q.items[i]
		q.items[i] = nil
		q.head++
		if m == nil {
			q.dead--
			continue
		}
		q.live--
		q.bytes -= len(m.data)
		if m.kind == bridge.KindPartial && m.seg.segment != "" {
			if j, ok := q.partials[m.seg]; ok && j == i {
				delete(q.partials, m.seg)
			}
		}
		if q.head == len(q.items) {
			q.items, q.head, q.dead = q.items[:0], 0, 0
		}
		return m, true
	}
	q.items, q.head, q.dead = q.items[:0], 0, 0
	return nil, false
}

func (q *outbox) compact() {
	n := 0
	for i := q.head; i < len(q.items); i++ {
		m := q.items[i]
		if m == nil {
			continue
		}
		if m.kind == bridge.KindPartial && m.seg.segment != "" {
			if j, ok := q.partials[m.seg]; ok && j == i {
				q.partials[m.seg] = n
			}
		}
		q.items[n] = m
		n++
	}
	clear(q.items[n:])
	q.items, q.head, q.dead = q.items[:n], 0, 0
}
