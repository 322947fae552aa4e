//go:build unix

package web

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// batchPair is an accepted batchConn with batching on and the client end
// of its loopback connection.
func batchPair(t *testing.T, window time.Duration) (*batchConn, net.Conn) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := BatchListener(raw)
	t.Cleanup(func() { ln.Close() })
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	bc := batchConnOf(sc)
	if bc == nil {
		t.Fatalf("accepted %T, not a batchConn", sc)
	}
	if !bc.batch(window) {
		t.Fatal("batch refused")
	}
	return bc, client
}

// frame is n bytes that differ from frame to frame.
func frame(i, n int) []byte {
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(i*7 + j)
	}
	return b
}

func TestBatchedReadsKeepEveryByteInOrderWithFewerReads(t *testing.T) {
	bc, client := batchPair(t, 40*time.Millisecond)
	const frames, size = 250, 340 // 2.5 s of one track's 10 ms frames, Twilio-sized
	var sent bytes.Buffer
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := range frames {
			<-tick.C
			f := frame(i, size)
			if _, err := client.Write(f); err != nil {
				return
			}
		}
		client.(*net.TCPConn).CloseWrite()
	}()
	for i := range frames {
		sent.Write(frame(i, size))
	}

	var got bytes.Buffer
	reads := 0
	buf := make([]byte, 16<<10)
	for {
		_ = bc.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := bc.Read(buf)
		got.Write(buf[:n])
		if n > 0 {
			reads++
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read after %d bytes: %v", got.Len(), err)
		}
	}
	if !bytes.Equal(got.Bytes(), sent.Bytes()) {
		t.Fatalf("read %d bytes, not the %d sent in order", got.Len(), sent.Len())
	}
	// The first second reads frame by frame; after it the mark follows the
	// rate, about three frames per read (a loaded machine batches more).
	if reads > frames*3/4 {
		t.Errorf("%d reads for %d frames: reads are not batched", reads, frames)
	}
	if bc.lowat <= size {
		t.Errorf("low-water mark %d bytes after a steady stream of %d-byte frames every 10 ms", bc.lowat, size)
	}
}

func TestBatchedReadGetsALastSmallMessage(t *testing.T) {
	bc, client := batchPair(t, 40*time.Millisecond)
	bc.lowat = 1 << 10 // as after a steady stream: the kernel wakes nobody for less
	if err := bc.rc.Control(func(fd uintptr) { setLowat(t, fd, bc.lowat) }); err != nil {
		t.Fatal(err)
	}
	_ = bc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	// A frame, read: the socket is empty and the reader waits for the mark.
	if _, err := client.Write(frame(0, 2<<10)); err != nil {
		t.Fatal(err)
	}
	for got := 0; got < 2<<10; {
		n, err := bc.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	// Then a stop message far below the mark, the socket left open: only
	// the batch's deadline gets it read.
	stop := []byte(`{"event":"stop"}`)
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, _ = client.Write(stop)
	}()
	n, err := bc.Read(buf)
	if err != nil || !bytes.Equal(buf[:n], stop) {
		t.Fatalf("read %q, %v; want the stop message", buf[:n], err)
	}
}

func TestBatchedReadKeepsTheCallersDeadline(t *testing.T) {
	bc, _ := batchPair(t, 40*time.Millisecond)
	_ = bc.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
	n, err := bc.Read(make([]byte, 4096))
	var ne net.Error
	if n != 0 || !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %d, %v; want a timeout once the caller's deadline passed", n, err)
	}
	// A later deadline makes the connection readable again.
	_ = bc.SetReadDeadline(time.Now().Add(10 * time.Second))
	go func() { time.Sleep(50 * time.Millisecond); _ = bc.Conn.Close() }()
	if _, err := bc.Read(make([]byte, 4096)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read on a connection closed by another goroutine: %v; want the close's error", err)
	}
}

func TestBatchedReadSeesTheEndAfterTheData(t *testing.T) {
	bc, client := batchPair(t, 200*time.Millisecond)
	if _, err := client.Write([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	client.Close()
	got, err := io.ReadAll(bc)
	if err != nil || string(got) != "last words" {
		t.Fatalf("read %q, %v; want the data then the end", got, err)
	}
}

func TestUnbatchedConnReadsAsBefore(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := BatchListener(raw)
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	bc := batchConnOf(sc)
	if bc.batch(0) {
		t.Fatal("a zero window turned batching on")
	}
	_ = sc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := sc.Read(make([]byte, 16)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v; want the deadline set on the connection itself", err)
	}
}

func setLowat(t *testing.T, fd uintptr, n int) {
	if err := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, n); err != nil {
		t.Error(err)
	}
}
