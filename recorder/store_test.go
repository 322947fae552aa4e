package recorder

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	data := t.TempDir()
	s, err := NewStore(data)
	require.NoError(t, err)
	return s, data
}

func TestNewStoreCreatesCallsFolder(t *testing.T) {
	_, data := newStore(t)
	fi, err := os.Stat(filepath.Join(data, "calls"))
	require.NoError(t, err)
	require.True(t, fi.IsDir())
}

func TestStoreLayout(t *testing.T) {
	s, data := newStore(t)
	const id = "CA1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f"
	c, err := s.Open(id)
	require.NoError(t, err)
	want := filepath.Join(data, "calls", id)
	require.Equal(t, want, c.Dir())
	require.Equal(t, want, s.Dir(id))

	p, err := s.TrackPath(id, "inbound")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(want, "inbound.wav"), p)

	w, err := c.CreateTrack("inbound", 8000)
	require.NoError(t, err)
	_, err = w.Write(ramp(0, 160))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	requireValidOnDisk(t, p, 8000)

	require.NoError(t, c.WriteJSON("call.json", map[string]string{"call_id": id}))
	require.FileExists(t, filepath.Join(want, "call.json"))
}

func TestStoreUnsafeCallIDStaysInside(t *testing.T) {
	s, data := newStore(t)
	calls := filepath.Join(data, "calls")
	for _, id := range []string{"../escape", "a/b", "/abs", "..", "", strings.Repeat("z", 10000)} {
		c, err := s.Open(id)
		require.NoError(t, err, "id %q", id)
		require.Equal(t, calls, filepath.Dir(c.Dir()), "id %q", id)
		require.Equal(t, s.Dir(id), c.Dir())
		require.NoError(t, c.WriteJSON("call.json", map[string]string{"call_id": id}))

		var got map[string]string
		require.NoError(t, s.ReadJSON(id, "call.json", &got))
		require.Equal(t, id, got["call_id"])
	}
	_, err := os.Stat(filepath.Join(data, "escape"))
	require.ErrorIs(t, err, os.ErrNotExist)

	names, err := s.CallIDs()
	require.NoError(t, err)
	require.Len(t, names, 6)
	for _, n := range names {
		require.DirExists(t, filepath.Join(calls, n))
	}
}

func TestStoreCallIDs(t *testing.T) {
	s, data := newStore(t)
	names, err := s.CallIDs()
	require.NoError(t, err)
	require.Empty(t, names)

	for _, id := range []string{"b-call", "a-call", "x/y"} {
		_, err := s.Open(id)
		require.NoError(t, err)
	}
	// Neither a stray file nor a hidden folder is a call.
	require.NoError(t, os.WriteFile(filepath.Join(data, "calls", "stray.txt"), nil, 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(data, "calls", ".hidden"), 0o755))

	names, err = s.CallIDs()
	require.NoError(t, err)
	require.Equal(t, []string{"a-call", "b-call", dirName("x/y")}, names)
}

func TestStoreTrackNames(t *testing.T) {
	s, _ := newStore(t)
	c, err := s.Open("call")
	require.NoError(t, err)
	for _, track := range []string{"../inbound", "a/b", "", ".hidden", "in\x00"} {
		_, err := s.TrackPath("call", track)
		require.Error(t, err, "track %q", track)
		_, err = s.OpenTrack("call", track)
		require.ErrorIs(t, err, fs.ErrNotExist, "track %q", track)
		_, err = c.CreateTrack(track, 8000)
		require.Error(t, err, "track %q", track)
	}
}

