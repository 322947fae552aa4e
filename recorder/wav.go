package recorder

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// Canonical PCM WAV header, all little-endian, as written by NewWAV:
//
//	offset size  field
//	     0    4  "RIFF"
//	     4    4  RIFF size = 36 + data size (everything after this field)
//	     8    4  "WAVE"
//	    12    4  "fmt "
//	    16    4  fmt chunk size = 16
//	    20    2  audio format = 1 (PCM)
//	    22    2  channels = 1
//	    24    4  sample rate
//	    28    4  byte rate = sample rate * 2
//	    32    2  block align = 2
//	    34    2  bits per sample = 16
//	    36    4  "data"
//	    40    4  data size in bytes
//	    44       samples, PCM16LE
//
// Only the two size fields change while recording, so keeping the file
// playable means rewriting 8 bytes now and then.
const (
	headerSize     = 44
	riffSizeOffset = 4
	rateOffset     = 24
	dataSizeOffset = 40

	bytesPerSample = 2

	// maxDataSize is the largest data chunk a RIFF size field can describe,
	// kept even so it ends on a whole sample: about 37 hours at 16 kHz.
	maxDataSize = (1<<32 - 1 - (headerSize - 8)) &^ 1

	// bufferSize bounds both the memory a track holds and the audio a kill -9
	// can lose (bytes still in the buffer never reached the kernel) to half a
	// second at 8 kHz. Even, so flushes never split a sample.
	bufferSize = 8 << 10

	// defaultRepairRate is the rate given to a file too short to say its own.
	// It only matters for a file with no audio in it.
	defaultRepairRate = 8000
)

// ErrFull reports that a WAV reached the 4 GiB size limit of the RIFF format.
// The file stays valid; audio past the limit is not recorded.
var ErrFull = errors.New("wav: RIFF size limit reached")

// zeros is read-only silence for WriteSilence, so padding a gap costs no
// allocation however long the gap.
var zeros [4096]byte

// WAV is a streaming PCM16 mono WAV writer. It buffers writes and rewrites
// the header's size fields after every second of audio, so the file on disk is
// a playable WAV at any moment; the header may then trail the data by up to a
// second plus the buffer, never lead it, and RepairWAV settles the rest after
// a crash. The header is written at the writer's position when NewWAV is
// called.
//
// A WAV is not safe for concurrent use; a track has one writer.
type WAV struct {
	dst  io.WriteSeeker
	buf  *bufio.Writer
	base int64 // offset of the header in dst

	data       int64 // bytes of audio accepted so far
	patchEvery int64 // bytes per second of audio
	nextPatch  int64 // data size at which the header is next rewritten

	scratch [4]byte // header field bytes; a field so the patch doesn't allocate

	closed   bool
	closeErr error

	// syncer, when set, fsyncs the file on its own goroutine until Close
	// takes the WAV out of its set. syncMu orders those syncs with the
	// release of the file in Close.
	syncer   *Syncer
	syncMu   sync.Mutex
	released bool
}

// NewWAV writes a header for an empty PCM16 mono WAV at sampleRate Hz to w and
// returns a writer that appends audio after it. The header reaches w before
// NewWAV returns, so even an empty recording is a valid file.
func NewWAV(w io.WriteSeeker, sampleRate int) (*WAV, error) {
	if !validRate(int64(sampleRate)) {
		return nil, fmt.Errorf("new wav: sample rate %d out of range", sampleRate)
	}
	base, err := w.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, fmt.Errorf("new wav: find position: %w", err)
	}
	wv := newWAV(w, base, sampleRate, 0)
	hdr := header(sampleRate, 0)
	if _, err := wv.buf.Write(hdr[:]); err != nil {
		return nil, fmt.Errorf("new wav: write header: %w", err)
	}
	if err := wv.buf.Flush(); err != nil {
		return nil, fmt.Errorf("new wav: write header: %w", err)
	}
	return wv, nil
}

// newWAV returns a writer that continues at dst's position, which is base +
// headerSize + data.
func newWAV(dst io.WriteSeeker, base int64, sampleRate int, data int64) *WAV {
	w := &WAV{
		dst:        dst,
		buf:        bufio.NewWriterSize(dst, bufferSize),
		base:       base,
		data:       data,
		patchEvery: int64(sampleRate) * bytesPerSample,
	}
	w.schedulePatch()
	return w
}

