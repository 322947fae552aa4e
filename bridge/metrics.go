package bridge

import "time"

// Metrics is what the bridge reports about ingest; the Prometheus
// implementation lives with the HTTP server.
type Metrics interface {
	CallStarted()
	CallEnded(reason string)
	Frame(pcmBytes int)
	Duplicate()
	Gap(kind string, ms int64)
	Final(track string)
	STTEvent(event, code string)
	RecordError()
	// CaptionLatency is the time from the audio at the end of a final
	// reaching the bridge to the final being published (it includes the
	// engine's wait for the end of the utterance).
	CaptionLatency(d time.Duration)
	// EventsDropped counts transcript events not kept (nor published)
	// because their call reached --max-events-per-call.
	EventsDropped(n int)
	// GapUnfilled counts missing media audio not filled with silence:
	// beyond --max-gap at once, or beyond the call's wall time plus
	// --max-gap in all.
	GapUnfilled(ms int64)
	// CallbackDropped counts a status callback not kept (see callbacks.go
	// for the reasons).
	CallbackDropped(reason string)
	// Panic counts a panic recovered on a call's goroutines, by where it
	// happened (PanicCall, PanicTrack).
	Panic(where string)
}

type nopMetrics struct{}

func (nopMetrics) CallStarted()                 {}
func (nopMetrics) CallEnded(string)             {}
func (nopMetrics) Frame(int)                    {}
func (nopMetrics) Duplicate()                   {}
func (nopMetrics) Gap(string, int64)            {}
func (nopMetrics) Final(string)                 {}
func (nopMetrics) STTEvent(string, string)      {}
func (nopMetrics) RecordError()                 {}
func (nopMetrics) CaptionLatency(time.Duration) {}
func (nopMetrics) EventsDropped(int)            {}
func (nopMetrics) GapUnfilled(int64)            {}
func (nopMetrics) CallbackDropped(string)       {}
func (nopMetrics) Panic(string)                 {}
