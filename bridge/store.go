package bridge

// AudioSink receives a track's PCM16LE audio as it arrives (a streaming WAV
// writer in production).
type AudioSink interface {
	Write(pcm []byte) (int, error)
	WriteSilence(samples int64) error
	Samples() int64
	Close() error
}

// CallFiles is where one call's recordings and JSON documents go.
type CallFiles interface {
	// CreateTrack creates the track's recording, starting at call t=0.
	CreateTrack(track string, sampleRate int) (AudioSink, error)
	// AppendTrack reopens an existing recording to continue it (a call id
	// that comes back after its call ended, or after a restart).
	AppendTrack(track string, sampleRate int) (AudioSink, error)
	// WriteJSON replaces a document ("call.json", "transcript.json")
	// atomically.
	WriteJSON(name string, v any) error
}

// Store keeps calls after they end. The bridge never builds paths from call
// ids itself; the store maps ids to safe locations.
type Store interface {
	Open(callID string) (CallFiles, error)
	ReadJSON(callID, name string, v any) error
	// TrackPath is the recording of a track, for serving it.
	TrackPath(callID, track string) (string, error)
	// Calls reads every stored call record (at start-up) and repairs its
	// recordings when repair is true.
	Calls(fn func(rec CallRecord, repair func() error)) error
}
