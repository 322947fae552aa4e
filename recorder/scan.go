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
		fn(b, func() (map[string]int64, error) {
			samples, _, err := repairDir(dir)
			return samples, err
		})
	}
	return nil
}

// RepairAll repairs every call folder as Scan's repair does and returns how
// many WAVs it changed.
func (s *Store) RepairAll() (repaired int, err error) {
	calls, err := s.CallIDs()
	if err != nil {
		return 0, fmt.Errorf("repair all: %w", err)
	}
	var errs []error
	for _, name := range calls {
		_, n, err := repairDir(filepath.Join(s.root, name))
		repaired += n
		errs = append(errs, err)
	}
	return repaired, errors.Join(errs...)
}

// repairDir repairs one call folder: the samples of each recording it
// could read, by track, and how many WAVs it changed.
func repairDir(dir string) (samples map[string]int64, repaired int, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("repair call: %w", err)
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
			n, changed, err := repairWAV(path)
			if changed {
				repaired++
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			samples[strings.TrimSuffix(e.Name(), wavExt)] = n
		}
	}
	return samples, repaired, errors.Join(errs...)
}