func TestCreateTrackNeverOverwrites(t *testing.T) {
	s, _ := newStore(t)
	c, err := s.Open("call")
	require.NoError(t, err)
	w, err := c.CreateTrack("inbound", 8000)
	require.NoError(t, err)
	_, err = w.Write(ramp(0, 160))
	require.NoError(t, err)
	require.NoError(t, w.Close())

	_, err = c.CreateTrack("inbound", 8000)
	require.ErrorIs(t, err, fs.ErrExist)
	p, err := s.TrackPath("call", "inbound")
	require.NoError(t, err)
	_, samples, err := ReadWAVInfo(p)
	require.NoError(t, err)
	require.Equal(t, int64(160), samples, "the first recording is intact")
}

func TestCreateTrackBadRateLeavesNoFile(t *testing.T) {
	s, _ := newStore(t)
	c, err := s.Open("call")
	require.NoError(t, err)
	_, err = c.CreateTrack("inbound", 0)
	require.Error(t, err)
	p, err := s.TrackPath("call", "inbound")
	require.NoError(t, err)
	require.NoFileExists(t, p)
}

func TestJSONRoundTripAndFormat(t *testing.T) {
	s, _ := newStore(t)
	c, err := s.Open("call")
	require.NoError(t, err)
	doc := map[string]any{"call_id": "call", "text": "a < b & c", "n": 1}
	require.NoError(t, c.WriteJSON("transcript.json", doc))

	raw, err := os.ReadFile(filepath.Join(c.Dir(), "transcript.json"))
	require.NoError(t, err)
	require.Equal(t, "{\n  \"call_id\": \"call\",\n  \"n\": 1,\n  \"text\": \"a < b & c\"\n}\n", string(raw))

	var got map[string]any
	require.NoError(t, s.ReadJSON("call", "transcript.json", &got))
	require.Equal(t, "a < b & c", got["text"])
	requireNoTempFiles(t, c.Dir())
}

func TestReadJSONMissing(t *testing.T) {
	s, _ := newStore(t)
	var v any
	require.ErrorIs(t, s.ReadJSON("never-started", "call.json", &v), os.ErrNotExist)
	_, err := s.Open("started")
	require.NoError(t, err)
	require.ErrorIs(t, s.ReadJSON("started", "transcript.json", &v), os.ErrNotExist)
}

func TestJSONNames(t *testing.T) {
	s, _ := newStore(t)
	c, err := s.Open("call")
	require.NoError(t, err)
	for _, name := range []string{"../call.json", "call.txt", ".call.json", "a/b.json", ""} {
		require.Error(t, c.WriteJSON(name, 1), "name %q", name)
		var v any
		err := s.ReadJSON("call", name, &v)
		require.Error(t, err, "name %q", name)
		require.False(t, errors.Is(err, os.ErrNotExist), "a bad name is not a missing document")
	}
}

func TestWriteJSONUnencodableLeavesOldDocument(t *testing.T) {
	s, _ := newStore(t)
	c, err := s.Open("call")
	require.NoError(t, err)
	require.NoError(t, c.WriteJSON("call.json", map[string]int{"v": 1}))
	require.Error(t, c.WriteJSON("call.json", map[string]any{"bad": make(chan int)}))
	var got map[string]int
	require.NoError(t, s.ReadJSON("call", "call.json", &got))
	require.Equal(t, 1, got["v"])
	requireNoTempFiles(t, c.Dir())
}

