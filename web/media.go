package web

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/gofiber/contrib/websocket"
	"github.com/rs/zerolog"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/provider"
)

// Close codes sent to providers.
const (
	closeNormal      = websocket.CloseNormalClosure   // stream ended
	closePolicy      = websocket.ClosePolicyViolation // protocol misuse: media before start, start twice, …
	closeUnsupported = websocket.CloseUnsupportedData // an encoding the bridge cannot decode
	closeInvalid     = websocket.CloseInvalidFramePayloadData
	closeTooBig      = websocket.CloseMessageTooBig
	closeGoingAway   = websocket.CloseGoingAway // shutdown
	closeTryLater    = websocket.CloseTryAgainLater
)

// maxBadFrames is how many malformed frames in a row a live stream may send
// before its socket is closed: one bad frame is noise, a run of them is a
// broken sender.
const maxBadFrames = 50

// detectFrames bounds how many frames detection may buffer.
const detectFrames = 3

// mediaConn is the state of one media socket's read loop.
type mediaConn struct {
	s      *Server
	c      *websocket.Conn
	log    zerolog.Logger
	name   provider.Name
	parser *provider.Parser
	stream MediaStream
	ev     provider.Event
	buf    bytes.Buffer // frame buffer reused for every message
	// deadlineAt is when the read deadline was last pushed back; zero
	// when the next read must set it (at open: the start timeout; once
	// started: the idle timeout).
	deadlineAt time.Time

	bad       int // malformed frames in a row
	badTotal  int
	warns     zerolog.BurstSampler // warn's: one per 5 s
	endReason string
	endErr    error
}

// serveMedia is the read loop of one provider media socket. It returns
// only when the socket is done and the stream has been handed back to its
// call; the stop watcher it starts has exited by then.
func (s *Server) serveMedia(c *websocket.Conn) {
	m := &mediaConn{s: s, c: c, log: s.log.With().Str("remote", c.IP()).Logger(), endReason: bridge.ReasonDisconnect,
		warns: zerolog.BurstSampler{Burst: 1, Period: 5 * time.Second}}
	if p, ok := c.Locals(localProvider).(provider.Name); ok {
		m.name = p
		m.parser = provider.NewParser(p)
		m.log = m.log.With().Str("provider", string(p)).Logger()
	}
	c.SetReadLimit(int64(s.cfg.MaxMessageBytes))

	// admitMedia checked the per-address cap before the upgrade; this
	// takes the place, closing (1013) a socket of a burst that raced past
	// the check.
	if !s.sockets.hold(kindMedia, c.IP()) {
		s.metr.perAddress.WithLabelValues(kindMedia).Inc()
		m.closeWith(closeTryLater, "too many sockets from this address")
		return
	}
	defer s.sockets.release(kindMedia, c.IP())
	s.metr.mediaSockets.Inc()
	defer s.metr.mediaSockets.Dec()
	// Sockets waiting for their start frame are bounded: each costs a
	// goroutine and buffers before any call accounts for it. Beyond the
	// bound a socket is closed at once (counted, pending_full).
	if n := s.pendingStarts.Add(1); n > int64(s.cfg.MaxPendingStreams) {
		s.pendingStarts.Add(-1)
		s.metr.unstarted.WithLabelValues("pending_full").Inc()
		s.authLog.Warn().Str("remote", c.IP()).Int("max", s.cfg.MaxPendingStreams).Msg("media socket closed: too many sockets waiting for their start frame")
		m.closeWith(closeTryLater, "too many sockets waiting for their start frame")
		return
	}
	s.metr.pendingSockets.Inc()
	releasePending := sync.OnceFunc(func() {
		s.pendingStarts.Add(-1)
		s.metr.pendingSockets.Dec()
	})
	defer releasePending()
	stopWatch := make(chan struct{})
	var watchers sync.WaitGroup
	defer func() {
		close(stopWatch)
		watchers.Wait()
		if m.stream != nil {
			m.stream.End(m.endReason, m.endErr)
		}
	}()
	watching := false
	started := func() {
		if m.stream != nil && !watching {
			watching = true
			releasePending()
			m.deadlineAt = time.Time{} // from now on the idle timeout
			if bc := batchConnOf(m.c.NetConn()); bc != nil {
				bc.batch(m.s.cfg.MediaBatch)
			}
			st := m.stream
			watchers.Go(func() { m.watchStop(st, stopWatch) })
		}
	}
	defer m.recoverPanic() // first of the deferred: the stream is handed back with reason error

	if m.name == "" {
		ok := m.detect()
		started()
		if !ok {
			return
		}
	}
	for {
		typ, frame, err := m.read()
		if err != nil {
			m.readFailed(err)
			return
		}
		done := m.handle(typ, frame)
		started()
		if done {
			m.awaitClose()
			return
		}
	}
}

