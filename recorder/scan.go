package recorder

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// recordName is the call record every call folder holds (see the layout).
const recordName = "call.json"

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
