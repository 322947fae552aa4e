package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/callcaptions/bridge/bridge"
)

// Requests to the replica that holds a call: its record, its transcript
// and its recordings, read in chunks at an offset. Core NATS
// request-reply on RPCPrefix + Token(node id); the request is a JSON
// rpcRequest, the reply's header HeaderStatus says how it went and the
// body is the record or transcript (JSON) or the recording's bytes.

// RPCPrefix is what the subject of a replica's requests starts with.
const RPCPrefix = "bridge.rpc."

// Headers of a reply.
const (
	HeaderStatus = "Bridge-Status" // one of the rpcStatus values
	HeaderSize   = "Bridge-Size"   // a recording's size in bytes
	HeaderError  = "Bridge-Error"  // what went wrong, with status error
)

// Reply statuses.
const (
	statusOK       = "ok"
	statusNotFound = "not_found"
	statusBusy     = "busy"
	statusError    = "error"
)

// Request operations.
const (
	opRecord     = "record"
	opTranscript = "transcript"
	opTrack      = "track"
)

const (
	// rpcTimeout bounds one request.
	rpcTimeout = 5 * time.Second
	// RPCChunk is the most bytes of a recording one reply carries (well
	// under NATS's default 1 MiB payload).
	RPCChunk = 256 << 10
	// rpcWorkers answer requests at once; rpcQueue wait for them. A
	// request beyond both is answered busy at once (the asker answers 503).
	rpcWorkers = 8
	rpcQueue   = 64
)

// Errors of a request to another replica.
var (
	// ErrUnreachable: no replica answers on the owner's subject (it is
	// gone) or this replica is not connected to NATS.
	ErrUnreachable = errors.New("the replica holding the call does not answer")
	// ErrTimeout: the owner did not answer within the request timeout.
	ErrTimeout = errors.New("the replica holding the call did not answer in time")
	// ErrBusy: the owner has too many requests to answer this one now.
	ErrBusy = errors.New("the replica holding the call is busy")
)

// Calls is what a replica answers requests from: its own calls (the
// bridge's registry).
type Calls interface {
	Record(id string) (bridge.CallRecord, bool)
	Transcript(id string) (bridge.Transcript, bool, error)
	OpenTrack(id, track string) (io.ReadSeekCloser, bool, error)
}

// rpcRequest is a request's body.
type rpcRequest struct {
	Op     string `json:"op"`
	CallID string `json:"call_id"`
	Track  string `json:"track,omitempty"`
	Offset int64  `json:"offset,omitempty"`
	Length int    `json:"length,omitempty"` // bytes wanted from Offset; 0: a recording's size only
}

// callsHolder keeps the Calls interface value for atomic.Pointer.
type callsHolder struct{ Calls }

// rpcState is the answering side's.
type rpcState struct {
	calls atomic.Pointer[callsHolder]
}

// ServeCalls makes this replica answer other replicas' requests about its
// calls from calls. Until it is called, requests are answered with an
// error.
func (c *Cluster) ServeCalls(calls Calls) { c.rpc.calls.Store(&callsHolder{calls}) }

func rpcSubject(node string) string { return RPCPrefix + Token(node) }

// serveRPC answers requests until ctx is done: rpcWorkers at once, rpcQueue
// waiting; beyond that busy.
func (c *Cluster) serveRPC(ctx context.Context) {
	queue := make(chan *nats.Msg, rpcQueue) // full: the request is answered busy
	sub, err := c.nc.Subscribe(rpcSubject(c.cfg.NodeID), func(m *nats.Msg) {
		select {
		case queue <- m:
		default:
			c.m.rpcServed.WithLabelValues(statusBusy).Inc()
			c.reply(m, statusBusy, nil, nil)
		}
	})
	if err != nil {
		c.log.Error().Err(err).Msg("requests of other replicas not answered: their REST cannot serve this replica's calls")
		<-ctx.Done()
		return
	}
	var wg sync.WaitGroup
	for range rpcWorkers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case m := <-queue:
					c.answer(m)
				}
			}
		})
	}
	<-ctx.Done()
	_ = sub.Unsubscribe()
	wg.Wait()
}

func (c *Cluster) reply(m *nats.Msg, status string, h nats.Header, data []byte) {
	if h == nil {
		h = nats.Header{}
	}
	h.Set(HeaderStatus, status)
	_ = m.RespondMsg(&nats.Msg{Header: h, Data: data}) // the asker times out otherwise
}

// answer serves one request.
func (c *Cluster) answer(m *nats.Msg) {
	status, h, data := c.handleRequest(m.Data)
	c.m.rpcServed.WithLabelValues(status).Inc()
	c.reply(m, status, h, data)
}

