package main

import (
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/recorder"
)

// fileStore adapts the recorder's call folders to what the bridge needs.
type fileStore struct{ *recorder.Store }

var _ bridge.Store = fileStore{}

func (s fileStore) Open(callID string) (bridge.CallFiles, error) {
	c, err := s.Store.Open(callID)
	if err != nil {
		return nil, err
	}
	return callFiles{c}, nil
}

// Calls reads every call folder's call.json; repair fixes its WAV headers.
func (s fileStore) Calls(fn func(rec bridge.CallRecord, repair func() error)) error {
	names, err := s.CallIDs()
	if err != nil {
		return err
	}
	for _, name := range names {
		dir := s.DirByName(name)
		b, err := os.ReadFile(filepath.Join(dir, "call.json"))
		if err != nil {
			continue // a folder without a record holds nothing the API can name
		}
		var rec bridge.CallRecord
		if json.Unmarshal(b, &rec) != nil || rec.CallID == "" {
			continue
		}
		fn(rec, func() error {
			wavs, _ := filepath.Glob(filepath.Join(dir, "*.wav"))
			for _, w := range wavs {
				if _, err := recorder.RepairWAV(w); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return nil
}

// TrackSamples is how many samples a stored recording holds (the record
// of a call interrupted by a crash is corrected with it).
func (s fileStore) TrackSamples(callID, track string) (int64, error) {
	path, err := s.Store.TrackPath(callID, track)
	if err != nil {
		return 0, err
	}
	_, n, err := recorder.ReadWAVInfo(path)
	return n, err
}

type callFiles struct{ *recorder.Call }

func (c callFiles) CreateTrack(track string, sampleRate int) (bridge.AudioSink, error) {
	return c.Call.CreateTrack(track, sampleRate)
}

func (c callFiles) AppendTrack(track string, sampleRate int) (bridge.AudioSink, error) {
	return c.Call.AppendTrack(track, sampleRate)
}
