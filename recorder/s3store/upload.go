package s3store

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/callcaptions/bridge/recorder"
)

const (
	markerName = ".uploaded.json"
	recordName = "call.json"
	// removedPrefix names a folder on its way out of the spool; the
	// recorder lists no folder whose name starts with a dot.
	removedPrefix = ".removed-"
	// deleteMargin is kept beyond the resume window before a local copy
	// goes, so that a continuation admitted at the last moment has opened
	// its recordings long before.
	deleteMargin = time.Minute
)

// Upload queues the call's folder for upload; a call that ended calls it.
// It never blocks: when the queue is full the call waits in the spool for
// the next sweep.
func (s *Store) Upload(callID string) {
	s.enqueue(recorder.FolderName(callID))
}

func (s *Store) enqueue(folder string) {
	if !s.queue.add(folder, s.cfg.Now()) {
		s.metrics.uploads.WithLabelValues(ResultDropped).Inc()
	}
	s.metrics.backlog.Set(float64(s.queue.len()))
}

// Run uploads queued calls and sweeps the spool until ctx is done, then
// goes on with the calls queued by then, for at most FlushTimeout, so that
// the calls a shutdown ended reach the bucket before the process goes. It
// returns when its goroutines have. An upload cut short, or a call still
// waiting, stays in the spool for the next start's sweep.
func (s *Store) Run(ctx context.Context) {
	uploads, cancel := context.WithCancel(context.Background())
	defer cancel()
	var workers, sweeper sync.WaitGroup
	for range s.cfg.Workers {
		workers.Go(func() { s.work(ctx, uploads) })
	}
	sweeper.Go(func() {
		t := time.NewTicker(s.cfg.SweepEvery)
		defer t.Stop()
		for {
			s.Sweep()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	flushed := make(chan struct{})
	go func() { workers.Wait(); close(flushed) }()
	select {
	case <-flushed:
	case <-ctx.Done():
		select {
		case <-flushed:
		case <-time.After(s.cfg.FlushTimeout):
			cancel()
			<-flushed
		}
	}
	sweeper.Wait()
}

// work is one uploader: it takes the next due call, syncs it, and waits
// for a wake-up or the next due time when there is none. Once stop is
// done it returns when no call is due.
func (s *Store) work(stop, uploads context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		folder, wait := s.queue.next(s.cfg.Now())
		if folder != "" {
			err := s.sync(uploads, folder)
			if err != nil && uploads.Err() == nil {
				s.metrics.uploads.WithLabelValues(ResultFailed).Inc()
				s.failLog.Warn().Err(err).Str("folder", folder).Msg("upload failed; the local copy is kept and the upload retried (bridge_s3_upload_backlog)")
			}
			s.queue.done(folder, err != nil, s.cfg.Now(), s.cfg.BackoffInitial, s.cfg.BackoffMax)
			s.metrics.backlog.Set(float64(s.queue.len()))
			continue
		}
		if stop.Err() != nil {
			return
		}
		if wait <= 0 {
			wait = time.Hour // nothing waiting: a wake-up comes with the next call
		}
		timer.Reset(wait)
		select {
		case <-stop.Done():
		case <-s.queue.wake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// Sweep queues every ended call in the spool that is not uploaded as it is
// now, or whose local copy may go. Run sweeps at its start (after a crash,
// the calls that ended but were not uploaded) and every SweepEvery.
func (s *Store) Sweep() {
	names, err := s.CallIDs()
	if err != nil {
		s.log.Error().Err(err).Msg("sweep the spool")
		return
	}
	s.clearRemoved()
	now := s.cfg.Now()
	for _, name := range names {
		st, err := s.inspect(name)
		if err != nil || !st.ended {
			continue
		}
		if !st.uploaded || (!s.cfg.Keep && s.removable(st, now)) {
			s.enqueue(name)
		}
	}
}

// folderState is what the spool says of one call folder.
type folderState struct {
	ended    bool      // call.json says it is not active
	endedAt  time.Time // when it ended, by call.json
	files    []string  // the files to upload, recordings first, call.json last
	stats    marker    // each file's size and time now
	uploaded bool      // the marker matches every file
}

// marker is the size and modification time of each file as uploaded.
type marker map[string]fileStat

type fileStat struct {
	Size    int64 `json:"size"`
	ModTime int64 `json:"mod_time_ns"`
}

// record is what the uploader reads of call.json.
type record struct {
	Status     string     `json:"status"`
	StartedAt  time.Time  `json:"started_at"`
	EndedAt    *time.Time `json:"ended_at"`
	DurationMs int64      `json:"duration_ms"`
}

// inspect reads a call folder: its status, its files and whether the
// marker covers them as they are.
func (s *Store) inspect(folder string) (folderState, error) {
	dir := filepath.Join(s.Root(), folder)
	b, err := os.ReadFile(filepath.Join(dir, recordName))
	if err != nil {
		return folderState{}, err
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return folderState{}, fmt.Errorf("read %s: %w", recordName, err)
	}
	st := folderState{ended: rec.Status != "" && rec.Status != "active"}
	st.endedAt = rec.StartedAt.Add(time.Duration(rec.DurationMs) * time.Millisecond)
	if rec.EndedAt != nil {
		st.endedAt = *rec.EndedAt
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return folderState{}, err
	}
	st.stats = marker{}
	var docs []string
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !recorder.IsFolderName(name) {
			continue // the marker, temporary files, anything else
		}
		switch {
		case strings.HasSuffix(name, ".wav"):
			st.files = append(st.files, name)
		case strings.HasSuffix(name, ".json") && name != recordName:
			docs = append(docs, name)
		case name == recordName:
		default:
			continue // the journal: an ended call has none, and it is merged into transcript.json
		}
		info, err := e.Info()
		if err != nil {
			return folderState{}, err
		}
		st.stats[name] = fileStat{Size: info.Size(), ModTime: info.ModTime().UnixNano()}
	}
	st.files = append(append(st.files, docs...), recordName)
	up, err := readMarker(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn().Err(err).Str("folder", folder).Msg("upload marker unreadable; the call is uploaded again")
	}
	st.uploaded = true
	for name, now := range st.stats {
		if up[name] != now {
			st.uploaded = false
		}
	}
	return st, nil
}

// removable says whether an uploaded call's local copy may go: it can no
// longer be continued.
func (s *Store) removable(st folderState, now time.Time) bool {
	return s.cfg.ResumeWindow < 0 || !now.Before(st.endedAt.Add(s.cfg.ResumeWindow+deleteMargin))
}

// sync uploads what changed in an ended call's folder since its last
// upload, records it in the marker, and removes the folder when the spool
// rule allows. A folder that is gone, has no call.json or is active again
// (continued) has nothing to upload.
func (s *Store) sync(ctx context.Context, folder string) error {
	st, err := s.inspect(folder)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("upload %s: %w", folder, err)
	}
	if !st.ended {
		return nil // the call.ended of a continued call uploads it
	}
	dir := filepath.Join(s.Root(), folder)
	if !st.uploaded {
		up, err := readMarker(dir)
		if err != nil {
			up = marker{}
		}
		var sent int64
		for _, name := range st.files {
			if up[name] == st.stats[name] {
				continue
			}
			fst, err := s.put(ctx, s.key(folder, name), filepath.Join(dir, name))
			if err != nil {
				return fmt.Errorf("upload %s/%s: %w", folder, name, err)
			}
			// The size and time before the upload read the file: a change
			// while it was read shows as a difference next time.
			up[name] = fst
			sent += fst.Size
			if err := writeMarker(dir, up); err != nil {
				return fmt.Errorf("upload %s: %w", folder, err)
			}
		}
		s.addRemote(folder)
		s.metrics.uploads.WithLabelValues(ResultOK).Inc()
		s.metrics.bytes.Add(float64(sent))
		s.log.Info().Str("folder", folder).Int64("bytes", sent).Msg("call uploaded")
		st, err = s.inspect(folder)
		if err != nil || !st.uploaded {
			return err // changed meanwhile: the sweep or its next end uploads it again
		}
	}
	if s.cfg.Keep || !s.removable(st, s.cfg.Now()) {
		return nil
	}
	return s.remove(folder)
}

// remove takes an uploaded call folder out of the spool: renamed away
// first, so that the call's folder is whole or absent, never half
// removed, then deleted.
func (s *Store) remove(folder string) error {
	dir := filepath.Join(s.Root(), folder)
	gone := filepath.Join(s.Root(), removedPrefix+folder)
	if err := os.Rename(dir, gone); err != nil {
		return fmt.Errorf("remove %s from the spool: %w", folder, err)
	}
	if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("remove %s from the spool: %w", folder, err)
	}
	s.metrics.removed.Inc()
	s.log.Debug().Str("folder", folder).Msg("local copy removed after upload")
	return nil
}

// clearRemoved deletes what a crash left of a removal.
func (s *Store) clearRemoved() {
	entries, err := os.ReadDir(s.Root())
	if err != nil {
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), removedPrefix) {
			if err := os.RemoveAll(filepath.Join(s.Root(), e.Name())); err != nil {
				s.log.Warn().Err(err).Str("folder", e.Name()).Msg("clear a removed call folder")
			}
		}
	}
}

