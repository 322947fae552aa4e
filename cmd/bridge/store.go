package main

import (
	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/recorder"
)

// fileStore is the recorder's call folders as the bridge's Store: it hands
// out calls and recordings as the bridge's interfaces, which the recorder's
// own types satisfy but cannot name.
type fileStore struct{ *recorder.Store }

var (
	_ bridge.Store     = fileStore{}
	_ bridge.CallFiles = callFiles{}
	_ bridge.AudioSink = (*recorder.WAV)(nil)
)

func (s fileStore) Open(callID string) (bridge.CallFiles, error) {
	c, err := s.Store.Open(callID)
	if err != nil {
		return nil, err
	}
	return callFiles{c}, nil
}

type callFiles struct{ *recorder.Call }

func (c callFiles) CreateTrack(track string, sampleRate int) (bridge.AudioSink, error) {
	return c.Call.CreateTrack(track, sampleRate)
}

func (c callFiles) AppendTrack(track string, sampleRate int) (bridge.AudioSink, error) {
	return c.Call.AppendTrack(track, sampleRate)
}
