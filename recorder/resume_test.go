package recorder

import (
	"bytes"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// smallDisk is a file on a disk with room for limit bytes: a write past it
// keeps what fits and fails with ENOSPC, as write(2) does.
type smallDisk struct {
	memFile
	limit int64
}

func (d *smallDisk) Write(p []byte) (int, error) {
	room := max(d.limit-d.off, 0)
	if int64(len(p)) <= room {
		return d.memFile.Write(p)
	}
	n, _ := d.memFile.Write(p[:room])
	return n, fmt.Errorf("write: %w", syscall.ENOSPC)
}

func (d *smallDisk) Truncate(size int64) error {
	if size > int64(len(d.b)) {
		return errors.New("grow by truncate: not needed here")
	}
	d.b = d.b[:size]
	return nil
}

// TestWAVResumesAfterDiskFull: after writes failed for lack of space, and
// space came back, Resume settles the WAV at the whole samples the file
// holds (cutting a half-written sample), and writing goes on from there:
// the final WAV is valid, its header matches its length, and the audio
// written after the gap sits where the caller put it.
func TestWAVResumesAfterDiskFull(t *testing.T) {
	disk := &smallDisk{limit: headerSize + 3*bufferSize + 1} // an odd limit: the last sample is cut
	w, err := NewWAV(disk, rate8k)
	require.NoError(t, err)
	var pos int // samples handed to the WAV
	var failedAt int
	for ; failedAt == 0 && pos < 100*rate8k; pos += frameBytes / 2 {
		if _, err := w.Write(ramp(pos, frameBytes/2)); err != nil {
			require.ErrorIs(t, err, syscall.ENOSPC)
			failedAt = pos
		}
	}
	require.NotZero(t, failedAt, "the disk filled up")
	_, err = w.Write(ramp(pos, frameBytes/2))
	require.Error(t, err, "still full")

	disk.limit = 1 << 30 // room again
	held, err := w.Resume()
	require.NoError(t, err)
	require.Equal(t, int64(3*bufferSize/2), held, "the whole samples that reached the file")
	require.Equal(t, headerSize+2*held, int64(len(disk.b)), "the half sample is cut")
	require.Equal(t, uint32(2*held), parseWAV(t, disk.b).dataSize, "the header matches the file")

	resumeAt := pos + 5*frameBytes/2 // the caller's clock moved on meanwhile
	require.NoError(t, w.WriteSilence(int64(resumeAt)-held))
	for k := range 100 {
		_, err := w.Write(ramp(resumeAt+k*frameBytes/2, frameBytes/2))
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())

	info := parseWAV(t, disk.b)
	total := resumeAt + 100*frameBytes/2
	require.Equal(t, uint32(2*total), info.dataSize)
	require.Len(t, disk.b, info.dataOffset+2*total)
	audio := disk.b[info.dataOffset:]
	require.Equal(t, ramp(0, int(held)), audio[:2*held], "what reached the disk before it filled")
	require.Equal(t, make([]byte, 2*(int64(resumeAt)-held)), audio[2*held:2*resumeAt], "silence for the stretch that was lost")
	require.True(t, bytes.Equal(ramp(resumeAt, 100*frameBytes/2), audio[2*resumeAt:]), "the audio after the gap at its position")
}

// TestWAVResumeRefusals: a closed WAV, and a file cut inside its header,
// are not resumed.
func TestWAVResumeRefusals(t *testing.T) {
	w, err := NewWAV(&memFile{}, rate8k)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	_, err = w.Resume()
	require.Error(t, err)

	f := &memFile{}
	w, err = NewWAV(f, rate8k)
	require.NoError(t, err)
	f.b = f.b[:10]
	_, err = w.Resume()
	require.ErrorContains(t, err, "shorter than its header")
}
