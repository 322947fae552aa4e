package recorder

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// rawHeader builds a canonical header by hand with arbitrary size fields, the
// way a crash can leave one.
func rawHeader(rate int, riffSize, dataSize uint32) []byte {
	h := make([]byte, 0, 44)
	h = append(h, "RIFF"...)
	h = binary.LittleEndian.AppendUint32(h, riffSize)
	h = append(h, "WAVEfmt "...)
	h = binary.LittleEndian.AppendUint32(h, 16)
	h = binary.LittleEndian.AppendUint16(h, 1)
	h = binary.LittleEndian.AppendUint16(h, 1)
	h = binary.LittleEndian.AppendUint32(h, uint32(rate))
	h = binary.LittleEndian.AppendUint32(h, uint32(rate*2))
	h = binary.LittleEndian.AppendUint16(h, 2)
	h = binary.LittleEndian.AppendUint16(h, 16)
	h = append(h, "data"...)
	h = binary.LittleEndian.AppendUint32(h, dataSize)
	return h
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestRepairWAV(t *testing.T) {
	audio := ramp(0, 1000)
	tests := []struct {
		name      string
		content   []byte
		wantRate  int
		wantAudio []byte // audio expected after repair
		changed   bool
	}{
		{
			name:      "zero-size header with audio after it (kill -9 before the first patch)",
			content:   concat(rawHeader(8000, 36, 0), audio),
			wantRate:  8000,
			wantAudio: audio,
			changed:   true,
		},
		{
			name:      "header patched a second ago, more audio since",
			content:   concat(rawHeader(16000, 36+400, 400), audio),
			wantRate:  16000,
			wantAudio: audio,
			changed:   true,
		},
		{
			name:      "header claims more than the file holds (file truncated)",
			content:   concat(rawHeader(8000, 36+8000, 8000), audio[:300]),
			wantRate:  8000,
			wantAudio: audio[:300],
			changed:   true,
		},
		{
			name:      "odd length: half a sample at the end is cut",
			content:   concat(rawHeader(8000, 36, 0), audio[:301]),
			wantRate:  8000,
			wantAudio: audio[:300],
			changed:   true,
		},
		{
			name:      "odd length with one stray byte and no audio",
			content:   concat(rawHeader(24000, 36, 0), []byte{7}),
			wantRate:  24000,
			wantAudio: []byte{},
			changed:   true,
		},
		{
			name:      "already correct",
			content:   concat(rawHeader(8000, 36+2000, 2000), audio),
			wantRate:  8000,
			wantAudio: audio,
			changed:   false,
		},
		{
			name:      "empty file",
			content:   nil,
			wantRate:  8000,
			wantAudio: []byte{},
			changed:   true,
		},
		{
			name:      "header cut before the rate",
			content:   rawHeader(16000, 36, 0)[:20],
			wantRate:  8000,
			wantAudio: []byte{},
			changed:   true,
		},
		{
			name:      "header cut after the rate keeps the rate",
			content:   rawHeader(16000, 36, 0)[:30],
			wantRate:  16000,
			wantAudio: []byte{},
			changed:   true,
		},
		{
			name:      "header one byte short",
			content:   rawHeader(24000, 36, 0)[:43],
			wantRate:  24000,
			wantAudio: []byte{},
			changed:   true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.wav")
			require.NoError(t, os.WriteFile(path, tt.content, 0o644))

			samples, changed, err := repairWAV(path)
			require.NoError(t, err)
			require.Equal(t, tt.changed, changed)
			require.Equal(t, int64(len(tt.wantAudio)/2), samples)

			info := requireValidOnDisk(t, path, tt.wantRate)
			require.Equal(t, uint32(len(tt.wantAudio)), info.dataSize)
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, tt.wantAudio, b[44:], "audio survives repair untouched")

			// Repairing again is a no-op.
			again, changed, err := repairWAV(path)
			require.NoError(t, err)
			require.False(t, changed)
			require.Equal(t, samples, again)

			rate, n, err := ReadWAVInfo(path)
			require.NoError(t, err)
			require.Equal(t, tt.wantRate, rate)
			require.Equal(t, samples, n)
		})
	}
}

