package main

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRecordingByteRanges: an ended call's recording is served whole or
// as one byte range, byte for byte, with the headers a player seeking in
// it relies on.
func TestRecordingByteRanges(t *testing.T) {
	_, base := startBridge(t, testConfig(t))
	const callSid, streamSid = "CAr1000000000000000000000000000001", "MZr1000000000000000000000000000001"
	c := dial(t, base, "/media/twilio", nil)
	send(t, c, twilioStart(callSid, streamSid, []string{"inbound"}, nil))
	gen := bursts(300, 8000, 0, 0.5, 1)
	for k := range 50 {
		send(t, c, twilioMedia(streamSid, "inbound", k+2, k+1, 20*k, mulawFrame(gen, 160*k, 160)))
	}
	send(t, c, twilioStop(streamSid, callSid, 52))
	waitEnded(t, base, callSid)

	path := base + "/api/calls/" + url.PathEscape(callSid) + "/recordings/inbound.wav"
	fetch := func(t *testing.T, method, rng string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, path, nil)
		require.NoError(t, err)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		var hdr []string
		for k, v := range resp.Header {
			if k != "Date" {
				hdr = append(hdr, k+": "+strings.Join(v, ", "))
			}
		}
		slices.Sort(hdr)
		t.Logf("%s %q: %d %q", method, rng, resp.StatusCode, hdr)
		return resp, b
	}
	resp, whole := fetch(t, http.MethodGet, "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, whole, 44+50*160*2)
	parseWAV(t, whole)
	size := strconv.Itoa(len(whole))

	cases := []struct {
		name, method, rng string
		status            int
		contentRange      string
		from, to          int // the bytes expected, [from, to)
	}{
		{"header", http.MethodGet, "bytes=0-43", 206, "bytes 0-43/" + size, 0, 44},
		{"middle", http.MethodGet, "bytes=1000-2999", 206, "bytes 1000-2999/" + size, 1000, 3000},
		{"to the end", http.MethodGet, "bytes=16000-", 206, "bytes 16000-" + strconv.Itoa(len(whole)-1) + "/" + size, 16000, len(whole)},
		{"suffix", http.MethodGet, "bytes=-10", 206, "bytes " + strconv.Itoa(len(whole)-10) + "-" + strconv.Itoa(len(whole)-1) + "/" + size, len(whole) - 10, len(whole)},
		{"head of a range", http.MethodHead, "bytes=100-199", 206, "bytes 100-199/" + size, 0, 0},
		{"head", http.MethodHead, "", 200, "", 0, 0},
		{"not satisfiable", http.MethodGet, "bytes=" + size + "-", 416, "bytes */" + size, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := fetch(t, tc.method, tc.rng)
			require.Equal(t, tc.status, resp.StatusCode)
			require.Equal(t, tc.contentRange, resp.Header.Get("Content-Range"))
			if tc.status == http.StatusRequestedRangeNotSatisfiable {
				return
			}
			require.Equal(t, "audio/wav", resp.Header.Get("Content-Type"))
			require.Equal(t, "bytes", resp.Header.Get("Accept-Ranges"))
			if tc.method == http.MethodHead {
				require.Empty(t, b)
				return
			}
			require.Equal(t, strconv.Itoa(tc.to-tc.from), resp.Header.Get("Content-Length"))
			require.Equal(t, whole[tc.from:tc.to], b)
		})
	}
}
