package recorder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// syncCounter is a file that counts its syncs and refuses one after Close,
// as an *os.File does.
type syncCounter struct {
	*os.File
	syncs  atomic.Int64
	closed atomic.Bool
}

func (f *syncCounter) Sync() error {
	if f.closed.Load() {
		return os.ErrClosed
	}
	f.syncs.Add(1)
	return f.File.Sync()
}

func (f *syncCounter) Close() error {
	f.closed.Store(true)
	return f.File.Close()
}

// TestSyncerSyncsOnItsTimer: while Run runs, every open recording is synced
// every interval, from the syncer's goroutine while the owner writes; a
// closed recording leaves the set and is never synced again.
func TestSyncerSyncsOnItsTimer(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	f, err := os.Create(filepath.Join(t.TempDir(), "t.wav"))
	require.NoError(t, err)
	file := &syncCounter{File: f}
	w, err := NewWAV(file, rate8k)
	require.NoError(t, err)
	var rounds atomic.Int64
	s := NewSyncer(5*time.Millisecond, func(files int, _ time.Duration, err error) {
		if err == nil {
			rounds.Add(1)
		}
	})
	w.syncWith(s)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()

	frame := ramp(0, frameBytes/2)
	require.Eventually(t, func() bool {
		_, err := w.Write(frame) // writing while the syncer syncs: -race checks it
		return err == nil && file.syncs.Load() >= 3
	}, 30*time.Second, time.Millisecond, "synced on the timer")
	require.NoError(t, w.Close())
	synced := file.syncs.Load()
	n := rounds.Load()
	require.Eventually(t, func() bool { return rounds.Load() > n+2 }, 30*time.Second, time.Millisecond)
	require.Equal(t, synced, file.syncs.Load(), "a closed recording is not synced")
	require.NoError(t, w.Sync(), "Sync after Close does nothing")
}

// syncedCall is a call's folder in a new store that syncs with a Syncer
// whose rounds run only when called; files lists how many files each round
// synced.
func syncedCall(t *testing.T) (*Store, *Syncer, *Call, *[]int) {
	st, err := NewStore(t.TempDir())
	require.NoError(t, err)
	files := &[]int{}
	s := NewSyncer(time.Hour, func(n int, _ time.Duration, err error) {
		require.NoError(t, err)
		*files = append(*files, n)
	})
	st.SyncWith(s)
	c, err := st.Open("CA1")
	require.NoError(t, err)
	return st, s, c, files
}

// TestSyncerSyncsJournals: a journal appended to is synced at the next
// round, once; a journal removed meanwhile is not an error; the store's
// recordings join the syncer when created or appended to.
func TestSyncerSyncsJournals(t *testing.T) {
	_, s, c, files := syncedCall(t)
	require.NoError(t, c.AppendJSON("transcript.jsonl", map[string]int{"a": 1}))
	require.NoError(t, c.AppendJSON("transcript.jsonl", map[string]int{"a": 2}))
	w, err := c.CreateTrack("inbound", rate8k)
	require.NoError(t, err)
	require.NoError(t, s.Sync())
	require.NoError(t, s.Sync())
	require.Equal(t, []int{2, 1}, *files, "the journal once, the recording every round")

	require.NoError(t, c.AppendJSON("transcript.jsonl", map[string]int{"a": 3}))
	require.NoError(t, c.Remove("transcript.jsonl"))
	require.NoError(t, w.Close())
	a, err := c.AppendTrack("inbound", rate8k)
	require.NoError(t, err)
	require.NoError(t, s.Sync())
	require.Equal(t, []int{2, 1, 2}, *files)
	require.NoError(t, a.Close())
	require.NoError(t, s.Sync())
	require.Equal(t, []int{2, 1, 2, 0}, *files)
}

