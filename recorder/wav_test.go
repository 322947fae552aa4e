package recorder

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// wavInfo is what parseWAV finds in a file.
type wavInfo struct {
	riffSize      uint32
	format        uint16
	channels      uint16
	sampleRate    uint32
	byteRate      uint32
	blockAlign    uint16
	bitsPerSample uint16
	dataOffset    int
	dataSize      uint32
}

// parseWAV is an independent RIFF reader: it walks the chunks as a player
// would instead of trusting fixed offsets, so a header written in the wrong
// place or with wrong sizes fails here even if the package's own reader
// agreed with its writer.
func parseWAV(t testing.TB, b []byte) wavInfo {
	t.Helper()
	require.GreaterOrEqual(t, len(b), 12, "shorter than a RIFF header")
	require.Equal(t, "RIFF", string(b[0:4]))
	require.Equal(t, "WAVE", string(b[8:12]))
	var info wavInfo
	info.riffSize = binary.LittleEndian.Uint32(b[4:8])
	var haveFmt, haveData bool
	for off := 12; off+8 <= len(b) && !haveData; {
		id := string(b[off : off+4])
		size := binary.LittleEndian.Uint32(b[off+4 : off+8])
		body := off + 8
		switch id {
		case "fmt ":
			require.GreaterOrEqual(t, int(size), 16)
			f := b[body : body+16]
			info.format = binary.LittleEndian.Uint16(f[0:])
			info.channels = binary.LittleEndian.Uint16(f[2:])
			info.sampleRate = binary.LittleEndian.Uint32(f[4:])
			info.byteRate = binary.LittleEndian.Uint32(f[8:])
			info.blockAlign = binary.LittleEndian.Uint16(f[12:])
			info.bitsPerSample = binary.LittleEndian.Uint16(f[14:])
			haveFmt = true
		case "data":
			info.dataOffset = body
			info.dataSize = size
			haveData = true
		}
		off = body + int(size) + int(size&1)
	}
	require.True(t, haveFmt, "no fmt chunk")
	require.True(t, haveData, "no data chunk")
	return info
}

// requireValidOnDisk reads the file at path and checks it is a PCM16 mono WAV
// at rate whose header describes exactly the bytes on disk.
func requireValidOnDisk(t testing.TB, path string, rate int) wavInfo {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	info := parseWAV(t, b)
	requireFormat(t, info, rate)
	require.Equal(t, uint32(len(b)-8), info.riffSize, "RIFF size vs file length")
	require.Equal(t, uint32(len(b)-info.dataOffset), info.dataSize, "data size vs bytes on disk")
	return info
}

func requireFormat(t testing.TB, info wavInfo, rate int) {
	t.Helper()
	require.Equal(t, uint16(1), info.format, "PCM")
	require.Equal(t, uint16(1), info.channels, "mono")
	require.Equal(t, uint32(rate), info.sampleRate)
	require.Equal(t, uint32(rate*2), info.byteRate)
	require.Equal(t, uint16(2), info.blockAlign)
	require.Equal(t, uint16(16), info.bitsPerSample)
	require.Equal(t, 44, info.dataOffset, "canonical header size")
}

// memFile is an in-memory io.WriteSeeker that counts Sync and Close calls.
type memFile struct {
	b      []byte
	off    int64
	syncs  int
	closes int
	err    error // returned by Write once set
}

func (m *memFile) Write(p []byte) (int, error) {
	if m.err != nil {
		return 0, m.err
	}
	if end := m.off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	copy(m.b[m.off:], p)
	m.off += int64(len(p))
	return len(p), nil
}

func (m *memFile) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += m.off
	case io.SeekEnd:
		off += int64(len(m.b))
	}
	if off < 0 {
		return 0, errors.New("negative seek")
	}
	m.off = off
	return off, nil
}

func (m *memFile) Sync() error  { m.syncs++; return nil }
func (m *memFile) Close() error { m.closes++; return nil }

// ramp returns n samples of a recognisable pattern as PCM16LE, starting at
// sample index start so consecutive calls continue the pattern.
func ramp(start, n int) []byte {
	b := make([]byte, 2*n)
	for i := range n {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(int16((start+i)*37)))
	}
	return b
}

