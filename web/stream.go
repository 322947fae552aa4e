package web

import (
	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/provider"
)

// MediaStream is what a media socket's read loop feeds: a stream of a
// call held here (*bridge.Stream), or in cluster mode one relayed to the
// replica that holds the call. The read loop is its only caller but for
// Stopped and StopReason, which the socket's stop watcher reads.
type MediaStream interface {
	CallID() string
	ID() string
	// Media records one frame; an error describes a bad frame.
	Media(ev *provider.Event) error
	DTMF(ev *provider.Event)
	// End ends the stream (idempotent): stop, the socket closed, or an
	// error.
	End(reason string, err error)
	// Stopped is closed when the bridge wants the socket closed;
	// StopReason says why.
	Stopped() <-chan struct{}
	StopReason() string
	// Fail ends the stream's call with reason error (a panic on the
	// socket).
	Fail(err error)
}

// Streams starts the media streams of sockets that sent their start frame.
// Deps.Streams may replace the registry's (cluster mode routes a stream to
// the replica that holds its call); errors are the registry's refusals.
type Streams interface {
	StartStream(p provider.Name, st *provider.Start) (MediaStream, error)
}

var _ MediaStream = (*bridge.Stream)(nil)

// localStreams starts every stream on the registry of this process.
type localStreams struct{ reg Registry }

func (l localStreams) StartStream(p provider.Name, st *provider.Start) (MediaStream, error) {
	s, err := l.reg.StartStream(p, st)
	if err != nil {
		return nil, err // not a typed nil in an interface
	}
	return s, nil
}

// streams is what starts media streams: Deps.Streams, else the registry.
func (s *Server) streams() Streams {
	if s.strm != nil {
		return s.strm
	}
	return localStreams{s.reg}
}
