package s3store

import (
	"cmp"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

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
	ended     bool      // call.json says it is not active
	startedAt time.Time // when this part of the call started, by call.json
	endedAt   time.Time // when it ended, by call.json
	files     []string  // the files to upload, recordings first, call.json last
	stats     marker    // each file's size and time now
	uploaded  bool      // the marker matches every file
}

// marker is the size and modification time of each file as uploaded,
// and where it went.
type marker map[string]fileStat

type fileStat struct {
	Size    int64 `json:"size"`
	ModTime int64 `json:"mod_time_ns"`
	// At is the folder in the call's folder of the bucket the file went
	// to: empty for the call's folder itself, parts/<started_at> for an
	// earlier part of the call (see place).
	At string `json:"at,omitempty"`
}

// same says whether f and g are the same version of a file.
func (f fileStat) same(g fileStat) bool { return f.Size == g.Size && f.ModTime == g.ModTime }

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
	st := folderState{ended: rec.Status != "" && rec.Status != "active", startedAt: rec.StartedAt}
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
		if !up[name].same(now) {
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
		at, whole, err := s.place(ctx, folder, st.startedAt)
		if err != nil {
			return fmt.Errorf("upload %s: %w", folder, err)
		}
		var sent int64
		for _, name := range st.files {
			if !whole && up[name].At == at && up[name].same(st.stats[name]) {
				continue
			}
			fst, err := s.put(ctx, s.key(folder, path.Join(at, name)), filepath.Join(dir, name))
			if err != nil {
				return fmt.Errorf("upload %s/%s: %w", folder, name, err)
			}
			// The size and time before the upload read the file: a change
			// while it was read shows as a difference next time.
			fst.At = at
			up[name] = fst
			sent += fst.Size
			if err := writeMarker(dir, up); err != nil {
				return fmt.Errorf("upload %s: %w", folder, err)
			}
		}
		if whole && at == "" {
			// The earlier part is kept under parts/: what it had in the
			// call's folder that this part has not (a track of its own)
			// goes, so that the folder holds one part.
			if err := s.dropOthers(ctx, folder, st.files); err != nil {
				return fmt.Errorf("upload %s: %w", folder, err)
			}
		}
		s.addRemote(folder)
		s.metrics.uploads.WithLabelValues(ResultOK).Inc()
		s.metrics.bytes.Add(float64(sent))
		s.log.Info().Str("folder", folder).Str("at", at).Int64("bytes", sent).Msg("call uploaded")
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

// partsDir is the folder, in a call's folder of the bucket, of the part
// of the call that started at startedAt and is not the latest.
func partsDir(startedAt time.Time) string {
	return "parts/" + startedAt.UTC().Format("20060102T150405.000Z")
}

// place says where in the bucket's call folder the part of the call that
// started at ours goes. A call continued on another replica (a takeover,
// or a continuation within the resume window) is a new part there, with
// a later started_at, uploaded from that replica's spool to the same call
// folder; the part before it may be uploaded before or after it (its
// replica comes back and repairs it, or was only cut off from NATS). Both
// are kept: the latest part in the call's folder itself (what reads of
// the call serve), each earlier one under parts/<its started_at>/.
//
// So place reads the bucket's call.json. None, or one of the same part:
// the call's folder (at ""). An earlier part: it is copied to its parts/
// folder first (keepPart), then ours goes to the call's folder, every
// file (whole: what the marker says was uploaded there may have been
// overwritten by that part), and what is left there of the earlier part
// goes (dropOthers). A later part: ours goes to parts/<ours>/.
//
// Left open: two parts uploaded at the very same moment (each reads the
// call.json before the other's is written) both go to the call's folder
// and, file by file, the later write wins. That takes both replicas
// uploading the same call within the few round trips of one upload (a
// part ends when its replica's streams of the call stop, its upload
// follows within seconds); conditional writes, which not every
// S3-compatible server has, would close it.
func (s *Store) place(ctx context.Context, folder string, ours time.Time) (at string, whole bool, err error) {
	b, err := s.get(ctx, s.key(folder, recordName))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	var theirs record
	if json.Unmarshal(b, &theirs) != nil {
		return "", true, nil // not a record of any part: nothing to keep
	}
	switch {
	case theirs.StartedAt.Equal(ours):
		return "", false, nil
	case theirs.StartedAt.Before(ours):
		if err := s.keepPart(ctx, folder, theirs.StartedAt); err != nil {
			return "", false, err
		}
		return "", true, nil
	default:
		return partsDir(ours), false, nil
	}
}

// keepPart copies the objects in the call's folder of the bucket (the
// part that started at startedAt) to its parts/ folder, call.json last,
// each verified by its size and, when the store gives both, its ETag. A
// parts/ folder with a call.json is a finished copy: a retry after a
// failure that followed the copy (the call's folder may hold some of the
// next part's files by then) copies nothing.
func (s *Store) keepPart(ctx context.Context, folder string, startedAt time.Time) error {
	dst := partsDir(startedAt)
	dstRecord := s.key(folder, path.Join(dst, recordName))
	_, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.cfg.Bucket, Key: &dstRecord})
	if err == nil {
		return nil
	}
	if !isNotFound(err) {
		return fmt.Errorf("keep the earlier part: %w", err)
	}
	objs, err := s.listFolder(ctx, folder)
	if err != nil {
		return fmt.Errorf("keep the earlier part: %w", err)
	}
	// call.json last: its copy says the copy is whole.
	isRecord := func(o types.Object) int {
		if path.Base(aws.ToString(o.Key)) == recordName {
			return 1
		}
		return 0
	}
	slices.SortStableFunc(objs, func(a, b types.Object) int { return cmp.Compare(isRecord(a), isRecord(b)) })
	for _, o := range objs {
		name := path.Base(aws.ToString(o.Key))
		if !recorder.IsFolderName(name) {
			continue
		}
		src := s.cfg.Bucket + "/" + escapeKey(aws.ToString(o.Key))
		key := s.key(folder, path.Join(dst, name))
		if _, err := s.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &s.cfg.Bucket, Key: &key, CopySource: &src}); err != nil {
			return fmt.Errorf("keep the earlier part: copy %s: %w", name, err)
		}
		head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.cfg.Bucket, Key: &key})
		if err != nil {
			return fmt.Errorf("keep the earlier part: verify %s: %w", name, err)
		}
		if aws.ToInt64(head.ContentLength) != aws.ToInt64(o.Size) ||
			(head.ETag != nil && o.ETag != nil && *head.ETag != *o.ETag) {
			return fmt.Errorf("keep the earlier part: verify %s: stored %d bytes (ETag %s), copied %d (ETag %s)",
				name, aws.ToInt64(head.ContentLength), aws.ToString(head.ETag), aws.ToInt64(o.Size), aws.ToString(o.ETag))
		}
	}
	s.log.Info().Str("folder", folder).Str("at", dst).Int("objects", len(objs)).Msg("earlier part of the call kept")
	return nil
}

// listFolder lists the objects in the call's folder of the bucket itself
// (not under parts/): a few, the files of one call.
func (s *Store) listFolder(ctx context.Context, folder string) ([]types.Object, error) {
	prefix, delim := s.key(folder, "")+"/", "/"
	var objs []types.Object
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.cfg.Bucket, Prefix: &prefix, Delimiter: &delim})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		objs = append(objs, page.Contents...)
	}
	return objs, nil
}

// dropOthers deletes the objects in the call's folder of the bucket that
// are not among files (this part's), once an earlier part that had them
// is kept under parts/.
func (s *Store) dropOthers(ctx context.Context, folder string, files []string) error {
	objs, err := s.listFolder(ctx, folder)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if slices.Contains(files, path.Base(aws.ToString(o.Key))) {
			continue
		}
		if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.cfg.Bucket, Key: o.Key}); err != nil {
			return fmt.Errorf("delete %s: %w", aws.ToString(o.Key), err)
		}
	}
	return nil
}

// escapeKey escapes key for CopySource, each segment on its own.
func escapeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return strings.Join(segs, "/")
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