// watchStop closes the socket when the bridge stops the stream (shutdown,
// maximum call duration), which ends the blocked read in serveMedia.
func (m *mediaConn) watchStop(st MediaStream, done <-chan struct{}) {
	defer func() {
		if v := recover(); v != nil {
			m.s.panicked(PanicSocket, v, debug.Stack()).Str("call_id", st.CallID()).Msg("media socket watcher panicked; socket closed")
			st.Fail(fmt.Errorf("internal error (socket): %v", v))
			m.closeConn() // ends the read loop
		}
	}()
	select {
	case <-done:
	case <-st.Stopped():
		reason := st.StopReason()
		code := closeNormal
		if reason == bridge.ReasonShutdown {
			code = closeGoingAway
		}
		m.closeWith(code, "stream ended by the bridge: "+reason)
		m.closeConn()
	}
}

// closeConn closes the TCP connection under the socket, which ends a read
// blocked in serveMedia even when the peer never answers the close frame.
// fasthttp's hijacked connection ignores Close (it closes the connection
// itself once the handler returns), so the connection it wraps is closed.
func (m *mediaConn) closeConn() {
	nc := m.c.NetConn()
	if u, ok := nc.(interface{ UnsafeConn() net.Conn }); ok {
		nc = u.UnsafeConn()
	}
	_ = nc.Close()
}

// recoverPanic is deferred by serveMedia: a panic on the read loop (a frame
// that reached a bug) closes this socket and ends its call with reason
// error, counted and logged with the stack once. Other calls go on.
func (m *mediaConn) recoverPanic() {
	v := recover()
	if v == nil {
		return
	}
	ev := m.s.panicked(PanicSocket, v, debug.Stack()).Str("remote", m.c.IP()).Str("provider", string(m.name))
	err := fmt.Errorf("internal error (socket): %v", v)
	m.endReason, m.endErr = bridge.ReasonError, err
	if m.stream != nil {
		ev = ev.Str("call_id", m.stream.CallID())
		m.stream.Fail(err)
	}
	ev.Msg("media socket handler panicked; socket closed, its call ends")
	_ = writeClose(m.c, websocket.CloseInternalServerErr, "internal error", time.Second)
}

// read returns the next message, reusing one buffer.
func (m *mediaConn) read() (int, []byte, error) {
	// Moving the deadline costs a lock and a timer update in the runtime
	// poller: do it at most every slack, and allow that much more
	// idle time, so a stream is still given at least IdleTimeout.
	slack := min(time.Second, m.s.cfg.IdleTimeout/10)
	if m.stream == nil {
		// Before the start frame: one deadline, StartTimeout after the
		// socket opened, however many frames come before it.
		if m.deadlineAt.IsZero() {
			m.deadlineAt = time.Now()
			_ = m.c.SetReadDeadline(m.deadlineAt.Add(m.s.cfg.StartTimeout))
		}
	} else if now := time.Now(); m.deadlineAt.IsZero() || now.Sub(m.deadlineAt) >= slack {
		m.deadlineAt = now
		_ = m.c.SetReadDeadline(now.Add(m.s.cfg.IdleTimeout + slack))
	}
	typ, r, err := m.c.NextReader()
	if err != nil {
		return 0, nil, err
	}
	m.buf.Reset()
	if _, err := m.buf.ReadFrom(r); err != nil {
		return 0, nil, err
	}
	return typ, m.buf.Bytes(), nil
}