func TestWAVHeader(t *testing.T) {
	tests := []struct {
		name    string
		rate    int
		samples int
	}{
		{"empty 8 kHz", 8000, 0},
		{"8 kHz one frame", 8000, 160},
		{"16 kHz", 16000, 16000 + 7},
		{"24 kHz", 24000, 3 * 24000},
		{"44.1 kHz", 44100, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, path := newFileWAV(t, tt.rate)
			pcm := ramp(0, tt.samples)
			n, err := w.Write(pcm)
			require.NoError(t, err)
			require.Equal(t, len(pcm), n)
			require.Equal(t, int64(tt.samples), w.Samples())
			require.NoError(t, w.Close())

			info := requireValidOnDisk(t, path, tt.rate)
			require.Equal(t, uint32(2*tt.samples), info.dataSize)
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, pcm, b[44:], "audio bytes as written")

			rate, samples, err := ReadWAVInfo(path)
			require.NoError(t, err)
			require.Equal(t, tt.rate, rate)
			require.Equal(t, int64(tt.samples), samples)
		})
	}
}

func TestNewWAVRejectsBadRate(t *testing.T) {
	for _, rate := range []int{0, -8000, 1 << 31} {
		_, err := NewWAV(&memFile{}, rate)
		require.Error(t, err, "rate %d", rate)
	}
}

func TestNewWAVHeaderIsOnDiskAtOnce(t *testing.T) {
	w, path := newFileWAV(t, 8000)
	defer w.Close()
	info := requireValidOnDisk(t, path, 8000)
	require.Zero(t, info.dataSize)
}

// TestWAVValidWhileRecording reads the file from disk after every write while
// it is still open: right after each one-second patch the header must match
// the file exactly, and at no point may it claim more audio than is on disk.
func TestWAVValidWhileRecording(t *testing.T) {
	tests := []struct {
		name  string
		rate  int
		frame int // samples per write
		total int // samples in all
	}{
		{"8 kHz 20 ms frames", 8000, 160, 8000*3 + 80},
		{"16 kHz 20 ms frames", 16000, 320, 16000 * 2},
		{"24 kHz 20 ms frames", 24000, 480, 24000*2 + 480},
		{"8 kHz odd-sized writes", 8000, 173, 8000 * 3},
		{"8 kHz 100 ms frames", 8000, 800, 8000 * 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, path := newFileWAV(t, tt.rate)

			patches := 0
			for written := 0; written < tt.total; {
				n := min(tt.frame, tt.total-written)
				before := w.Samples() / int64(tt.rate)
				_, err := w.Write(ramp(written, n))
				require.NoError(t, err)
				written += n

				b, err := os.ReadFile(path)
				require.NoError(t, err)
				info := parseWAV(t, b)
				requireFormat(t, info, tt.rate)
				require.LessOrEqual(t, int(info.dataSize), len(b)-44, "header claims bytes not on disk")
				require.Equal(t, info.riffSize, info.dataSize+36)
				require.Zero(t, len(b)%2, "file ends mid-sample")

				if w.Samples()/int64(tt.rate) > before {
					// A second boundary was crossed: the header was patched.
					patches++
					require.Equal(t, uint32(len(b)-44), info.dataSize, "after a patch the header matches the disk")
					require.Equal(t, uint32(2*w.Samples()), info.dataSize, "after a patch every sample is on disk")
				}
			}
			require.Equal(t, tt.total/tt.rate, patches, "one patch per second of audio")
			require.NoError(t, w.Close())
			info := requireValidOnDisk(t, path, tt.rate)
			require.Equal(t, uint32(2*tt.total), info.dataSize)
		})
	}
}

