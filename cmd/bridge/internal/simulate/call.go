package simulate

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fastjson"

	"github.com/callcaptions/bridge/bridge"
)

// simStats are the measurements every call of a run adds to.
type simStats struct {
	frames    atomic.Int64
	lateness  latencies // frame sent after it was due
	caption   latencies // frame that ends an utterance sent → its final received
	stopClose latencies // stop sent → the bridge's close frame received
	connect   latencies // media socket dialled → upgraded (TCP connect and handshake)

	finals     atomic.Int64 // finals received
	predicted  atomic.Int64 // finals the audio should produce before the end
	matched    atomic.Int64 // finals received that were predicted
	mismatched atomic.Int64 // matched, but ending at another time than predicted
}

// callResult is how one call went.
type callResult struct {
	id          string
	replica     int // index of the bridge it was played into
	err         error
	streamStart time.Time // first media frame due
	streamEnd   time.Time // last media frame sent
}

// playCall plays one call: subscribe to its captions, open the media
// socket, send the start, the frames at their pace and the stop, wait for
// the bridge to close the socket and for call.ended. The run's call nth
// (from 0) is played into replicaOf(nth) and followed on captionsOf(nth).
func (r *simRun) playCall(ctx context.Context, nth int, id string) (res callResult) {
	res.id, res.replica = id, r.replicaOf(nth)
	media := r.targets[res.replica]
	ids := r.d.Wire.NewIDs()
	ids.Call = id
	a := r.audio
	for _, t := range a.tracks {
		r.stats.predicted.Add(int64(len(t.finals)))
	}

	var sub *captionSub
	if r.cmd.Subscribe || r.cmd.Captions {
		var err error
		if sub, err = r.subscribe(ctx, r.targets[r.captionsOf(nth)].client, ids.Call); err != nil {
			res.err = fmt.Errorf("subscribe to captions: %w", err)
			return res
		}
		defer func() { sub.conn.Close(); <-sub.done }()
	}

	dialer := websocket.Dialer{HandshakeTimeout: 15 * time.Second, ReadBufferSize: 256, WriteBufferSize: 4096}
	dialAt := time.Now()
	conn, resp, err := dialer.DialContext(ctx, media.mediaURL, media.header)
	if err != nil {
		res.err = fmt.Errorf("open media socket: %w", dialErr(err, resp))
		return res
	}
	r.stats.connect.add(time.Since(dialAt))
	// The bridge sends nothing on a media socket but its close frame: a
	// reader notices it (and answers pings). Closing the socket ends it,
	// and the call waits for it.
	var closedAt time.Time // written before closed is sent on
	closed := make(chan error, 1)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				closedAt = time.Now()
				closed <- err
				return
			}
		}
	}()
	defer func() { conn.Close(); <-readerDone }()

	speed := r.cmd.Speed
	playFor := time.Duration(0)
	if speed > 0 {
		playFor = time.Duration(float64(a.duration()) / speed)
	}
	_ = conn.SetWriteDeadline(time.Now().Add(playFor + r.cmd.Timeout + time.Minute))
	write := func(b []byte) error { return conn.WriteMessage(websocket.TextMessage, b) }
	if f := r.d.Wire.Connected(); f != nil {
		if res.err = write(f); res.err != nil {
			return res
		}
	}
	if res.err = write(r.d.Wire.Start(ids, a.trackNames(), a.encoding, a.rate, r.params)); res.err != nil {
		return res
	}

	frameDur := a.frameDuration()
	frameMs := frameDur.Milliseconds()
	tick := float64(frameDur)
	if speed > 0 {
		tick /= speed
	}
	epoch := time.Now().UnixMilli()
	seq := r.d.Wire.FirstSeq
	buf := make([]byte, 0, 4096)
	next := make([]int, len(a.tracks)) // next predicted final per track
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	t0 := time.Now()
	res.streamStart = t0
	for i := 0; i < a.frames; i++ {
		if speed > 0 {
			due := t0.Add(time.Duration(float64(i) * tick))
			if d := time.Until(due); d > 0 {
				timer.Reset(d)
				select {
				case <-timer.C:
				case <-ctx.Done():
					res.err = ctx.Err()
					return res
				}
			}
			r.stats.lateness.add(time.Since(due))
		}
		ts := int64(i) * frameMs
		if r.d.Wire.EpochTimestamps {
			ts += epoch
		}
		for ti, t := range a.tracks {
			buf = r.d.Wire.AppendMedia(buf[:0], ids, seq, int64(i+1), ts, t.name, t.payloads[i])
			seq++
			// The frame that ends an utterance: its send time is taken
			// before the write, which the final may otherwise overtake.
			for k := next[ti]; k < len(t.finals) && t.finals[k].frame == i; k = next[ti] {
				if sub != nil {
					sub.sentAt[ti][k].Store(time.Now().UnixNano())
				}
				next[ti]++
			}
			if err := write(buf); err != nil {
				res.err = fmt.Errorf("send frame %d of %s: %w", i+1, t.name, err)
				return res
			}
			r.stats.frames.Add(1)
		}
	}
	res.streamEnd = time.Now()

	// End the stream as the provider does: stop, or just a close.
	stopAt := time.Now()
	if f := r.d.Wire.Stop(ids, seq); f != nil {
		if err := write(f); err != nil {
			res.err = fmt.Errorf("send stop: %w", err)
			return res
		}
	} else if err := conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "call ended"), time.Now().Add(5*time.Second)); err != nil {
		res.err = fmt.Errorf("close: %w", err)
		return res
	}
	wait := time.NewTimer(r.cmd.Timeout)
	defer wait.Stop()
	select {
	case err := <-closed:
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code == websocket.CloseNormalClosure {
			r.stats.stopClose.add(closedAt.Sub(stopAt))
		} else if res.err = err; errors.As(err, &ce) {
			res.err = fmt.Errorf("the bridge closed the socket with %d %q", ce.Code, ce.Text)
		}
	case <-wait.C:
		res.err = errors.New("the bridge did not close the socket")
	case <-ctx.Done():
		res.err = ctx.Err()
	}
	if res.err != nil {
		return res
	}
	conn.Close()

	if sub != nil {
		timedOut := false
		select {
		case <-sub.done:
		case <-wait.C:
			timedOut = true // closing the socket now is what fails its read
		case <-ctx.Done():
		}
		sub.conn.Close()
		<-sub.done
		switch {
		case timedOut && !sub.ended:
			res.err = fmt.Errorf("no call.ended on the caption socket within %s of the stop", r.cmd.Timeout)
		case sub.err != nil && !timedOut:
			res.err = fmt.Errorf("caption socket: %w", sub.err)
		case !sub.ended:
			res.err = errors.New("no call.ended on the caption socket")
		}
	}
	return res
}