// validRate reports whether a header can hold the rate: the byte rate
// field is 32 bits.
func validRate(r int64) bool { return r > 0 && r*bytesPerSample <= 1<<32-1 }

// schedulePatch sets the next header patch at the next whole second of
// audio after data.
func (w *WAV) schedulePatch() { w.nextPatch = (w.data/w.patchEvery + 1) * w.patchEvery }

// header returns the canonical header for dataSize bytes of audio.
func header(sampleRate int, dataSize int64) [headerSize]byte {
	var h [headerSize]byte
	le := binary.LittleEndian
	copy(h[0:], "RIFF")
	le.PutUint32(h[riffSizeOffset:], uint32(headerSize-8+dataSize))
	copy(h[8:], "WAVE")
	copy(h[12:], "fmt ")
	le.PutUint32(h[16:], 16)
	le.PutUint16(h[20:], 1)
	le.PutUint16(h[22:], 1)
	le.PutUint32(h[rateOffset:], uint32(sampleRate))
	le.PutUint32(h[28:], uint32(sampleRate*bytesPerSample))
	le.PutUint16(h[32:], bytesPerSample)
	le.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	le.PutUint32(h[dataSizeOffset:], uint32(dataSize))
	return h
}

// Write appends PCM16LE audio. pcm must hold whole samples (even length).
// After every second of audio the buffer is flushed and the header patched;
// the trigger counts bytes, not wall time, so the same input always produces
// the same writes. Past the RIFF size limit Write records what fits and
// returns ErrFull.
func (w *WAV) Write(pcm []byte) (int, error) {
	if w.closed {
		return 0, fmt.Errorf("write wav: %w", os.ErrClosed)
	}
	if len(pcm)%bytesPerSample != 0 {
		return 0, fmt.Errorf("write wav: %d bytes is not a whole number of samples", len(pcm))
	}
	var full bool
	if room := maxDataSize - w.data; int64(len(pcm)) > room {
		pcm = pcm[:room]
		full = true
	}
	n, err := w.buf.Write(pcm)
	w.data += int64(n)
	if err != nil {
		return n, fmt.Errorf("write wav: %w", err)
	}
	if w.data >= w.nextPatch {
		if err := w.Flush(); err != nil {
			return n, err
		}
		w.schedulePatch()
	}
	if full {
		return n, ErrFull
	}
	return n, nil
}

// WriteSilence appends samples zero samples, e.g. to pad a gap in the media
// clock or the start of a track that joined late. It allocates nothing.
func (w *WAV) WriteSilence(samples int64) error {
	if samples < 0 {
		return fmt.Errorf("write wav silence: negative count %d", samples)
	}
	remaining := samples * bytesPerSample
	for remaining > 0 {
		chunk := min(remaining, int64(len(zeros)))
		if _, err := w.Write(zeros[:chunk]); err != nil {
			return err
		}
		remaining -= chunk
	}
	return nil
}

// Resume makes the WAV writable again after a failed write (a disk that
// was full has room again). Audio still in the write buffer, which never
// reached the file, is dropped; the file is cut back to the whole samples it
// holds, the header is patched to match and writing continues at its end.
// It returns how many samples the file holds: the caller fills the
// stretch it lost (with silence, to stay on its clock). A Resume that fails
// leaves the WAV as it was; it may be tried again.
func (w *WAV) Resume() (int64, error) {
	if w.closed {
		return 0, fmt.Errorf("resume wav: %w", os.ErrClosed)
	}
	end, err := w.dst.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("resume wav: find end: %w", err)
	}
	data := min(end-w.base-headerSize, maxDataSize) &^ 1
	if data < 0 {
		return 0, fmt.Errorf("resume wav: the file is shorter than its header (%d bytes)", end-w.base)
	}
	if cut := w.base + headerSize + data; cut != end {
		t, ok := w.dst.(interface{ Truncate(int64) error })
		if !ok {
			return 0, errors.New("resume wav: the file ends inside a sample and cannot be cut")
		}
		if err := t.Truncate(cut); err != nil {
			return 0, fmt.Errorf("resume wav: cut to whole samples: %w", err)
		}
		if _, err := w.dst.Seek(cut, io.SeekStart); err != nil {
			return 0, fmt.Errorf("resume wav: %w", err)
		}
	}
	w.buf.Reset(w.dst)
	w.data = data
	w.schedulePatch()
	if err := w.patch(); err != nil {
		return 0, fmt.Errorf("resume wav: %w", err)
	}
	return data / bytesPerSample, nil
}

