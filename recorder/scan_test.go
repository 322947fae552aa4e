package recorder

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOpenTrack(t *testing.T) {
	s, _ := newStore(t)
	_, want := recordClosed(t, s, "call", 8000, 160)

	r, err := s.OpenTrack("call", "inbound")
	require.NoError(t, err)
	defer r.Close()
	size, err := r.Seek(0, io.SeekEnd)
	require.NoError(t, err)
	require.Equal(t, int64(len(want)), size)
	_, err = r.Seek(headerSize, io.SeekStart)
	require.NoError(t, err)
	got, err := io.ReadAll(r)
	require.NoError(t, err)
	require.Equal(t, want[headerSize:], got, "read at an offset, byte for byte")

	for _, tc := range []struct{ name, id, track string }{
		{"no such track", "call", "outbound"},
		{"no such call", "other", "inbound"},
		{"unsafe track", "call", "../call/inbound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.OpenTrack(tc.id, tc.track)
			require.ErrorIs(t, err, fs.ErrNotExist)
		})
	}
}

// TestScan: every call folder with a record is listed, in folder order;
// repair, only where asked for, makes a crashed call's recordings whole,
// removes interrupted document writes and counts each track's samples.
func TestScan(t *testing.T) {
	s, _ := newStore(t)

	crashed, err := s.Open("a-crashed")
	require.NoError(t, err)
	require.NoError(t, crashed.WriteJSON("call.json", map[string]string{"call_id": "a-crashed"}))
	writeCrashed(t, crashed, "inbound", 60)
	writeCrashed(t, crashed, "outbound", 30)
	require.NoError(t, os.WriteFile(filepath.Join(crashed.Dir(), ".tmp-call.json-1"), []byte("{"), 0o600))

	unasked, err := s.Open("b-unasked")
	require.NoError(t, err)
	require.NoError(t, unasked.WriteJSON("call.json", map[string]string{"call_id": "b-unasked"}))
	stale := filepath.Join(unasked.Dir(), ".tmp-call.json-2")
	require.NoError(t, os.WriteFile(stale, []byte("{"), 0o600))

	_, err = s.Open("c-no-record") // a folder without call.json names nothing
	require.NoError(t, err)

	foreign, err := s.Open("d-foreign")
	require.NoError(t, err)
	require.NoError(t, foreign.WriteJSON("call.json", map[string]string{"call_id": "d-foreign"}))
	require.NoError(t, os.WriteFile(filepath.Join(foreign.Dir(), "notes.wav"), make([]byte, 100), 0o644))

	var records []string
	err = s.Scan(func(record []byte, repair func() (map[string]int64, error)) {
		records = append(records, string(record))
		switch string(record) {
		case "{\n  \"call_id\": \"a-crashed\"\n}\n":
			samples, err := repair()
			require.NoError(t, err)
			require.Equal(t, map[string]int64{"inbound": 60 * 160, "outbound": 30 * 160}, samples)
		case "{\n  \"call_id\": \"d-foreign\"\n}\n":
			samples, err := repair()
			require.ErrorIs(t, err, errNotRecording, "a file it cannot repair is reported")
			require.Empty(t, samples)
		}
	})
	require.NoError(t, err)
	require.Len(t, records, 3, "%q", records)
	require.Contains(t, records[1], "b-unasked")

	for track, frames := range map[string]uint32{"inbound": 60, "outbound": 30} {
		p, err := s.TrackPath("a-crashed", track)
		require.NoError(t, err)
		info := requireValidOnDisk(t, p, 8000)
		require.Equal(t, frames*320, info.dataSize)
	}
	requireNoTempFiles(t, crashed.Dir())
	require.FileExists(t, stale, "a call not repaired is left as it is")
}

// writeCrashed leaves the track's recording as a kill -9 would: frames of
// 160 samples on disk, the header never patched, the file never closed
// by its WAV.
func writeCrashed(t *testing.T, c *Call, track string, frames int) {
	t.Helper()
	w, err := c.CreateTrack(track, 8000)
	require.NoError(t, err)
	for i := range frames {
		_, err := w.Write(ramp(i*160, 160))
		require.NoError(t, err)
	}
	require.NoError(t, w.buf.Flush())
	require.NoError(t, w.dst.(*os.File).Close())
}

// recordClosed records samples of a ramp on the call's inbound track and
// closes the recording; it returns the file's path and bytes.
func recordClosed(t *testing.T, s *Store, id string, rate, samples int) (string, []byte) {
	t.Helper()
	c, err := s.Open(id)
	require.NoError(t, err)
	w, err := c.CreateTrack("inbound", rate)
	require.NoError(t, err)
	_, err = w.Write(ramp(0, samples))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	p, err := s.TrackPath(id, "inbound")
	require.NoError(t, err)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return p, b
}
