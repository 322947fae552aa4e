package web

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/callcaptions/bridge/bridge"
)

// CallReader is the read model the REST API serves: calls live and
// stored, their transcripts and recordings.
type CallReader interface {
	Calls() []bridge.CallRecord
	Record(id string) (bridge.CallRecord, bool)
	Transcript(id string) (bridge.Transcript, bool, error)
	OpenTrack(id, track string) (io.ReadSeekCloser, bool, error)
}

// callsPage is the answer of GET /api/calls.
type callsPage struct {
	Calls []bridge.CallRecord `json:"calls"`
	Total int                 `json:"total"`
}

// listCalls: newest first, live calls included; ?limit= (default 100, at
// most 1000), ?offset=, ?status=active|ended|interrupted.
func (s *Server) listCalls(c *fiber.Ctx) error {
	limit, err := queryInt(c, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	offset, err := queryInt(c, "offset", 0, 0, 1<<31-1)
	if err != nil {
		return err
	}
	all := s.reg.Calls()
	if status := c.Query("status"); status != "" {
		all = slices.DeleteFunc(all, func(r bridge.CallRecord) bool { return r.Status != status })
	}
	page := callsPage{Total: len(all), Calls: []bridge.CallRecord{}}
	if offset < len(all) {
		page.Calls = all[offset:min(len(all), offset+limit)]
	}
	return c.JSON(page)
}

func queryInt(c *fiber.Ctx, name string, def, lo, hi int) (int, error) {
	v := c.Query(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("%s must be a whole number from %d to %d", name, lo, hi))
	}
	return n, nil
}

// callID is the :id parameter, unescaped (call ids may hold any character).
func callID(c *fiber.Ctx) (string, error) {
	id, err := url.PathUnescape(c.Params("id"))
	if err != nil || id == "" {
		return "", fiber.NewError(fiber.StatusBadRequest, "bad call id")
	}
	return id, nil
}

func notFound(what, id string) error {
	return fiber.NewError(fiber.StatusNotFound, what+" "+strconv.Quote(id)+" not found")
}

func (s *Server) getCall(c *fiber.Ctx) error {
	id, err := callID(c)
	if err != nil {
		return err
	}
	rec, ok := s.reg.Record(id)
	if !ok {
		return notFound("call", id)
	}
	return c.JSON(rec)
}

func (s *Server) getTranscript(c *fiber.Ctx) error {
	t, _, err := s.transcript(c)
	if err != nil {
		return err
	}
	return c.JSON(t)
}

// transcript is the transcript of the :id call, live or stored.
func (s *Server) transcript(c *fiber.Ctx) (bridge.Transcript, string, error) {
	id, err := callID(c)
	if err != nil {
		return bridge.Transcript{}, "", err
	}
	t, ok, err := s.reg.Transcript(id)
	if err != nil {
		return bridge.Transcript{}, id, fmt.Errorf("read transcript of %q: %w", id, err)
	}
	if !ok {
		return bridge.Transcript{}, id, notFound("call", id)
	}
	return t, id, nil
}

// getRecording serves <track>.wav with single byte ranges. It reads the
// recording as the store holds it now, so a live call's recording can be
// fetched too.
func (s *Server) getRecording(c *fiber.Ctx) error {
	id, err := callID(c)
	if err != nil {
		return err
	}
	file := c.Params("file")
	track, ok := strings.CutSuffix(file, ".wav")
	if !ok {
		return fiber.NewError(fiber.StatusNotFound, "recordings are <track>.wav")
	}
	rec, ok, err := s.reg.OpenTrack(id, track)
	if !ok || errors.Is(err, fs.ErrNotExist) {
		return notFound("recording", id+"/"+file)
	}
	if err != nil {
		return err
	}
	size, err := rec.Seek(0, io.SeekEnd)
	if err != nil {
		rec.Close()
		return err
	}
	c.Set(fiber.HeaderContentType, "audio/wav")
	c.Set(fiber.HeaderAcceptRanges, "bytes")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderContentDisposition, `inline; filename="`+track+`.wav"`)
	start, end := int64(0), size-1
	if rh := c.Get(fiber.HeaderRange); rh != "" {
		var ok bool
		start, end, ok = parseRange(rh, size)
		if !ok {
			rec.Close()
			c.Set(fiber.HeaderContentRange, "bytes */"+strconv.FormatInt(size, 10))
			return fiber.NewError(fiber.StatusRequestedRangeNotSatisfiable, "range not satisfiable")
		}
		c.Status(fiber.StatusPartialContent)
		c.Set(fiber.HeaderContentRange, fmt.Sprintf("bytes %d-%d/%d", start, end, size))
	}
	if c.Method() == fiber.MethodHead {
		rec.Close()
		c.Response().Header.SetContentLength(int(end - start + 1))
		return nil
	}
	if _, err := rec.Seek(start, io.SeekStart); err != nil {
		rec.Close()
		return err
	}
	// fasthttp closes the reader after sending when it is an io.Closer.
	c.Response().SetBodyStream(readCloser{io.LimitReader(rec, end-start+1), rec}, int(end-start+1))
	return nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// parseRange understands one range: "bytes=a-b", "bytes=a-", "bytes=-n".
func parseRange(h string, size int64) (start, end int64, ok bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") || size == 0 {
		return 0, 0, false
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false
	}
	switch {
	case a == "":
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return 0, 0, false
		}
		return max(0, size-n), size - 1, true
	default:
		s, err := strconv.ParseInt(a, 10, 64)
		if err != nil || s < 0 || s >= size {
			return 0, 0, false
		}
		e := size - 1
		if b != "" {
			if e, err = strconv.ParseInt(b, 10, 64); err != nil || e < s {
				return 0, 0, false
			}
			e = min(e, size-1)
		}
		return s, e, true
	}
}
