package recorder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// maxPendingFiles bounds the files waiting for the next round: journals
// appended to, documents written with WriteJSONNoWait and their call
// folders, at most three per call that wrote in the interval, so the bound
// is only reached with tens of thousands of calls writing in one interval.
// A writer that finds the set full syncs its own file instead (nothing is
// dropped, the writer waits for the disk as it would without a Syncer).
const maxPendingFiles = 1 << 16

// syncWorkers is how many files a round syncs at once.
const syncWorkers = 8

// Syncer makes what the recorder wrote durable on a timer: every interval
// it fsyncs each open recording, each journal appended to and each document
// written without waiting (WriteJSONNoWait, with its folder) since the last
// round, on its own goroutine, so the writers never wait for the disk's
// flush. Without it, recordings are synced when they close and journals
// never (the call's transcript.json, written at the end, is). A power cut
// loses up to one interval (plus a recording's write buffer, see
// bufferSize).
type Syncer struct {
	interval time.Duration
	report   func(files int, took time.Duration, err error)

	mu sync.Mutex
	// wavs are the open recordings, each holding a file descriptor: as
	// many as the tracks being recorded, which the bridge bounds (calls ×
	// streams); a WAV leaves the set when it closes.
	wavs map[*WAV]struct{}
	// files are paths, each true for a folder (a document's, whose rename
	// the round makes durable; best effort, as some filesystems refuse to
	// sync a folder and the documents are whole either way); bounded by
	// maxPendingFiles.
	files map[string]bool
}

// NewSyncer returns a Syncer that syncs every interval once Run is
// running. report, if not nil, is called after every round with the number
// of files synced, how long the round took and what failed.
func NewSyncer(interval time.Duration, report func(files int, took time.Duration, err error)) *Syncer {
	if report == nil {
		report = func(int, time.Duration, error) {}
	}
	return &Syncer{interval: interval, report: report, wavs: map[*WAV]struct{}{}, files: map[string]bool{}}
}

// Run syncs every interval until ctx ends, then once more. A round that
// takes longer than the interval delays the next one; rounds never
// overlap.
func (s *Syncer) Run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.Sync()
			return
		case <-t.C:
			s.Sync()
		}
	}
}

// Sync runs one round now and returns what failed.
func (s *Syncer) Sync() error {
	start := time.Now()
	s.mu.Lock()
	jobs := make([]func() error, 0, len(s.wavs)+len(s.files))
	for w := range s.wavs {
		jobs = append(jobs, w.Sync)
	}
	for path, folder := range s.files {
		jobs = append(jobs, func() error {
			if err := syncPath(path); err != nil && !folder {
				return err
			}
			return nil
		})
	}
	s.files = map[string]bool{}
	s.mu.Unlock()

	// A few fsyncs at once: the filesystem commits them together, where
	// one after another each waits for its own commit.
	errs := make([]error, len(jobs))
	workers := make(chan struct{}, syncWorkers)
	var wg sync.WaitGroup
	for i, job := range jobs {
		workers <- struct{}{}
		wg.Go(func() {
			errs[i] = job()
			<-workers
		})
	}
	wg.Wait()
	err := errors.Join(errs...)
	s.report(len(jobs), time.Since(start), err)
	return err
}

func (s *Syncer) addWAV(w *WAV) {
	s.mu.Lock()
	s.wavs[w] = struct{}{}
	s.mu.Unlock()
}

func (s *Syncer) removeWAV(w *WAV) {
	s.mu.Lock()
	delete(s.wavs, w)
	s.mu.Unlock()
}

// written notes that the file path (a folder when folder is set) was
// written to and is synced at the next round. It reports false when the set
// is full: the caller syncs it itself.
func (s *Syncer) written(path string, folder bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.files[path]; !ok && len(s.files) >= maxPendingFiles {
		return false
	}
	s.files[path] = folder
	return true
}

// syncPath fsyncs a file or folder by name. A file removed since it was
// written (a journal whose call has ended) has nothing left to keep.
func syncPath(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}

// SyncReport is a report for NewSyncer that counts every round on reg
// (bridge_fsync_round_seconds, bridge_fsync_errors_total) and logs a
// failing round, once until a round succeeds again.
func SyncReport(reg prometheus.Registerer, log zerolog.Logger) func(int, time.Duration, error) {
	seconds := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "bridge_fsync_round_seconds",
		Help:    "How long one --fsync-interval round of syncing every open recording and journal took.",
		Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10}})
	errs := prometheus.NewCounter(prometheus.CounterOpts{Name: "bridge_fsync_errors_total",
		Help: "Sync rounds in which a recording or journal could not be synced to disk."})
	if reg != nil {
		reg.MustRegister(seconds, errs)
	}
	failing := false // only the syncer's goroutine calls the report
	return func(files int, took time.Duration, err error) {
		seconds.Observe(took.Seconds())
		if err != nil {
			errs.Inc()
		}
		switch {
		case err != nil && !failing:
			log.Error().Err(err).Int("files", files).Msg("syncing recordings to disk failed; retrying every --fsync-interval")
		case err == nil && failing:
			log.Info().Msg("syncing recordings to disk works again")
		}
		failing = err != nil
	}
}
