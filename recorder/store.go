// Package recorder keeps each call on disk while it happens: one streaming
// WAV per track, written as the audio arrives, and the call's JSON documents
// beside them.
//
// Layout (part of the public contract):
//
//	<data>/calls/<call folder>/call.json        call record
//	<data>/calls/<call folder>/transcript.json  transcript
//	<data>/calls/<call folder>/<track>.wav      PCM16 mono, native rate
//
// The call folder is the call id when that is a safe file name and a
// sanitised, hashed form of it otherwise (see Store.Dir), so the caller keeps
// the real id inside call.json and a recovery scan reads it from there.
//
// Recordings survive the process: a WAV is playable while it grows and after
// a kill -9, Store.Scan repairs what a crash left stale, and a Syncer bounds
// what a power cut loses. JSON documents are replaced atomically. Memory per
// call is a fixed write buffer per track (bufferSize), whatever its length.
//
// The package knows nothing of the JSON schemas; callers pass the values to
// encode.
package recorder

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

const (
	callsDir  = "calls"
	wavExt    = ".wav"
	jsonExt   = ".json"
	tmpPrefix = ".tmp-"
	dirPerm   = 0o755
	filePerm  = 0o644

	recordName = "call.json" // the call record every call folder holds
)

// Store is the folder of calls under a data directory.
type Store struct {
	root   string  // <data>/calls
	syncer *Syncer // nil: recordings are synced when they close, journals never
}

// SyncWith makes every recording and journal of calls opened from now on
// durable on s's timer. Call it before the store is used.
func (s *Store) SyncWith(sy *Syncer) { s.syncer = sy }

// NewStore returns the store under dataDir, creating <dataDir>/calls if needed.
func NewStore(dataDir string) (*Store, error) {
	root := filepath.Join(dataDir, callsDir)
	if err := os.MkdirAll(root, dirPerm); err != nil {
		return nil, fmt.Errorf("new store: %w", err)
	}
	return &Store{root: root}, nil
}

// Dir returns the call's folder: the call id itself when it is a safe file
// name, otherwise a deterministic, distinct name inside the store (see
// dirName).
func (s *Store) Dir(callID string) string {
	return filepath.Join(s.root, dirName(callID))
}

// Root returns the folder that holds the call folders, <data>/calls.
func (s *Store) Root() string { return s.root }

// CallIDs returns the names of the call folders present, sorted. They are
// folder names, not necessarily call ids: read call.json for the real id.
func (s *Store) CallIDs() ([]string, error) {
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("list calls: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.IsDir() && isSafeName(e.Name()) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// Scan calls fn, at start-up, with the record (call.json as stored) of each
// call folder, in folder order, and with repair, which fixes that folder
// after a crash: it repairs every WAV (see RepairWAV), removes the temporary
// files of interrupted document writes, and returns how many samples each
// track's recording holds. A file it cannot repair does not stop the others;
// their errors are returned together. A folder without a call.json holds
// nothing a caller can name and is skipped. Call repair before calls start:
// a temporary file is only a leftover when nobody is writing.
func (s *Store) Scan(fn func(record []byte, repair func() (samples map[string]int64, err error))) error {
	names, err := s.CallIDs()
	if err != nil {
		return err
	}
	for _, name := range names {
		dir := filepath.Join(s.root, name)
		b, err := os.ReadFile(filepath.Join(dir, recordName))
		if err != nil {
			continue
		}
		fn(b, func() (map[string]int64, error) { return repairDir(dir) })
	}
	return nil
}

// repairDir repairs one call folder and returns the samples of each
// recording it could repair, by track.
func repairDir(dir string) (samples map[string]int64, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("repair call: %w", err)
	}
	samples = map[string]int64{}
	var errs []error
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		switch {
		case !e.Type().IsRegular():
		case strings.HasPrefix(e.Name(), tmpPrefix):
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("repair call: %w", err))
			}
		case strings.HasSuffix(e.Name(), wavExt):
			n, err := RepairWAV(path)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			samples[strings.TrimSuffix(e.Name(), wavExt)] = n
		}
	}
	return samples, errors.Join(errs...)
}

// Open creates the call's folder if needed and returns it.
func (s *Store) Open(callID string) (*Call, error) {
	dir := s.Dir(callID)
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return nil, fmt.Errorf("open call: %w", err)
	}
	return &Call{dir: dir, syncer: s.syncer}, nil
}

// ReadJSON decodes the call's JSON document name ("call.json" or
// "transcript.json") into v. The error wraps os.ErrNotExist when the call or
// the document does not exist.
func (s *Store) ReadJSON(callID, name string, v any) error {
	if err := checkName("document", name, jsonExt); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	b, err := os.ReadFile(filepath.Join(s.Dir(callID), name))
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	return nil
}