// put uploads the file at path to key with its Content-MD5, which the
// store checks against what it received, then checks the stored size. It
// returns the file's size and time as they were before it was read.
func (s *Store) put(ctx context.Context, key, path string) (fileStat, error) {
	f, err := os.Open(path)
	if err != nil {
		return fileStat{}, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fileStat{}, err
	}
	size := info.Size()
	h := md5.New()
	if n, err := io.Copy(h, io.NewSectionReader(f, 0, size)); err != nil || n != size {
		return fileStat{}, fmt.Errorf("read %s: %d of %d bytes: %v", filepath.Base(path), n, size, err)
	}
	sum := base64.StdEncoding.EncodeToString(h.Sum(nil))
	contentType := "application/json"
	if strings.HasSuffix(path, ".wav") {
		contentType = "audio/wav"
	}
	if _, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &s.cfg.Bucket, Key: &key, Body: io.NewSectionReader(f, 0, size),
		ContentLength: &size, ContentMD5: &sum, ContentType: &contentType,
	}); err != nil {
		return fileStat{}, fmt.Errorf("put: %w", err)
	}
	head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.cfg.Bucket, Key: &key})
	if err != nil {
		return fileStat{}, fmt.Errorf("verify: %w", err)
	}
	if head.ContentLength == nil || *head.ContentLength != size {
		return fileStat{}, fmt.Errorf("verify: stored %v bytes, sent %d", head.ContentLength, size)
	}
	return fileStat{Size: size, ModTime: info.ModTime().UnixNano()}, nil
}

func readMarker(dir string) (marker, error) {
	b, err := os.ReadFile(filepath.Join(dir, markerName))
	if err != nil {
		return nil, err
	}
	m := marker{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("read %s: %w", markerName, err)
	}
	return m, nil
}

// writeMarker replaces the marker atomically. It need not be durable: a
// marker lost in a crash costs an upload again, nothing else.
func writeMarker(dir string, m marker) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, markerName+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", markerName, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, markerName)); err != nil {
		return fmt.Errorf("write %s: %w", markerName, err)
	}
	return nil
}
