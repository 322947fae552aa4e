package bridge

// A full disk (or a folder the bridge may not write) must not cost a call
// its transcription and captions. When a call's folder or a track's
// recording cannot be opened, these stand in for them: the call goes on
// without the files, and the error is in its record and the metrics.

// failedSink is a recording that could not be opened.
type failedSink struct{ err error }

var _ AudioSink = failedSink{}

func (f failedSink) Write([]byte) (int, error) { return 0, f.err }
func (f failedSink) WriteSilence(int64) error  { return f.err }
func (f failedSink) Samples() int64            { return 0 }
func (f failedSink) Resume() (int64, error)    { return 0, f.err }
func (f failedSink) Flush() error              { return f.err }
func (f failedSink) Close() error              { return nil }

// failedFiles is a call folder that could not be opened.
type failedFiles struct{ err error }

var _ CallFiles = failedFiles{}

func (f failedFiles) CreateTrack(string, int) (AudioSink, error) { return nil, f.err }
func (f failedFiles) AppendTrack(string, int) (AudioSink, error) { return nil, f.err }
func (f failedFiles) WriteJSON(string, any) error                { return f.err }
func (f failedFiles) WriteJSONNoWait(string, any) error          { return f.err }
func (f failedFiles) AppendJSON(string, ...any) error            { return f.err }
func (f failedFiles) Remove(string) error                        { return nil }
