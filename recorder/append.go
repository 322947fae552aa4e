package recorder

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// AppendTrack reopens an existing recording of the call to continue it (a
// call whose provider reconnects after the call had ended or after the
// bridge restarted). The header is repaired first, so the audio already on
// disk is kept as it is and new audio follows it. The sample rate must
// match.
func (c *Call) AppendTrack(track string, sampleRate int) (*WAV, error) {
	if !isSafeName(track) {
		return nil, fmt.Errorf("append track: unsafe track name %q", track)
	}
	path := filepath.Join(c.dir, track+wavExt)
	if _, err := RepairWAV(path); err != nil {
		return nil, fmt.Errorf("append track %s: %w", track, err)
	}
	rate, samples, err := ReadWAVInfo(path)
	if err != nil {
		return nil, fmt.Errorf("append track %s: %w", track, err)
	}
	if rate != sampleRate {
		return nil, fmt.Errorf("append track %s: recording is %d Hz, stream is %d Hz", track, rate, sampleRate)
	}
	f, err := os.OpenFile(path, os.O_RDWR, filePerm)
	if err != nil {
		return nil, fmt.Errorf("append track %s: %w", track, err)
	}
	if _, err := f.Seek(headerSize+samples*bytesPerSample, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("append track %s: %w", track, err)
	}
	w := newWAV(f, 0, sampleRate, samples*bytesPerSample)
	w.syncWith(c.syncer)
	return w, nil
}