// Samples returns the number of samples written so far, buffered or not.
func (w *WAV) Samples() int64 { return w.data / bytesPerSample }

// Flush writes buffered audio to the underlying writer and then patches the
// header to match, in that order, so the header never claims bytes that are
// not yet there.
func (w *WAV) Flush() error {
	if w.closed {
		return fmt.Errorf("flush wav: %w", os.ErrClosed)
	}
	if err := w.buf.Flush(); err != nil {
		return fmt.Errorf("flush wav: %w", err)
	}
	if err := w.patch(); err != nil {
		return fmt.Errorf("flush wav: %w", err)
	}
	return nil
}

// patch rewrites the two size fields and returns to the end of the audio.
// An *os.File takes positioned writes: two pwrite calls that leave the file
// offset alone, instead of three seeks and two writes, once a second per
// track.
func (w *WAV) patch() error {
	if err := w.writeAt(riffSizeOffset, uint32(headerSize-8+w.data)); err != nil {
		return fmt.Errorf("patch riff size: %w", err)
	}
	if err := w.writeAt(dataSizeOffset, uint32(w.data)); err != nil {
		return fmt.Errorf("patch data size: %w", err)
	}
	if _, ok := w.dst.(io.WriterAt); ok {
		return nil
	}
	if _, err := w.dst.Seek(w.base+headerSize+w.data, io.SeekStart); err != nil {
		return fmt.Errorf("seek to end of audio: %w", err)
	}
	return nil
}

func (w *WAV) writeAt(off int64, v uint32) error {
	binary.LittleEndian.PutUint32(w.scratch[:], v)
	if wa, ok := w.dst.(io.WriterAt); ok {
		_, err := wa.WriteAt(w.scratch[:], w.base+off)
		return err
	}
	if _, err := w.dst.Seek(w.base+off, io.SeekStart); err != nil {
		return err
	}
	_, err := w.dst.Write(w.scratch[:])
	return err
}

// Sync makes durable what has reached the writer (not what is still in the
// write buffer), if the writer can sync (an *os.File can). Unlike the other
// methods it may be called from any goroutine while the owner writes; after
// Close it does nothing.
func (w *WAV) Sync() error {
	s, ok := w.dst.(interface{ Sync() error })
	if !ok {
		return nil
	}
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	if w.released {
		return nil
	}
	if err := s.Sync(); err != nil {
		return fmt.Errorf("sync wav: %w", err)
	}
	return nil
}

// syncWith hands the WAV to s until Close.
func (w *WAV) syncWith(s *Syncer) {
	if s != nil {
		w.syncer = s
		s.addWAV(w)
	}
}

// Close flushes, patches the header, syncs the writer to stable storage if it
// can (an *os.File can) and closes it if it is an io.Closer. Only the first
// call does the work; later calls return its result.
func (w *WAV) Close() error {
	if w.closed {
		return w.closeErr
	}
	errFlush := w.Flush()
	w.closed = true
	if w.syncer != nil {
		w.syncer.removeWAV(w)
	}
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	w.released = true
	var errSync, errClose error
	if s, ok := w.dst.(interface{ Sync() error }); ok {
		if err := s.Sync(); err != nil {
			errSync = fmt.Errorf("close wav: sync: %w", err)
		}
	}
	if c, ok := w.dst.(io.Closer); ok {
		if err := c.Close(); err != nil {
			errClose = fmt.Errorf("close wav: %w", err)
		}
	}
	w.closeErr = errors.Join(errFlush, errSync, errClose)
	return w.closeErr
}