// TestWriteJSONNoWait: a document written without waiting is there whole
// at once, and it and its folder are synced at the next round, once; a
// document written again before the round is synced once; without a
// Syncer, or when the round's set is full, the write syncs by itself and
// leaves nothing for a round. A folder is synced best effort.
func TestWriteJSONNoWait(t *testing.T) {
	st, s, c, files := syncedCall(t)
	require.NoError(t, c.WriteJSONNoWait("call.json", map[string]int{"a": 1}))
	require.NoError(t, c.WriteJSONNoWait("call.json", map[string]int{"a": 2}))
	var got map[string]int
	require.NoError(t, st.ReadJSON("CA1", "call.json", &got))
	require.Equal(t, map[string]int{"a": 2}, got, "readers see the last document at once")
	require.NoError(t, s.Sync())
	require.NoError(t, s.Sync())
	require.Equal(t, []int{2, 0}, *files, "the document and its folder once")

	for i := range maxPendingFiles {
		require.True(t, s.written(fmt.Sprintf("/f/%d", i), false))
	}
	require.NoError(t, c.WriteJSONNoWait("transcript.json", 1), "synced by the write itself")
	require.Len(t, s.files, maxPendingFiles)
	require.NotContains(t, s.files, filepath.Join(c.Dir(), "transcript.json"))

	// A folder that will not sync does not fail the round (the documents
	// in it are whole either way); a file that will not does.
	notDir := filepath.Join(c.Dir(), "call.json", "x") // ENOTDIR
	rounds := NewSyncer(time.Hour, nil)
	require.True(t, rounds.written(notDir, true))
	require.NoError(t, rounds.Sync())
	require.True(t, rounds.written(notDir, false))
	require.Error(t, rounds.Sync())

	plain, err := NewStore(t.TempDir())
	require.NoError(t, err)
	pc, err := plain.Open("CA2")
	require.NoError(t, err)
	require.NoError(t, pc.WriteJSONNoWait("call.json", 3))
	var n int
	require.NoError(t, plain.ReadJSON("CA2", "call.json", &n))
	require.Equal(t, 3, n)
}

// TestSyncerJournalSetIsBounded: when the set of journals waiting for a
// round is full, an append syncs its own journal and the set stays at its
// bound.
func TestSyncerJournalSetIsBounded(t *testing.T) {
	s := NewSyncer(time.Hour, nil)
	for i := range maxPendingFiles {
		require.True(t, s.written(fmt.Sprintf("/j/%d", i), false))
	}
	require.True(t, s.written("/j/0", false), "a journal already waiting is not counted twice")
	require.False(t, s.written("/j/new", false))
	require.Len(t, s.files, maxPendingFiles)

	st, err := NewStore(t.TempDir())
	require.NoError(t, err)
	st.SyncWith(s)
	c, err := st.Open("CA1")
	require.NoError(t, err)
	require.NoError(t, c.AppendJSON("transcript.jsonl", 1), "synced by the append itself")
	require.Len(t, s.files, maxPendingFiles)
}

// BenchmarkFsyncPerTrack is the cost of fsyncing one track's recording
// after each interval of 8 kHz audio: interval=0 writes without syncing
// (what closing syncs), the others sync once per interval of audio written.
// ns/op is per interval of audio; compare to the interval itself for the
// share of a core one track costs.
func BenchmarkFsyncPerTrack(b *testing.B) {
	for _, interval := range []time.Duration{0, time.Second, 5 * time.Second} {
		name := "off"
		if interval > 0 {
			name = interval.String()
		}
		b.Run(name, func(b *testing.B) {
			w, _ := newFileWAV(b, rate8k)
			defer w.Close()
			frame := ramp(0, frameBytes/2)
			frames := 5 * 50 // 5 s of audio per op, whatever the interval
			every := int(interval / (20 * time.Millisecond))
			b.ReportAllocs()
			b.SetBytes(int64(frames * frameBytes))
			// The disk's wait is not CPU: cpu-ns/op is the process's user
			// and system time, the cost a load run sees.
			cpu0 := cpuTime(b)
			defer func() { b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op") }()
			for b.Loop() {
				for k := 1; k <= frames; k++ {
					if _, err := w.Write(frame); err != nil {
						b.Fatal(err)
					}
					if every > 0 && k%every == 0 {
						if err := w.Sync(); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
		})
	}
}

// cpuTime is the process's user plus system CPU time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
