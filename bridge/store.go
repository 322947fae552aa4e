package bridge

import "io"

// AudioSink receives a track's PCM16LE audio as it arrives (a streaming WAV
// writer in production).
type AudioSink interface {
	Write(pcm []byte) (int, error)
	WriteSilence(samples int64) error
	Samples() int64
	// Resume lets the recording go on after a failed write (a full disk
	// that has room again): it settles the recording at what really
	// reached storage and returns how many samples that is. A sink that
	// cannot go on returns an error; the track asks again a second of
	// audio later.
	Resume() (int64, error)
	// Flush hands what the sink buffers to storage, under a header that
	// counts it, without waiting for the disk's flush: from then on a
	// killed process loses none of it.
	Flush() error
	Close() error
}

// CallFiles is where one call's recordings, documents and journal go.
type CallFiles interface {
	// CreateTrack creates the track's recording, starting at call t=0.
	CreateTrack(track string, sampleRate int) (AudioSink, error)
	// AppendTrack reopens an existing recording to continue it (a call id
	// that comes back after its call ended, or after a restart).
	AppendTrack(track string, sampleRate int) (AudioSink, error)
	// WriteJSON replaces a document ("call.json", "transcript.json")
	// atomically.
	WriteJSON(name string, v any) error
	// WriteJSONNoWait is WriteJSON for the documents of a live call: as
	// atomic, and whole for a killed process once it returns, but it need
	// not wait for the disk's flush; the store makes it durable later
	// (the recorder: at its Syncer's next round, as the recordings).
	WriteJSONNoWait(name string, v any) error
	// AppendJSON appends each value as one line of the journal name (a
	// ".jsonl"), all or nothing: a failed append leaves the journal as it
	// was, and the call appends the same lines again with its next change.
	// Remove deletes the journal, and a missing one is no error.
	AppendJSON(name string, vs ...any) error
	Remove(name string) error
}

// Store keeps calls, live and ended. The bridge names calls and tracks by id
// and never by location: the store maps ids to safe places of its own (a
// local folder, an object store), and hands recordings back as readers.
type Store interface {
	// Open returns the call's files, creating the call if it is new.
	Open(callID string) (CallFiles, error)
	// ReadJSON decodes a call's document into v; ReadJSONLines calls fn
	// with each whole line of a call's journal (a missing journal reads as
	// empty). The error wraps fs.ErrNotExist when the call or the document
	// does not exist.
	ReadJSON(callID, name string, v any) error
	ReadJSONLines(callID, name string, fn func(line []byte) error) error
	// OpenTrack opens a track's recording, as it is now, for reading at
	// any offset (size: Seek to the end). The error wraps fs.ErrNotExist
	// when there is no such recording.
	OpenTrack(callID, track string) (io.ReadSeekCloser, error)
	// Scan calls fn, at start-up, with the stored record (call.json) of
	// every call, and a repair that makes the call's recordings whole
	// after a crash and returns how many samples each track's holds.
	Scan(fn func(record []byte, repair func() (samples map[string]int64, err error))) error
}
