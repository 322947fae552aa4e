package bridge

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/callcaptions/bridge/recorder"
	"github.com/callcaptions/bridge/stt/mock"
)

// fullDisk is a file in memory on a disk that can be made full: then a
// write that would grow the file keeps what fits (nothing) and fails with
// ENOSPC; rewriting bytes the file already has still works, as on a real
// disk.
type fullDisk struct {
	mu   sync.Mutex
	b    []byte
	off  int64
	full bool
}

func (d *fullDisk) setFull(full bool) {
	d.mu.Lock()
	d.full = full
	d.mu.Unlock()
}

func (d *fullDisk) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := len(p)
	if d.full {
		n = int(max(0, min(int64(len(p)), int64(len(d.b))-d.off)))
	}
	if end := d.off + int64(n); end > int64(len(d.b)) {
		d.b = append(d.b, make([]byte, end-int64(len(d.b)))...)
	}
	copy(d.b[d.off:], p[:n])
	d.off += int64(n)
	if n < len(p) {
		return n, fmt.Errorf("write: %w", syscall.ENOSPC)
	}
	return n, nil
}

func (d *fullDisk) Seek(off int64, whence int) (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if off += [...]int64{io.SeekStart: 0, io.SeekCurrent: d.off, io.SeekEnd: int64(len(d.b))}[whence]; off < 0 {
		return 0, errors.New("negative seek")
	}
	d.off = off
	return off, nil
}

func (d *fullDisk) Truncate(size int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if size < int64(len(d.b)) {
		d.b = d.b[:size]
	}
	return nil
}

// diskStore records one call's tracks with the real WAV writer on disks
// that can fill up.
type diskStore struct {
	*memStore
	disk    *fullDisk
	resumes *int
}

func (s diskStore) Open(id string) (CallFiles, error) {
	f, err := s.memStore.Open(id)
	return diskFiles{CallFiles: f, s: s}, err
}

type diskFiles struct {
	CallFiles
	s diskStore
}

func (f diskFiles) CreateTrack(_ string, rate int) (AudioSink, error) {
	w, err := recorder.NewWAV(f.s.disk, rate)
	return countingWAV{w, f.s.resumes}, err
}

// countingWAV counts attempts to resume the recording.
type countingWAV struct {
	*recorder.WAV
	resumes *int // only the ingesting stream's goroutine and finish touch it, one after the other
}

func (w countingWAV) Resume() (int64, error) {
	*w.resumes++
	return w.WAV.Resume()
}

// TestRecordingResumesAfterDiskFull: a track whose writes fail because the
// disk is full records again once there is room, trying at most once a
// second of audio; the WAV stays on the call clock (what it missed is
// silence, and an audio.gap of kind record says where), so it has the
// call's full length and the audio after the gap at its own position.
func TestRecordingResumesAfterDiskFull(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	gen := utterances([2]float64{0.3, 1.3}, [2]float64{2.0, 3.0}, [2]float64{4.2, 5.2})
	const fullAt, roomAt, frames = 100, 200, 300 // 2 s, 4 s, 6 s
	disk := &fullDisk{}
	var resumes int
	pub := &eventLog{}
	metrics := NewMetrics(nil)
	reg := NewRegistry(Config{
		Store: diskStore{newMemStore(), disk, &resumes}, Recognizer: mock.New(mock.Config{}), Publisher: pub, Metrics: metrics,
		Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), STTQueue: 5 * time.Minute,
	})
	s := startCall(t, reg, "CA-full")
	play(t, s, gen, 0, fullAt)
	disk.setFull(true)
	play(t, s, gen, fullAt, roomAt)
	require.Eventually(t, func() bool {
		rec, _ := reg.Record("CA-full")
		return len(rec.Tracks) == 1 && rec.Tracks[0].Error != ""
	}, 5*time.Second, time.Millisecond, "the failure is in the record")
	disk.setFull(false)
	play(t, s, gen, roomAt, frames)
	s.End(ReasonStop, nil)
	rec := waitCallEnded(t, reg, "CA-full")

	// One gap of kind record, from where the WAV stopped to where it resumed.
	var gaps []GapBody
	for _, ev := range pub.of("CA-full", TypeGap) {
		if g := ev.Body.(GapBody); g.Kind == "record" {
			gaps = append(gaps, g)
		}
	}
	require.Len(t, gaps, 1, "%+v", pub.of("CA-full", TypeGap))
	held, resumed := gaps[0].StartMs*8, (gaps[0].StartMs+gaps[0].DurationMs)*8
	require.LessOrEqual(t, held, int64(fullAt*160), "the WAV stopped when the disk filled")
	require.GreaterOrEqual(t, held, int64(fullAt*160-8192/2), "losing at most the write buffer")
	require.GreaterOrEqual(t, resumed, int64(roomAt*160))
	require.LessOrEqual(t, resumed, int64(roomAt*160+8000), "resumed within a second of audio of the disk having room")
	require.LessOrEqual(t, resumes, 4, "tried about once a second of audio, not per frame")

	// The WAV is playable, has the call's length and every sample in place.
	disk.mu.Lock()
	b := bytes.Clone(disk.b)
	disk.mu.Unlock()
	require.Equal(t, "RIFF", string(b[0:4]))
	require.Equal(t, uint32(len(b)-8), binary.LittleEndian.Uint32(b[4:8]))
	require.Equal(t, uint32(frames*320), binary.LittleEndian.Uint32(b[40:44]))
	require.Len(t, b, 44+frames*320)
	audio, want := b[44:], decoded(gen, frames)
	require.Equal(t, want[:2*held], audio[:2*held], "audio before the disk filled")
	require.Equal(t, make([]byte, 2*(resumed-held)), audio[2*held:2*resumed], "silence for what was missed")
	require.Equal(t, want[2*resumed:], audio[2*resumed:], "audio after the gap at its call-clock position")
	require.Equal(t, int64(frames*160), rec.Tracks[0].Samples)
	require.Contains(t, rec.Tracks[0].Error, "no space left on device", "the failure stays in the record")
	require.Equal(t, 1.0, testutil.ToFloat64(metrics.recordErrors), "counted once")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reg.Shutdown(ctx)
}
