package recorder

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAppendTrackContinuesARecording(t *testing.T) {
	s, err := NewStore(t.TempDir())
	require.NoError(t, err)
	c, err := s.Open("CA1")
	require.NoError(t, err)
	w, err := c.CreateTrack("inbound", 8000)
	require.NoError(t, err)
	first := make([]byte, 3*8000*2+640) // 3.04 s
	for i := range first {
		first[i] = byte(i)
	}
	_, err = w.Write(first)
	require.NoError(t, err)
	require.NoError(t, w.Close())

	_, err = c.CreateTrack("inbound", 8000)
	require.ErrorIs(t, err, os.ErrExist, "an existing recording is never overwritten")
	_, err = c.AppendTrack("inbound", 16000)
	require.ErrorContains(t, err, "8000 Hz")

	w, err = c.AppendTrack("inbound", 8000)
	require.NoError(t, err)
	require.Equal(t, int64(len(first)/2), w.Samples())
	second := make([]byte, 2*8000*2) // 2 s more
	for i := range second {
		second[i] = byte(255 - i%256)
	}
	_, err = w.Write(second)
	require.NoError(t, err)
	require.NoError(t, w.Close())

	path := filepath.Join(c.Dir(), "inbound.wav")
	rate, samples, err := ReadWAVInfo(path)
	require.NoError(t, err)
	require.Equal(t, 8000, rate)
	require.Equal(t, int64(len(first)+len(second))/2, samples)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, append(append([]byte{}, first...), second...), b[headerSize:], "old audio kept, new audio after it")
}
