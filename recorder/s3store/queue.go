package s3store

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// queue is the one queue of calls waiting for upload, and the one place
// their retries are timed.
//
// Bound and policy: at most size calls (Config.QueueSize, 10,000 by
// default: at 2,000 calls in progress that is five full turnovers of
// calls waiting through an outage, and about 100 bytes each). A call
// already queued is not queued twice, whatever asks for it. When the queue
// is full a new call is dropped and counted (bridge_s3_uploads_total
// {result="dropped"}); its folder stays in the spool, and the next sweep
// (every Config.SweepEvery) queues it again once there is room. Nothing is
// lost, an upload is only later.
//
// Retries: a failed call waits BackoffInitial, doubling up to BackoffMax,
// each wait drawn between half and all of it so that calls failed by one
// outage do not all come back at once.
type queue struct {
	size int
	wake chan struct{} // 1: wake-ups coalesce
	// length is set to the calls waiting under mu whenever they change,
	// so that it never shows a length another goroutine has since
	// changed (bridge_s3_upload_backlog).
	length prometheus.Gauge

	mu    sync.Mutex
	items map[string]*item // by call folder
}

type item struct {
	due      time.Time
	attempts int  // failed attempts in a row
	busy     bool // a worker has it
	again    bool // asked for again while busy: run once more when done
}

func newQueue(size int, length prometheus.Gauge) *queue {
	return &queue{size: size, wake: make(chan struct{}, 1), length: length, items: map[string]*item{}}
}

// add queues folder to run now. It reports false when the queue is full.
func (q *queue) add(folder string, now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if it := q.items[folder]; it != nil {
		if it.busy {
			it.again = true
		}
		// A call waiting out a backoff keeps it: asking again does not
		// make the store any more reachable.
		return true
	}
	if len(q.items) >= q.size {
		return false
	}
	q.items[folder] = &item{due: now}
	q.length.Set(float64(len(q.items)))
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// next takes the earliest due call that no worker has. If none is due it
// returns "" and when the earliest one will be (zero: none waiting).
func (q *queue) next(now time.Time) (folder string, wait time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var first time.Time
	for f, it := range q.items {
		if it.busy {
			continue
		}
		if !it.due.After(now) {
			it.busy = true
			return f, 0
		}
		if first.IsZero() || it.due.Before(first) {
			first = it.due
		}
	}
	if first.IsZero() {
		return "", 0
	}
	return "", first.Sub(now)
}

// done settles a call a worker had: gone on success (or run again at once
// if it was asked for meanwhile), due again after a backoff on failure.
func (q *queue) done(folder string, failed bool, now time.Time, initial, max time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	it := q.items[folder]
	if it == nil {
		return
	}
	it.busy = false
	switch {
	case failed:
		it.attempts++
		it.due = now.Add(backoff(it.attempts, initial, max))
		it.again = false
	case it.again:
		it.again, it.attempts, it.due = false, 0, now
	default:
		delete(q.items, folder)
		q.length.Set(float64(len(q.items)))
		return
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// len is the calls waiting, retrying ones included.
func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// backoff is the wait after the n-th failure in a row: initial doubled
// n-1 times, at most max, then drawn between half and all of that.
func backoff(n int, initial, max time.Duration) time.Duration {
	d := initial
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d/2 + rand.N(d/2+1)
}