// TrackPath returns the path of the call's <track>.wav. The track must be a
// safe file name; it is never mapped, since track names come from the bridge
// ("inbound", "outbound") and a surprising one is a bug to report.
func (s *Store) TrackPath(callID, track string) (string, error) {
	if !isSafeName(track) {
		return "", fmt.Errorf("track path: unsafe track name %q", track)
	}
	return filepath.Join(s.Dir(callID), track+wavExt), nil
}

// OpenTrack opens the call's <track>.wav for reading as it is now, so a
// recording still being written can be read up to its last write. The
// error wraps fs.ErrNotExist when there is no such recording (an unsafe
// track name included: it cannot have been recorded).
func (s *Store) OpenTrack(callID, track string) (io.ReadSeekCloser, error) {
	if !isSafeName(track) {
		return nil, fmt.Errorf("open track: unsafe track name %q: %w", track, fs.ErrNotExist)
	}
	f, err := os.Open(filepath.Join(s.Dir(callID), track+wavExt))
	if err != nil {
		return nil, fmt.Errorf("open track: %w", err)
	}
	return f, nil
}

// Call is one call's folder.
type Call struct {
	dir    string
	syncer *Syncer
}

// Dir returns the call's folder.
func (c *Call) Dir() string { return c.dir }

// CreateTrack creates <track>.wav in the call's folder and returns a WAV
// writing to it at sampleRate Hz. The WAV owns the file: closing the WAV syncs
// and closes it. An existing recording is never overwritten: if the file is
// already there the error wraps fs.ErrExist, and the caller decides (a second
// stream for the same track should use another name).
func (c *Call) CreateTrack(track string, sampleRate int) (*WAV, error) {
	if !isSafeName(track) {
		return nil, fmt.Errorf("create track: unsafe track name %q", track)
	}
	path := filepath.Join(c.dir, track+wavExt)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return nil, fmt.Errorf("create track: %w", err)
	}
	w, err := NewWAV(f, sampleRate)
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("create track %s: %w", track, err)
	}
	w.syncWith(c.syncer)
	return w, nil
}

// WriteJSON replaces the call's JSON document name with v encoded as
// 2-space-indented JSON. The replacement is atomic: the document is written
// to a temporary file in the same folder, synced and renamed over the old one,
// so readers and a crash see either the old or the new document, and
// concurrent writers leave one of their documents whole.
func (c *Call) WriteJSON(name string, v any) error { return c.writeJSON(name, v, true) }

// WriteJSONNoWait is WriteJSON without waiting for the disk's flush, for
// the documents of a live call. The replacement is as atomic for readers
// and for a killed process (the kernel has the whole new document before
// it takes the old one's name); durability against a power cut comes with
// the store's Syncer, whose next round syncs the document and its folder,
// as it does the recordings and journals written beside it. A store
// without a Syncer, or whose set of files for the next round is full,
// syncs at once, as WriteJSON does.
func (c *Call) WriteJSONNoWait(name string, v any) error {
	return c.writeJSON(name, v, c.syncer == nil)
}

func (c *Call) writeJSON(name string, v any, wait bool) error {
	if err := checkName("document", name, jsonExt); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	// Transcripts are shown as text, not embedded in HTML: keep "<", ">"
	// and "&" readable in the file.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}

	path := filepath.Join(c.dir, name)
	if !wait && (!c.syncer.written(path, false) || !c.syncer.written(c.dir, true)) {
		wait = true // the round's set is full: sync now
	}
	tmp, err := os.CreateTemp(c.dir, tmpPrefix+name+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	tmpPath := tmp.Name()
	err = writeClose(tmp, buf.Bytes(), wait)
	if err == nil {
		err = os.Chmod(tmpPath, filePerm)
	}
	if err == nil {
		err = os.Rename(tmpPath, path)
	}
	if err != nil {
		os.Remove(tmpPath)
		return fmt.Errorf("write %s: %w", name, err)
	}
	if !wait {
		return nil
	}
	// Make the rename itself durable. Best effort: some filesystems refuse
	// to sync a directory, and the document is already complete either way.
	if d, err := os.Open(c.dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// writeClose writes b to f and closes it, syncing it first when sync is
// set.
func writeClose(f *os.File, b []byte, sync bool) error {
	_, err := f.Write(b)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// checkName accepts a safe file name ending in ext: .json for documents
// (the layout defines call.json and transcript.json; others may join them),
// .jsonl for journals. kind names the file in the error.
func checkName(kind, name, ext string) error {
	if !isSafeName(name) || !strings.HasSuffix(name, ext) {
		return fmt.Errorf("invalid %s name %q", kind, name)
	}
	return nil
}