func (m *mediaConn) readFailed(err error) {
	var ne interface{ Timeout() bool }
	switch {
	case errors.As(err, &ne) && ne.Timeout() && m.stream == nil:
		m.endReason = bridge.ReasonTimeout
		m.endErr = fmt.Errorf("no start frame within %s", m.s.cfg.StartTimeout)
		m.s.metr.unstarted.WithLabelValues("start_timeout").Inc()
		m.s.authLog.Warn().Str("remote", m.c.IP()).Dur("start_timeout", m.s.cfg.StartTimeout).Msg("media socket sent no start frame; closing") // sampled: can come in floods
		m.closeWith(closePolicy, m.endErr.Error())
	case errors.As(err, &ne) && ne.Timeout():
		m.endReason = bridge.ReasonTimeout
		m.endErr = fmt.Errorf("no frames for %s", m.s.cfg.IdleTimeout)
		m.log.Warn().Dur("idle", m.s.cfg.IdleTimeout).Msg("media stream idle; closing")
		m.closeWith(closeNormal, "idle timeout")
	case errors.Is(err, fws.ErrReadLimit): // the library's error, not contrib's look-alike
		m.endReason = bridge.ReasonError
		m.endErr = fmt.Errorf("message over the %d-byte limit", m.s.cfg.MaxMessageBytes)
		m.log.Warn().Int("limit", m.s.cfg.MaxMessageBytes).Msg("media message too large; closing")
		m.closeWith(closeTooBig, "message too large")
	default:
		if m.stream != nil && m.stream.StopReason() != "" {
			m.endReason = m.stream.StopReason()
		}
		// A closed socket is the normal end for providers that send no stop.
	}
}

// awaitClose reads, and drops, what the provider still sends after the
// bridge's close frame, until the provider's own close frame, the end of
// the connection or closeGrace. Closing the connection with bytes unread
// makes the kernel answer with a reset, which can overtake the close frame
// on its way and tells the provider the connection failed.
func (m *mediaConn) awaitClose() {
	_ = m.c.SetReadDeadline(time.Now().Add(closeGrace))
	for {
		if _, _, err := m.c.NextReader(); err != nil {
			return
		}
	}
}

func (m *mediaConn) closeWith(code int, reason string) {
	_ = writeClose(m.c, code, reason, time.Second)
}

// refuse closes the socket for a protocol error before or at start.
func (m *mediaConn) refuse(code int, err error) {
	m.endReason = bridge.ReasonError
	m.endErr = err
	m.s.metr.refused.WithLabelValues(string(m.name)).Inc()
	m.log.Warn().Err(err).Msg("media socket refused")
	m.closeWith(code, err.Error()) // last: whoever sees the close sees the count and the log
}

// detect reads the first frames until the provider is known, then replays
// them through the provider's parser.
func (m *mediaConn) detect() bool {
	var d provider.Detector
	var frames [][]byte
	var types []int
	for {
		typ, frame, err := m.read()
		if err != nil {
			m.readFailed(err)
			return false
		}
		if len(frames) == detectFrames {
			m.refuse(closePolicy, errors.New("could not tell the provider from the first frames"))
			return false
		}
		frames = append(frames, bytes.Clone(frame))
		types = append(types, typ)
		name, ok, err := d.Feed(frame, typ == websocket.TextMessage)
		if err != nil {
			m.refuse(closePolicy, fmt.Errorf("unrecognised media stream: %w", err))
			return false
		}
		if ok {
			if bound, ok := m.c.Locals(localBound).(provider.Name); ok && bound != name {
				m.refuse(closePolicy, fmt.Errorf("this socket authenticated as %s but streams %s", bound, name))
				return false
			}
			m.name = name
			m.parser = provider.NewParser(name)
			m.log = m.log.With().Str("provider", string(name)).Logger()
			for i, f := range frames {
				if m.handle(types[i], f) {
					return false
				}
			}
			return true
		}
	}
}

