package recorder

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

const jsonlExt = ".jsonl"

// AppendJSON appends each value as one line of JSON to the call's journal
// name (a ".jsonl" file), in one write, all or nothing. A journal is cheap to extend as
// things happen, where rewriting a whole document is not; after a crash it
// holds what the last rewrite of the document did not. A killed process
// loses nothing the kernel has; a power cut may lose what the store's
// Syncer has not synced yet (without one, the whole tail).
func (c *Call) AppendJSON(name string, vs ...any) error {
	if err := checkName("journal", name, jsonlExt); err != nil {
		return fmt.Errorf("append %s: %w", name, err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for _, v := range vs {
		if err := enc.Encode(v); err != nil { // Encode ends each value with a newline
			return fmt.Errorf("append %s: %w", name, err)
		}
	}
	path := filepath.Join(c.dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, filePerm)
	if err != nil {
		return fmt.Errorf("append %s: %w", name, err)
	}
	fi, werr := f.Stat()
	if werr == nil {
		if _, werr = f.Write(buf.Bytes()); werr != nil {
			// All or nothing: a torn line would be appended again whole.
			werr = errors.Join(werr, f.Truncate(fi.Size()))
		}
	}
	if werr == nil && c.syncer != nil && !c.syncer.written(path, false) {
		werr = f.Sync() // the syncer's set is full: sync now
	}
	if err := errors.Join(werr, f.Close()); err != nil {
		return fmt.Errorf("append %s: %w", name, err)
	}
	return nil
}

// Remove deletes the call's journal name; a missing journal is not an
// error.
func (c *Call) Remove(name string) error {
	if err := checkName("journal", name, jsonlExt); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if err := os.Remove(filepath.Join(c.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	return nil
}

// ReadJSONLines calls fn with each line of the call's journal name. A line
// cut short by a crash (the last one, without its newline) is skipped. A
// missing journal reads as empty.
func (s *Store) ReadJSONLines(callID, name string, fn func(line []byte) error) error {
	if err := checkName("journal", name, jsonlExt); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	f, err := os.Open(filepath.Join(s.Dir(callID), name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			if ferr := fn(line[:len(line)-1]); ferr != nil {
				return ferr
			}
		}
		if err != nil {
			return nil // io.EOF, with a partial last line or none
		}
	}
}