func TestRepairWAVLeavesForeignFilesAlone(t *testing.T) {
	stereo := rawHeader(8000, 36, 0)
	binary.LittleEndian.PutUint16(stereo[22:], 2)
	tests := []struct {
		name    string
		content []byte
	}{
		{"not RIFF", concat([]byte("ID3\x04"), make([]byte, 100))},
		{"stereo", concat(stereo, ramp(0, 10))},
		{"zero-filled header", make([]byte, 200)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.wav")
			require.NoError(t, os.WriteFile(path, tt.content, 0o644))
			_, err := RepairWAV(path)
			require.ErrorIs(t, err, errNotRecording)
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, tt.content, b, "file untouched")
		})
	}
}

func TestRepairWAVMissingFile(t *testing.T) {
	_, err := RepairWAV(filepath.Join(t.TempDir(), "nope.wav"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestRepairAfterKill records through the real writer, abandons it without
// Close as kill -9 would (the buffered tail is lost, the header is a patch
// behind), and checks that repair yields a valid WAV of what reached the disk.
func TestRepairAfterKill(t *testing.T) {
	w, path := newFileWAV(t, 8000)
	for i := range 130 { // 2.6 s of 20 ms frames
		_, err := w.Write(ramp(i*160, 160))
		require.NoError(t, err)
	}
	require.NoError(t, w.dst.(*os.File).Close()) // the process dies; w is never closed

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	stale := parseWAV(t, b)
	require.Equal(t, uint32(2*16000), stale.dataSize, "header is at the 2 s patch")
	require.Greater(t, len(b)-44, int(stale.dataSize), "more audio reached the disk since")

	samples, err := RepairWAV(path)
	require.NoError(t, err)
	info := requireValidOnDisk(t, path, 8000)
	require.Equal(t, int64(info.dataSize/2), samples)
	require.Equal(t, ramp(0, int(samples)), b[44:44+2*samples], "recovered audio is the start of what was written")
}

func TestReadWAVInfoCapsAtFileLength(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.wav")
	require.NoError(t, os.WriteFile(path, concat(rawHeader(8000, 36+1000, 1000), ramp(0, 100)), 0o644))
	rate, samples, err := ReadWAVInfo(path)
	require.NoError(t, err)
	require.Equal(t, 8000, rate)
	require.Equal(t, int64(100), samples)
}

func TestReadWAVInfoErrors(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short.wav")
	require.NoError(t, os.WriteFile(short, []byte("RIFF"), 0o644))
	_, _, err := ReadWAVInfo(short)
	require.Error(t, err)

	_, _, err = ReadWAVInfo(filepath.Join(dir, "missing.wav"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func FuzzRepairWAV(f *testing.F) {
	f.Add([]byte{})
	f.Add(rawHeader(8000, 36, 0))
	f.Add(concat(rawHeader(8000, 36, 0), ramp(0, 50), []byte{1}))
	f.Add(rawHeader(16000, 0xFFFFFFFF, 0xFFFFFFFF)[:30])
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVEfmt "))
	f.Fuzz(func(t *testing.T, content []byte) {
		path := filepath.Join(t.TempDir(), "t.wav")
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		samples, err := RepairWAV(path)
		after, rerr := os.ReadFile(path)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if err != nil {
			if string(after) != string(content) {
				t.Fatalf("failed repair changed the file: %v", err)
			}
			return
		}
		if len(after) != 44+int(2*samples) {
			t.Fatalf("repaired file is %d bytes for %d samples", len(after), samples)
		}
		rate, n, err := ReadWAVInfo(path)
		if err != nil {
			t.Fatalf("repaired file does not read back: %v", err)
		}
		if n != samples || rate <= 0 {
			t.Fatalf("read back rate %d samples %d, repair said %d samples", rate, n, samples)
		}
		if len(content) >= 44 && string(after[44:]) != string(content[44:44+2*samples]) {
			t.Fatal("repair changed the audio")
		}
	})
}
