package recorder

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

const (
	rate8k      = 8000
	frameBytes  = 320                 // 20 ms at 8 kHz
	framesIn30m = 30 * 60 * 1000 / 20 // 90000
)

// TestWAVFramesDoNotAllocate proves the per-frame path, including the header
// patch every 50 frames and silence padding, allocates nothing, so memory per
// call does not grow with its length.
func TestWAVFramesDoNotAllocate(t *testing.T) {
	w, _ := newFileWAV(t, rate8k)
	defer w.Close()
	frame := ramp(0, frameBytes/2)

	allocs := testing.AllocsPerRun(3, func() {
		for range 200 { // 4 s: four header patches
			if _, err := w.Write(frame); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.WriteSilence(12345); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs)
}

// BenchmarkWAV30Minutes records a 30-minute 8 kHz call in 20 ms frames to a
// real file per iteration; allocs/op counts the whole call (opening the file
// and the writer's buffer) and allocs/frame must be 0.
func BenchmarkWAV30Minutes(b *testing.B) {
	dir := b.TempDir()
	frame := ramp(0, frameBytes/2)
	b.ReportAllocs()
	b.SetBytes(framesIn30m * frameBytes)
	for b.Loop() {
		path := filepath.Join(dir, "t.wav")
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		w, err := NewWAV(f, rate8k)
		if err != nil {
			b.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range framesIn30m {
			if _, err := w.Write(frame); err != nil {
				b.Fatal(err)
			}
		}
		runtime.ReadMemStats(&after)
		frameAllocs := float64(after.Mallocs - before.Mallocs)
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(frameAllocs/framesIn30m, "allocs/frame")
	}
}

// BenchmarkWAVFrame is the per-frame cost on its own.
func BenchmarkWAVFrame(b *testing.B) {
	w, _ := newFileWAV(b, rate8k)
	defer w.Close()
	frame := ramp(0, frameBytes/2)
	b.ReportAllocs()
	b.SetBytes(frameBytes)
	for b.Loop() {
		if _, err := w.Write(frame); err != nil {
			b.Fatal(err)
		}
	}
}
