//go:build unix

package web

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// Batched reads on media sockets.
//
// A provider sends a frame every 20 ms per track. Read one at a time, each
// frame costs a goroutine wake-up and two read(2) calls (one that returns
// it, one that finds the socket empty before the goroutine parks): on a
// small machine that is most of what a call costs. Once a stream has
// started, its socket asks the kernel (SO_RCVLOWAT) to report it readable
// only when about --media-batch worth of its own traffic is queued, and
// its reader waits for readiness before reading instead of reading into
// EAGAIN. A wait never lasts longer than the batch, so a provider that
// pauses, or a last small message (stop, a mark) that never fills the
// mark, is read at most one batch late; the peer's FIN and errors wake
// the reader at once.

// lowatShare is the part of a batch's expected bytes the low-water mark
// asks for: below 1, so the batch is complete before its deadline even
// when frames grow by a few bytes (sequence numbers, timestamps).
const lowatShare = 0.8

// maxLowat bounds the low-water mark: far above a batch of any provider's
// frames, and small beside the socket's receive buffer, which the kernel
// grows to twice the mark if needed.
const maxLowat = 32 << 10

// rateEvery is how often the mark follows the stream's byte rate.
const rateEvery = time.Second

// BatchListener wraps the listener the server accepts on so that media
// sockets can batch their reads (see Config.MediaBatch). Connections that
// never ask read exactly as before.
// Its connections also close a refused request gently (lingerOnClose).
func BatchListener(ln net.Listener) net.Listener {
	return batchListener{Listener: ln, lingering: make(chan struct{}, maxLingering)}
}

type batchListener struct {
	net.Listener
	lingering chan struct{} // a slot per connection closing gently
}

func (l batchListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c, nil
	}
	return &batchConn{Conn: c, rc: rc, lingering: l.lingering}, nil
}

// batchConn is an accepted connection whose reads can be batched. Only the
// connection's one reader calls Read, SetReadDeadline and batch; Close may
// come from anywhere.
type batchConn struct {
	net.Conn
	rc syscall.RawConn

	window  time.Duration // 0: plain reads
	readBy  time.Time     // the caller's read deadline; zero: none
	drained bool          // the last read found the socket empty or left it so
	lowat   int           // SO_RCVLOWAT in effect
	bytes   int           // read since rateAt
	rateAt  time.Time

	linger    atomic.Bool // close gently: see lingerOnClose
	lingering chan struct{}
}

// batch turns batched reads on for the rest of the connection's life.
func (c *batchConn) batch(window time.Duration) bool {
	if window <= 0 {
		return false
	}
	c.window, c.lowat, c.rateAt = window, 1, time.Now()
	return true
}

// SetReadDeadline keeps the caller's deadline: batched reads wait in
// shorter steps up to it.
func (c *batchConn) SetReadDeadline(t time.Time) error {
	if c.window <= 0 {
		return c.Conn.SetReadDeadline(t)
	}
	c.readBy = t
	return nil
}

func (c *batchConn) SetDeadline(t time.Time) error {
	if c.window <= 0 {
		return c.Conn.SetDeadline(t)
	}
	c.readBy = t
	return c.Conn.SetWriteDeadline(t)
}

func (c *batchConn) Read(p []byte) (int, error) {
	if c.window <= 0 || len(p) == 0 {
		return c.Conn.Read(p)
	}
	for {
		// Every read may wait, so every read has a deadline: at most a
		// batch from now, and never past the caller's.
		now := time.Now()
		if !c.readBy.IsZero() && !now.Before(c.readBy) {
			return 0, os.ErrDeadlineExceeded
		}
		wait := now.Add(c.window)
		if !c.readBy.IsZero() && c.readBy.Before(wait) {
			wait = c.readBy
		}
		if err := c.Conn.SetReadDeadline(wait); err != nil {
			return 0, err
		}
		n, err := c.read(p)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The batch's time is up with less than the mark queued:
			// take whatever there is.
			c.drained = false
			continue
		}
		return n, err
	}
}

// read makes one read(2) that returns data, an error or the end of the
// stream, waiting for readiness first when the last read left the socket
// empty (instead of a read(2) that would find it so) and whenever the
// socket turns out empty.
func (c *batchConn) read(p []byte) (n int, err error) {
	var errno error
	skip := c.drained
	rerr := c.rc.Read(func(fd uintptr) bool {
		if skip {
			skip = false
			return false
		}
		for {
			n, errno = syscall.Read(int(fd), p)
			if errno != syscall.EINTR {
				break
			}
		}
		return errno != syscall.EAGAIN
	})
	switch {
	case rerr != nil:
		return 0, rerr
	case errno != nil:
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", errno)}
	case n <= 0:
		return 0, io.EOF
	}
	c.drained = n < len(p)
	c.follow(n)
	return n, nil
}

// follow counts bytes read and, once per rateEvery, sets the low-water
// mark to the share of a batch the stream's rate gives.
func (c *batchConn) follow(n int) {
	c.bytes += n
	now := time.Now()
	d := now.Sub(c.rateAt)
	if d < rateEvery {
		return
	}
	want := int(float64(c.bytes) / d.Seconds() * c.window.Seconds() * lowatShare)
	want = max(1, min(want, maxLowat))
	c.bytes, c.rateAt = 0, now
	// Only a change of a fifth or more is worth a system call.
	if want*5 >= c.lowat*4 && want*5 <= c.lowat*6 {
		return
	}
	var serr error
	if err := c.rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, want)
	}); err == nil && serr == nil {
		c.lowat = want
	}
}

// batchConnOf finds the accepted connection under a hijacked one.
func batchConnOf(nc net.Conn) *batchConn {
	for range 4 {
		switch v := nc.(type) {
		case *batchConn:
			return v
		case interface{ UnsafeConn() net.Conn }:
			nc = v.UnsafeConn()
		default:
			return nil
		}
	}
	return nil
}

// Refused requests.
//
// A request refused before it was read whole (a header longer than the
// read buffer: 431) is answered, and then its connection closes with the
// rest of the request still arriving. Closed at once, the socket answers
// that rest with a reset, which can reach the client before it has read
// the answer: it sees "connection reset" where it should see 431. Such a
// connection instead sends its answer and a FIN, then reads and discards
// what the client still sends, for at most lingerFor and lingerBytes,
// before it goes.
const (
	lingerFor   = 500 * time.Millisecond
	lingerBytes = 256 << 10
	// maxLingering bounds the connections closing gently at once, each a
	// socket and a goroutine for at most lingerFor. Beyond it a refused
	// request's connection closes at once, as any other.
	maxLingering = 256
)

// lingerOnClose makes the connection's next Close gentle (see above).
func (c *batchConn) lingerOnClose() { c.linger.Store(true) }

func (c *batchConn) Close() error {
	if !c.linger.CompareAndSwap(true, false) {
		return c.Conn.Close()
	}
	tc, ok := c.Conn.(*net.TCPConn)
	if !ok {
		return c.Conn.Close()
	}
	select {
	case c.lingering <- struct{}{}:
	default:
		return c.Conn.Close()
	}
	if err := tc.CloseWrite(); err != nil {
		<-c.lingering
		return tc.Close()
	}
	go func() {
		defer func() { <-c.lingering }()
		_ = tc.SetReadDeadline(time.Now().Add(lingerFor))
		_, _ = io.CopyN(io.Discard, tc, lingerBytes)
		_ = tc.Close()
	}()
	return nil
}