func (a *simAudio) trackNames() []string {
	names := make([]string, len(a.tracks))
	for i, t := range a.tracks {
		names[i] = t.name
	}
	return names
}

// captionSub is one call's caption socket and what arrived on it.
type captionSub struct {
	r      *simRun
	conn   *websocket.Conn
	callID string
	sentAt [][]atomic.Int64 // per track, per predicted final: when its frame was sent (Unix ns)
	done   chan struct{}

	// Written by the reader, read after done.
	ended bool
	err   error
}

// subscribe opens /ws/captions?call=<id> on the bridge of c before the
// call starts (the hub holds such a subscriber until the call begins).
func (r *simRun) subscribe(ctx context.Context, c *Client, callID string) (*captionSub, error) {
	dialer := websocket.Dialer{HandshakeTimeout: 15 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 256}
	conn, err := c.Dial(ctx, &dialer, "/ws/captions?call="+url.QueryEscape(callID), c.Header())
	if err != nil {
		return nil, err
	}
	s := &captionSub{r: r, conn: conn, callID: callID, done: make(chan struct{})}
	s.sentAt = make([][]atomic.Int64, len(r.audio.tracks))
	for i, t := range r.audio.tracks {
		s.sentAt[i] = make([]atomic.Int64, len(t.finals))
	}
	go s.read()
	return s, nil
}

// read handles events until the socket ends: call.ended, then the
// bridge's close 1000.
func (s *captionSub) read() {
	defer close(s.done)
	var p fastjson.Parser
	for {
		_, b, err := s.conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if !s.ended && !(errors.As(err, &ce) && ce.Code == websocket.CloseNormalClosure) {
				s.err = err
			}
			return
		}
		now := time.Now()
		v, err := p.ParseBytes(b)
		if err != nil {
			s.err = fmt.Errorf("event is not JSON: %w", err)
			return
		}
		switch string(v.GetStringBytes("type")) {
		case bridge.TypeTranscriptFinal:
			s.final(v, now)
		case bridge.TypeCallEnded:
			s.ended = true
			if s.r.cmd.Captions {
				s.r.logf("%s  call ended (%s)\n", s.callID, v.GetStringBytes("reason"))
			}
		case bridge.TypeCallStarted:
			if s.r.cmd.Captions {
				s.r.logf("%s  call started\n", s.callID)
			}
		}
	}
}

// final matches a final with the utterance the simulator predicted and
// measures its latency.
func (s *captionSub) final(v *fastjson.Value, now time.Time) {
	st := &s.r.stats
	st.finals.Add(1)
	track := string(v.GetStringBytes("track"))
	seg := string(v.GetStringBytes("segment_id"))
	endMs := v.GetInt64("end_ms")
	if s.r.cmd.Captions {
		s.r.logf("%s  [%-8s %6.2f–%6.2f s] %s\n", s.callID, track, float64(v.GetInt64("start_ms"))/1000, float64(endMs)/1000, v.GetStringBytes("text"))
	}
	n := 0
	if i := strings.LastIndexByte(seg, '-'); i >= 0 {
		n, _ = strconv.Atoi(seg[i+1:])
	}
	for ti, t := range s.r.audio.tracks {
		if t.name != track || n < 1 || n > len(t.finals) || t.finals[n-1].segment != n {
			continue
		}
		sent := s.sentAt[ti][n-1].Load()
		if sent == 0 {
			return // the final came before the frame that should end it
		}
		st.matched.Add(1)
		st.caption.add(now.Sub(time.Unix(0, sent)))
		if d := t.finals[n-1].endMs - endMs; d > 20 || d < -20 {
			st.mismatched.Add(1)
		}
	}
}
