package web

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
)

// readerStore serves one recording from memory, the way a store that is
// not a local folder (an object store) would: the handler sees only a
// reader.
type readerStore struct {
	*memStore
	wav           []byte
	opens, closes atomic.Int64
}

func (s *readerStore) OpenTrack(id, track string) (io.ReadSeekCloser, error) {
	if track != "inbound" {
		return s.memStore.OpenTrack(id, track)
	}
	s.opens.Add(1)
	return countedReader{bytes.NewReader(s.wav), &s.closes}, nil
}

type countedReader struct {
	*bytes.Reader
	closes *atomic.Int64
}

func (r countedReader) Close() error { r.closes.Add(1); return nil }

// TestRecordingRanges: a recording is served from the store's reader,
// whole or as one byte range, with the same headers either way, and the
// reader is closed after every request.
func TestRecordingRanges(t *testing.T) {
	const id = "CArange"
	wav := make([]byte, 100)
	for i := range wav {
		wav[i] = byte(i)
	}
	ended := time.Date(2026, 11, 21, 10, 3, 10, 0, time.UTC)
	st := &readerStore{wav: wav, memStore: &memStore{recs: []bridge.CallRecord{{
		CallID: id, Provider: "twilio", Status: bridge.StatusEnded, StartedAt: ended.Add(-time.Minute), EndedAt: &ended,
		Tracks: []bridge.TrackRecord{{Name: "inbound", SampleRate: 8000, File: "inbound.wav"}, {Name: "outbound", SampleRate: 8000, File: "outbound.wav"}},
	}}}}
	reg := bridge.NewRegistry(bridge.Config{Store: st, Log: zerolog.Nop()})
	_, err := reg.Load()
	require.NoError(t, err)
	app := NewApp(Config{AllowAnonymous: true, AllowedHosts: []string{"example.com"}}, Deps{Registry: reg, Log: zerolog.Nop()})

	const path = "/api/calls/" + id + "/recordings/inbound.wav"
	cases := []struct {
		name, method, target, rng string
		status                    int
		contentRange              string
		body                      []byte
	}{
		{"whole", http.MethodGet, path, "", 200, "", wav},
		{"range", http.MethodGet, path, "bytes=2-5", 206, "bytes 2-5/100", wav[2:6]},
		{"open-ended", http.MethodGet, path, "bytes=90-", 206, "bytes 90-99/100", wav[90:]},
		{"past the end is cut", http.MethodGet, path, "bytes=95-200", 206, "bytes 95-99/100", wav[95:]},
		{"suffix", http.MethodGet, path, "bytes=-4", 206, "bytes 96-99/100", wav[96:]},
		{"head", http.MethodHead, path, "bytes=10-19", 206, "bytes 10-19/100", nil},
		{"start past the end", http.MethodGet, path, "bytes=100-", 416, "bytes */100", nil},
		{"several ranges", http.MethodGet, path, "bytes=0-1,4-5", 416, "bytes */100", nil},
		{"no recording", http.MethodGet, "/api/calls/" + id + "/recordings/outbound.wav", "", 404, "", nil},
		{"no such track", http.MethodGet, "/api/calls/" + id + "/recordings/extra.wav", "", 404, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.target, nil)
			if tc.rng != "" {
				req.Header.Set("Range", tc.rng)
			}
			resp, err := app.Test(req, -1)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tc.status, resp.StatusCode, string(body))
			require.Equal(t, tc.contentRange, resp.Header.Get("Content-Range"))
			if tc.status != 200 && tc.status != 206 {
				return // the error handler's JSON
			}
			require.Equal(t, "bytes", resp.Header.Get("Accept-Ranges"))
			require.Equal(t, "audio/wav", resp.Header.Get("Content-Type"))
			require.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
			require.Equal(t, `inline; filename="inbound.wav"`, resp.Header.Get("Content-Disposition"))
			if tc.method == http.MethodHead {
				require.Equal(t, "10", resp.Header.Get("Content-Length"))
				require.Empty(t, body)
				return
			}
			require.Equal(t, strconv.Itoa(len(tc.body)), resp.Header.Get("Content-Length"))
			require.Equal(t, tc.body, body)
		})
	}
	require.Eventually(t, func() bool { return st.closes.Load() == st.opens.Load() }, 5*time.Second, 5*time.Millisecond,
		"every reader is closed")
}