// TestWriteJSONConcurrent races writers of differently sized documents
// against readers: every read must parse as one whole document, and when the
// writers are done no temporary file is left.
func TestWriteJSONConcurrent(t *testing.T) {
	s, _ := newStore(t)
	c, err := s.Open("call")
	require.NoError(t, err)
	require.NoError(t, c.WriteJSON("transcript.json", doc(0)))

	const writers, writes = 8, 25
	var wg sync.WaitGroup
	stop := make(chan struct{})
	readErr := make(chan error, 1)
	go func() {
		defer close(readErr)
		path := filepath.Join(c.Dir(), "transcript.json")
		for {
			select {
			case <-stop:
				return
			default:
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				readErr <- err
				return
			}
			var d testDoc
			if err := json.Unmarshal(raw, &d); err != nil {
				readErr <- fmt.Errorf("partial document (%d bytes): %w", len(raw), err)
				return
			}
			if len(d.Segments) != d.N {
				readErr <- fmt.Errorf("document %d has %d segments", d.N, len(d.Segments))
				return
			}
		}
	}()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range writes {
				if err := c.WriteJSON("transcript.json", doc(1+(w*writes+i)%300)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	require.NoError(t, <-readErr)
	requireNoTempFiles(t, c.Dir())

	var d testDoc
	require.NoError(t, s.ReadJSON("call", "transcript.json", &d))
	require.Len(t, d.Segments, d.N)
}

type testDoc struct {
	N        int      `json:"n"`
	Segments []string `json:"segments"`
}

func doc(n int) testDoc {
	d := testDoc{N: n, Segments: make([]string, n)}
	for i := range d.Segments {
		d.Segments[i] = strings.Repeat("word ", 20)
	}
	return d
}

func requireNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		require.False(t, strings.HasPrefix(e.Name(), "."), "temporary file %q left behind", e.Name())
	}
}

// TestScanRepairsEveryCall: repairing each scanned call mends what a
// crash left, leaves a clean recording as it was, reports a file that is
// not a recording, and changes nothing when run again.
func TestScanRepairsEveryCall(t *testing.T) {
	s, _ := newStore(t)
	repairAll := func() error {
		var errs []error
		require.NoError(t, s.Scan(func(_ []byte, repair func() (map[string]int64, error)) {
			_, err := repair()
			errs = append(errs, err)
		}))
		require.Len(t, errs, 3)
		return errors.Join(errs...)
	}

	// A call whose process died mid-recording: two tracks never closed.
	c1, err := s.Open("crashed")
	require.NoError(t, err)
	for _, track := range []string{"inbound", "outbound"} {
		writeCrashed(t, c1, track, 60)
	}
	// A JSON write interrupted before its rename.
	require.NoError(t, os.WriteFile(filepath.Join(c1.Dir(), ".tmp-call.json-123"), []byte("{"), 0o600))

	// A call that ended cleanly.
	clean, cleanBytes := recordClosed(t, s, "clean", 16000, 1600)
	c2, err := s.Open("clean")
	require.NoError(t, err)

	// A call with a file that is not a recording.
	c3, err := s.Open("foreign")
	require.NoError(t, err)
	foreign := filepath.Join(c3.Dir(), "notes.wav")
	require.NoError(t, os.WriteFile(foreign, make([]byte, 100), 0o644))
	for _, c := range []*Call{c1, c2, c3} {
		require.NoError(t, c.WriteJSON("call.json", map[string]string{}))
	}

	err = repairAll()
	require.ErrorIs(t, err, errNotRecording, "the foreign file is reported")
	require.Contains(t, err.Error(), "notes.wav")

	crashed := map[string][]byte{}
	for _, track := range []string{"inbound", "outbound"} {
		p, err := s.TrackPath("crashed", track)
		require.NoError(t, err)
		info := requireValidOnDisk(t, p, 8000)
		require.Equal(t, uint32(60*320), info.dataSize)
		crashed[track], err = os.ReadFile(p)
		require.NoError(t, err)
	}
	requireValidOnDisk(t, clean, 16000)
	got, err := os.ReadFile(clean)
	require.NoError(t, err)
	require.Equal(t, cleanBytes, got, "a clean recording is left as it was")
	requireNoTempFiles(t, c1.Dir())

	require.ErrorIs(t, repairAll(), errNotRecording)
	for track, want := range crashed {
		p, err := s.TrackPath("crashed", track)
		require.NoError(t, err)
		got, err := os.ReadFile(p)
		require.NoError(t, err)
		require.Equal(t, want, got, "nothing left to repair")
	}
	got, err = os.ReadFile(foreign)
	require.NoError(t, err)
	require.Equal(t, make([]byte, 100), got, "a file that is not a recording is not touched")
}