func (c *Cluster) handleRequest(body []byte) (string, nats.Header, []byte) {
	fail := func(err error) (string, nats.Header, []byte) {
		return statusError, nats.Header{HeaderError: []string{err.Error()}}, nil
	}
	var req rpcRequest
	if err := json.Unmarshal(body, &req); err != nil || req.CallID == "" {
		return fail(errors.New("bad request"))
	}
	held := c.rpc.calls.Load()
	if held == nil {
		return fail(errors.New("not serving calls yet"))
	}
	calls := held.Calls
	switch req.Op {
	case opRecord:
		rec, ok := calls.Record(req.CallID)
		if !ok {
			return statusNotFound, nil, nil
		}
		b, err := json.Marshal(rec)
		if err != nil {
			return fail(err)
		}
		return chunkOf(b, req)
	case opTranscript:
		t, ok, err := calls.Transcript(req.CallID)
		if err != nil {
			return fail(err)
		}
		if !ok {
			return statusNotFound, nil, nil
		}
		b, err := json.Marshal(t)
		if err != nil {
			return fail(err)
		}
		return chunkOf(b, req)
	case opTrack:
		return c.readTrack(calls, req)
	}
	return fail(fmt.Errorf("unknown operation %q", req.Op))
}

// chunkOf answers a document's size and the part of it asked (a long
// call's transcript is more than one message may carry).
func chunkOf(doc []byte, req rpcRequest) (string, nats.Header, []byte) {
	h := nats.Header{HeaderSize: []string{strconv.Itoa(len(doc))}}
	if req.Offset < 0 || req.Offset >= int64(len(doc)) {
		return statusOK, h, nil
	}
	end := min(int64(len(doc)), req.Offset+int64(min(max(req.Length, 0), RPCChunk)))
	return statusOK, h, doc[req.Offset:end]
}

// readTrack answers a recording's size and up to RPCChunk bytes from the
// offset asked.
func (c *Cluster) readTrack(calls Calls, req rpcRequest) (string, nats.Header, []byte) {
	r, ok, err := calls.OpenTrack(req.CallID, req.Track)
	if !ok || errors.Is(err, fs.ErrNotExist) {
		return statusNotFound, nil, nil
	}
	if err != nil {
		return statusError, nats.Header{HeaderError: []string{err.Error()}}, nil
	}
	defer r.Close()
	size, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return statusError, nats.Header{HeaderError: []string{err.Error()}}, nil
	}
	h := nats.Header{HeaderSize: []string{strconv.FormatInt(size, 10)}}
	if req.Length <= 0 || req.Offset < 0 || req.Offset >= size {
		return statusOK, h, nil
	}
	if _, err := r.Seek(req.Offset, io.SeekStart); err != nil {
		return statusError, nats.Header{HeaderError: []string{err.Error()}}, nil
	}
	buf := make([]byte, min(int64(min(req.Length, RPCChunk)), size-req.Offset))
	n, err := io.ReadFull(r, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return statusError, nats.Header{HeaderError: []string{err.Error()}}, nil
	}
	return statusOK, h, buf[:n]
}

// request asks node and returns the reply's header and body; found is false
// when node does not hold the call.
func (c *Cluster) request(node string, req rpcRequest) (h nats.Header, data []byte, found bool, err error) {
	defer func() {
		result := statusOK
		switch {
		case errors.Is(err, ErrUnreachable):
			result = "unreachable"
		case errors.Is(err, ErrTimeout):
			result = "timeout"
		case errors.Is(err, ErrBusy):
			result = statusBusy
		case err != nil:
			result = statusError
		case !found:
			result = statusNotFound
		}
		c.m.rpcRequests.WithLabelValues(result).Inc()
	}()
	if !c.nc.IsConnected() {
		return nil, nil, false, ErrUnreachable
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, nil, false, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	msg, err := c.nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: rpcSubject(node), Data: body})
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, nil, false, fmt.Errorf("replica %s: %w", node, ErrUnreachable)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return nil, nil, false, fmt.Errorf("replica %s: %w", node, ErrTimeout)
	case err != nil:
		return nil, nil, false, fmt.Errorf("replica %s: %w: %w", node, ErrUnreachable, err)
	}
	switch msg.Header.Get(HeaderStatus) {
	case statusOK:
		return msg.Header, msg.Data, true, nil
	case statusNotFound:
		return msg.Header, nil, false, nil
	case statusBusy:
		return nil, nil, false, fmt.Errorf("replica %s: %w", node, ErrBusy)
	}
	return nil, nil, false, fmt.Errorf("replica %s: %s", node, msg.Header.Get(HeaderError))
}