func TestWAVWriteSilence(t *testing.T) {
	w, path := newFileWAV(t, 8000)

	pcm := ramp(1, 100)
	_, err := w.Write(pcm)
	require.NoError(t, err)
	// Longer than the static zero buffer and across a patch boundary.
	require.NoError(t, w.WriteSilence(12345))
	require.NoError(t, w.WriteSilence(0))
	require.Error(t, w.WriteSilence(-1))
	_, err = w.Write(pcm)
	require.NoError(t, err)
	require.Equal(t, int64(100+12345+100), w.Samples())
	require.NoError(t, w.Close())

	requireValidOnDisk(t, path, 8000)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	data := b[44:]
	require.Equal(t, pcm, data[:200])
	require.Equal(t, make([]byte, 2*12345), data[200:200+2*12345])
	require.Equal(t, pcm, data[200+2*12345:])
}

func TestWAVRejectsHalfSamples(t *testing.T) {
	m := &memFile{}
	w, err := NewWAV(m, 8000)
	require.NoError(t, err)
	n, err := w.Write([]byte{1, 2, 3})
	require.Error(t, err)
	require.Zero(t, n)
	require.Zero(t, w.Samples())
}

func TestWAVCloseIdempotent(t *testing.T) {
	m := &memFile{}
	w, err := NewWAV(m, 8000)
	require.NoError(t, err)
	_, err = w.Write(ramp(0, 160))
	require.NoError(t, err)

	require.NoError(t, w.Close())
	require.NoError(t, w.Close())
	require.Equal(t, 1, m.syncs, "synced once")
	require.Equal(t, 1, m.closes, "closed once")
	info := parseWAV(t, m.b)
	require.Equal(t, uint32(320), info.dataSize, "Close patched the header")

	_, err = w.Write(ramp(0, 160))
	require.ErrorIs(t, err, os.ErrClosed)
	require.ErrorIs(t, w.Flush(), os.ErrClosed)
}

func TestWAVCloseOnFileIdempotent(t *testing.T) {
	w, path := newFileWAV(t, 8000)
	require.NoError(t, w.Close())
	require.NoError(t, w.Close(), "a second Close must not report the file as already closed")
	requireValidOnDisk(t, path, 8000)
}

func TestWAVCloseReportsWriteError(t *testing.T) {
	m := &memFile{}
	w, err := NewWAV(m, 8000)
	require.NoError(t, err)
	_, err = w.Write(ramp(0, 160)) // buffered, not yet written
	require.NoError(t, err)
	m.err = errors.New("disk full")
	first := w.Close()
	require.ErrorContains(t, first, "disk full")
	require.Equal(t, first, w.Close(), "later calls return the first result")
	require.Equal(t, 1, m.closes, "the writer is closed even when the flush failed")
}

func TestWAVStartsAtWriterPosition(t *testing.T) {
	m := &memFile{}
	_, err := m.Write([]byte("preamble"))
	require.NoError(t, err)
	w, err := NewWAV(m, 8000)
	require.NoError(t, err)
	_, err = w.Write(ramp(0, 8000)) // one second: forces a patch
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.Equal(t, "preamble", string(m.b[:8]))
	info := parseWAV(t, m.b[8:])
	require.Equal(t, uint32(16000), info.dataSize)
	require.Len(t, m.b, 8+44+16000)
}

func TestWAVFull(t *testing.T) {
	m := &memFile{}
	w, err := NewWAV(m, 8000)
	require.NoError(t, err)
	// Pretend almost 4 GiB were written rather than writing them.
	w.data = maxDataSize - 4
	w.nextPatch = maxDataSize + 1
	n, err := w.Write(make([]byte, 8))
	require.ErrorIs(t, err, ErrFull)
	require.Equal(t, 4, n, "what fits is recorded")
	require.Equal(t, int64(maxDataSize/2), w.Samples())
	n, err = w.Write(make([]byte, 2))
	require.ErrorIs(t, err, ErrFull)
	require.Zero(t, n)
	require.LessOrEqual(t, int64(36+maxDataSize), int64(1<<32-1), "RIFF size still fits its field")
}

// newFileWAV records at rate into a new file in the test's temporary
// folder and returns the WAV and the file's path.
func newFileWAV(tb testing.TB, rate int) (*WAV, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "t.wav")
	f, err := os.Create(path)
	require.NoError(tb, err)
	w, err := NewWAV(f, rate)
	require.NoError(tb, err)
	return w, path
}
