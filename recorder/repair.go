package recorder

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// errNotRecording reports a file that does not start with the canonical
// header this package writes; repair leaves such files alone rather than
// guess.
var errNotRecording = errors.New("not a PCM16 mono WAV written by the recorder")

// RepairWAV makes a WAV left behind by a crash (kill -9, power loss) valid
// again and returns the number of samples it holds. It sets the RIFF and data
// sizes from the file length, which is what a crash leaves wrong: the header
// was last patched up to a second before the process died, or never (sizes of
// 0 with audio after them). A trailing odd byte, half a sample, is cut off.
//
// A file shorter than a header, which is what a crash between create and the
// first write can leave, gets a fresh header for no audio; the sample rate is
// kept if the fragment still holds it, otherwise it is 8000 Hz. A file that
// has a full header which is not the canonical PCM16 mono header is not
// touched and an error is returned.
func RepairWAV(path string) (samples int64, err error) {
	samples, _, err = repairWAV(path)
	return samples, err
}

// repairWAV is RepairWAV that also reports whether the file was changed.
func repairWAV(path string) (samples int64, changed bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, false, fmt.Errorf("repair wav: %w", err)
	}
	samples, changed, err = repairFile(f)
	if changed {
		if serr := f.Sync(); serr != nil && err == nil {
			err = serr
		}
	}
	if cerr := f.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		return 0, changed, fmt.Errorf("repair wav %s: %w", path, err)
	}
	return samples, changed, nil
}

func repairFile(f *os.File) (samples int64, changed bool, err error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	size := fi.Size()

	var hdr [headerSize]byte
	n, err := f.ReadAt(hdr[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, false, err
	}
	if int64(n) < headerSize || size < headerSize {
		rate := defaultRepairRate
		if r, ok := fragmentRate(hdr[:n]); ok {
			rate = r
		}
		fresh := header(rate, 0)
		if err := f.Truncate(0); err != nil {
			return 0, true, err
		}
		if _, err := f.WriteAt(fresh[:], 0); err != nil {
			return 0, true, err
		}
		return 0, true, nil
	}

	rate, _, ok := parseCanonical(hdr[:])
	if !ok {
		return 0, false, errNotRecording
	}
	data := size - headerSize
	if data > maxDataSize {
		// Audio past what a RIFF header can describe is unreachable for any
		// player; cut it so the sizes are exact again.
		data = maxDataSize
	}
	data &^= 1
	if headerSize+data != size {
		if err := f.Truncate(headerSize + data); err != nil {
			return 0, true, err
		}
		changed = true
	}
	want := header(rate, data)
	if !bytes.Equal(want[:], hdr[:]) {
		if _, err := f.WriteAt(want[:], 0); err != nil {
			return 0, true, err
		}
		changed = true
	}
	return data / bytesPerSample, changed, nil
}

// parseCanonical checks that h is the header NewWAV writes, sizes aside, and
// returns its rate and data size.
func parseCanonical(h []byte) (rate int, dataSize int64, ok bool) {
	rate, ok = fragmentRate(h)
	if !ok || len(h) < headerSize {
		return 0, 0, false
	}
	le := binary.LittleEndian
	ok = le.Uint32(h[16:]) == 16 &&
		le.Uint16(h[20:]) == 1 &&
		le.Uint16(h[22:]) == 1 &&
		le.Uint32(h[28:]) == uint32(rate)*bytesPerSample &&
		le.Uint16(h[32:]) == bytesPerSample &&
		le.Uint16(h[34:]) == 16 &&
		string(h[36:40]) == "data"
	if !ok {
		return 0, 0, false
	}
	return rate, int64(le.Uint32(h[dataSizeOffset:])), true
}

// fragmentRate reads the sample rate from the start of a truncated header if
// enough of it survived to trust.
func fragmentRate(h []byte) (int, bool) {
	if len(h) < rateOffset+4 ||
		string(h[0:4]) != "RIFF" || string(h[8:12]) != "WAVE" || string(h[12:16]) != "fmt " {
		return 0, false
	}
	r := int64(binary.LittleEndian.Uint32(h[rateOffset:]))
	if !validRate(r) {
		return 0, false
	}
	return int(r), true
}

// ReadWAVInfo returns the sample rate and the number of samples of a PCM16
// mono WAV. The sample count comes from the header, capped at what the file
// actually holds, so a file that is still being recorded reports the audio up
// to its last header patch.
func ReadWAVInfo(path string) (sampleRate int, samples int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("read wav info: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("read wav info: %w", err)
	}
	var hdr [headerSize]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		return 0, 0, fmt.Errorf("read wav info %s: short header: %w", path, err)
	}
	rate, dataSize, ok := parseCanonical(hdr[:])
	if !ok {
		return 0, 0, fmt.Errorf("read wav info %s: %w", path, errNotRecording)
	}
	dataSize = min(dataSize, fi.Size()-headerSize)
	return rate, dataSize / bytesPerSample, nil
}