// chunk is how many bytes to ask for at once: RPCChunk, or less when the
// server carries smaller messages.
func (c *Cluster) chunk() int {
	return max(1024, min(RPCChunk, int(c.nc.MaxPayload())-4096))
}

// docAttempts bounds how often a document that changed while it was read
// in chunks (a live call's transcript) is read again from its start.
const docAttempts = 3

// document reads a record or transcript from node, a chunk at a time.
func (c *Cluster) document(node string, req rpcRequest) ([]byte, bool, error) {
	for range docAttempts {
		var doc []byte
		size := -1
		for {
			req.Offset, req.Length = int64(len(doc)), c.chunk()
			h, data, found, err := c.request(node, req)
			if err != nil || !found {
				return nil, found, err
			}
			n, err := strconv.Atoi(h.Get(HeaderSize))
			if err != nil || n < 0 {
				return nil, false, fmt.Errorf("replica %s: document size %q", node, h.Get(HeaderSize))
			}
			if size >= 0 && n != size {
				break // changed meanwhile: again from the start
			}
			size = n
			doc = append(doc, data...)
			if len(doc) >= size {
				return doc, true, nil
			}
			if len(data) == 0 {
				return nil, false, fmt.Errorf("replica %s: document cut short at %d of %d bytes", node, len(doc), size)
			}
		}
	}
	return nil, false, fmt.Errorf("replica %s: the call's %s kept changing while read", node, req.Op)
}

// RemoteRecord asks node for callID's record.
func (c *Cluster) RemoteRecord(node, callID string) (bridge.CallRecord, bool, error) {
	data, found, err := c.document(node, rpcRequest{Op: opRecord, CallID: callID})
	if err != nil || !found {
		return bridge.CallRecord{}, false, err
	}
	var rec bridge.CallRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return bridge.CallRecord{}, false, fmt.Errorf("replica %s: record: %w", node, err)
	}
	return rec, true, nil
}

// RemoteTranscript asks node for callID's transcript.
func (c *Cluster) RemoteTranscript(node, callID string) (bridge.Transcript, bool, error) {
	data, found, err := c.document(node, rpcRequest{Op: opTranscript, CallID: callID})
	if err != nil || !found {
		return bridge.Transcript{}, false, err
	}
	var t bridge.Transcript
	if err := json.Unmarshal(data, &t); err != nil {
		return bridge.Transcript{}, false, fmt.Errorf("replica %s: transcript: %w", node, err)
	}
	return t, true, nil
}

// RemoteTrack opens the recording of callID's track on node: its size is
// the one node has when asked, and reads at any offset are requests of up
// to RPCChunk bytes.
func (c *Cluster) RemoteTrack(node, callID, track string) (io.ReadSeekCloser, bool, error) {
	h, _, found, err := c.request(node, rpcRequest{Op: opTrack, CallID: callID, Track: track})
	if err != nil || !found {
		return nil, false, err
	}
	size, err := strconv.ParseInt(h.Get(HeaderSize), 10, 64)
	if err != nil || size < 0 {
		return nil, false, fmt.Errorf("replica %s: recording size %q", node, h.Get(HeaderSize))
	}
	t := &remoteTrack{c: c, node: node, req: rpcRequest{Op: opTrack, CallID: callID, Track: track}}
	return sectionCloser{io.NewSectionReader(t, 0, size)}, true, nil
}

// sectionCloser is a section of a recording read from another replica;
// closing it has nothing to release.
type sectionCloser struct{ *io.SectionReader }

func (sectionCloser) Close() error { return nil }

// remoteTrack reads a recording on another replica a chunk at a time,
// keeping the chunk read last. One reader at a time (the io.SectionReader
// that wraps it).
type remoteTrack struct {
	c     *Cluster
	node  string
	req   rpcRequest
	buf   []byte // the chunk read last, from bufAt
	bufAt int64
}

var _ io.ReaderAt = (*remoteTrack)(nil)

// ReadAt fills p from off, asking for the chunks it does not hold; the
// section reader never asks past the recording's size.
func (t *remoteTrack) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		at := off + int64(n)
		if at < t.bufAt || at >= t.bufAt+int64(len(t.buf)) {
			req := t.req
			req.Offset, req.Length = at, t.c.chunk()
			_, data, found, err := t.c.request(t.node, req)
			if err != nil {
				return n, fmt.Errorf("read recording: %w", err)
			}
			if !found || len(data) == 0 {
				return n, fmt.Errorf("read recording at %d: %w", at, io.ErrUnexpectedEOF)
			}
			t.buf, t.bufAt = data, at
		}
		n += copy(p[n:], t.buf[at-t.bufAt:])
	}
	return n, nil
}
