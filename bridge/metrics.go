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
func (nopMetrics) Panic(string)                 {}
