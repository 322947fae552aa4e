package recorder

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWAVPatchInPlace: on a file the header is patched with positioned
// writes, which must hit the header wherever it starts and leave the
// audio appending where it was.
func TestWAVPatchInPlace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.wav")
	f, err := os.Create(path)
	require.NoError(t, err)
	_, err = f.WriteString("preamble")
	require.NoError(t, err)
	w, err := NewWAV(f, 8000)
	require.NoError(t, err)

	for i := 0; i < 51; i++ { // one second and a frame of 20 ms frames: one patch
		_, err = w.Write(ramp(160*i, 160))
		require.NoError(t, err)
	}
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "preamble", string(b[:8]))
	info := parseWAV(t, b[8:8+44])
	require.Equal(t, uint32(16000), info.dataSize, "patched to the audio flushed at the second")
	require.Len(t, b, 8+44+16000, "the frame after the second is still buffered")

	_, err = w.Write(ramp(8160, 8000))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	info = parseWAV(t, b[8:])
	require.Equal(t, uint32(2*16160), info.dataSize)
	require.Equal(t, ramp(0, 16160), b[8+44:], "audio in order after the patches")
}