// handle processes one frame. It returns true when the socket should close.
func (m *mediaConn) handle(typ int, frame []byte) bool {
	var err error
	switch typ {
	case websocket.TextMessage:
		err = m.parser.Parse(frame, &m.ev)
	case websocket.BinaryMessage:
		err = m.parser.ParseBinary(frame, &m.ev)
	default:
		return false
	}
	if err != nil {
		return m.malformed(err)
	}
	ev := &m.ev
	switch ev.Kind {
	case provider.KindConnected:
		return false
	case provider.KindOther:
		m.s.metr.ignored.WithLabelValues(string(m.name)).Inc()
		switch ev.Name {
		case "mark", "playedStream", "clearedAudio": // acknowledgements of audio the bridge never sends
		default:
			m.warn().Str("event", bridge.Clip(ev.Name)).Str("detail", bridge.Clip(ev.Reason)).Msg("media event ignored")
		}
		return false
	case provider.KindStart:
		if m.stream != nil {
			m.refuse(closePolicy, errors.New("second start frame on one stream"))
			return true
		}
		provider.FillCallID(m.name, ev.Start)
		st, err := m.s.streams().StartStream(m.name, ev.Start)
		if err != nil {
			code := closePolicy
			switch {
			case errors.Is(err, bridge.ErrUnsupported):
				code = closeUnsupported
			case errors.Is(err, bridge.ErrTooManyCalls), errors.Is(err, bridge.ErrShuttingDown):
				code = closeTryLater
			}
			m.s.metr.streamsRefused.WithLabelValues(bridge.RefusalReason(err)).Inc()
			m.log = m.log.With().Str("call_id", bridge.Clip(ev.Start.CallID)).Str("stream_id", bridge.Clip(ev.Start.StreamID)).Logger()
			m.refuse(code, err)
			return true
		}
		m.stream = st
		m.log = m.log.With().Str("call_id", bridge.Clip(st.CallID())).Str("stream_id", bridge.Clip(st.ID())).Logger()
		if ev.Start.DroppedParameters > 0 {
			m.s.metr.paramsDropped.Add(float64(ev.Start.DroppedParameters))
			m.log.Warn().Int("dropped", ev.Start.DroppedParameters).Int("kept", len(ev.Start.CustomParameters)).
				Msg("custom parameters over the limits dropped")
		}
	case provider.KindMedia:
		if m.stream == nil {
			m.refuse(closePolicy, errors.New("media before start"))
			return true
		}
		if err := m.stream.Media(ev); err != nil {
			return m.malformed(err)
		}
	case provider.KindDTMF:
		if m.stream != nil {
			m.stream.DTMF(ev)
		}
	case provider.KindStop:
		m.endReason = bridge.ReasonStop
		// The stream's audio is in its WAVs before the provider is
		// answered; the call's end goes on after, on its own goroutine.
		if m.stream != nil {
			m.stream.End(m.endReason, m.endErr)
		}
		m.closeWith(closeNormal, "stream stopped")
		return true
	}
	m.bad = 0
	return false
}

// warn is a warning about a frame, or nil (which logs nothing) when one was
// logged in the current 5 s: a sender can repeat the problem on every frame.
// m.log names the provider once known and the call once started.
func (m *mediaConn) warn() *zerolog.Event {
	l := m.log.Sample(&m.warns)
	return l.Warn()
}

// malformed counts a bad frame; a run of them closes the socket.
func (m *mediaConn) malformed(err error) bool {
	m.bad++
	m.badTotal++
	m.s.metr.badFrames.WithLabelValues(string(m.name)).Inc()
	m.warn().Err(err).Int("bad_frames", m.badTotal).Msg("malformed media frame dropped")
	if m.stream == nil {
		m.refuse(closeInvalid, err)
		return true
	}
	if m.bad >= maxBadFrames {
		m.refuse(closeInvalid, fmt.Errorf("%d malformed frames in a row: %w", m.bad, err))
		return true
	}
	return false
}
