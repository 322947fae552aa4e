package codec

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDecodeL16(t *testing.T) {
	tests := []struct {
		name   string
		src    []byte
		dstLen int
		be     []byte
		le     []byte
	}{
		{"empty", nil, 8, []byte{}, []byte{}},
		{"one sample", []byte{0x12, 0x34}, 2, []byte{0x34, 0x12}, []byte{0x12, 0x34}},
		{"two samples", []byte{0x00, 0x01, 0xFF, 0xFE}, 4, []byte{0x01, 0x00, 0xFE, 0xFF}, []byte{0x00, 0x01, 0xFF, 0xFE}},
		{"trailing odd byte ignored", []byte{0x12, 0x34, 0x56}, 4, []byte{0x34, 0x12}, []byte{0x12, 0x34}},
		{"single byte", []byte{0x12}, 4, []byte{}, []byte{}},
		{"short dst", []byte{1, 2, 3, 4, 5, 6}, 4, []byte{2, 1, 4, 3}, []byte{1, 2, 3, 4}},
		{"odd dst rounds down", []byte{1, 2, 3, 4}, 3, []byte{2, 1}, []byte{1, 2}},
		{"nil dst", []byte{1, 2}, 0, []byte{}, []byte{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := make([]byte, tt.dstLen)
			n := DecodeL16BE(dst, tt.src)
			require.Equal(t, tt.be, dst[:n])

			dst = make([]byte, tt.dstLen)
			n = DecodeL16LE(dst, tt.src)
			require.Equal(t, tt.le, dst[:n])
		})
	}
}

func TestDecodeL16BEInPlace(t *testing.T) {
	buf := []byte{0x12, 0x34, 0x56, 0x78}
	require.Equal(t, 4, DecodeL16BE(buf, buf))
	require.Equal(t, []byte{0x34, 0x12, 0x78, 0x56}, buf)
}

// sine returns n samples of a sine at freq Hz sampled at 8 kHz, as PCM16LE.
func sine(n int, freq, amp float64) []byte {
	pcm := make([]byte, 2*n)
	for i := range n {
		v := amp * math.Sin(2*math.Pi*freq*float64(i)/8000)
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(int16(math.Round(v))))
	}
	return pcm
}

// speechLike returns bursts of noise low-pass filtered to roughly the band
// where telephone speech carries its energy (two one-pole filters, corner
// around 500 Hz at 8 kHz) with a syllable-like envelope and pauses between
// bursts. Deterministic: the seed is fixed.
func speechLike(n int, peak float64) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	pcm := make([]byte, 2*n)
	var y1, y2 float64
	const burst, pause = 1600, 800 // 200 ms of sound, 100 ms of silence
	for i := range n {
		pos := i % (burst + pause)
		var x float64
		if pos < burst {
			env := math.Sin(math.Pi * float64(pos) / burst)
			x = (rng.Float64()*2 - 1) * env
		}
		y1 += 0.35 * (x - y1)
		y2 += 0.35 * (y1 - y2)
		v := max(min(y2*peak*3, 32767), -32768)
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(int16(v)))
	}
	return pcm
}

// whiteNoise is full-band noise: smooth in neither byte order.
func whiteNoise(n int) []byte {
	rng := rand.New(rand.NewPCG(3, 4))
	pcm := make([]byte, 2*n)
	for i := range pcm {
		pcm[i] = byte(rng.Uint32())
	}
	return pcm
}

func dither(n int) []byte {
	pcm := make([]byte, 2*n)
	for i := range n {
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(int16(i%3-1)))
	}
	return pcm
}

// lowByteZero clears every low byte, as when 8-bit audio is widened to 16.
func lowByteZero(pcm []byte) []byte {
	out := append([]byte(nil), pcm...)
	for i := 0; i < len(out); i += 2 {
		out[i] = 0
	}
	return out
}

func swapBytes(pcm []byte) []byte {
	out := make([]byte, len(pcm))
	DecodeL16BE(out, pcm)
	if len(pcm)%2 == 1 {
		out[len(out)-1] = pcm[len(pcm)-1]
	}
	return out
}

func TestLooksByteSwapped(t *testing.T) {
	tests := []struct {
		name string
		pcm  []byte
		// A signal that is right as given must not be flagged; the same
		// signal byte-swapped must be flagged exactly when swapped is true.
		swapped bool
	}{
		{"1 kHz sine, peak 100 (quiet)", sine(160, 1000, 100), true},
		{"1 kHz sine, peak 4000", sine(160, 1000, 4000), true},
		{"1 kHz sine, peak 8000", sine(160, 1000, 8000), true},
		{"1 kHz sine, peak 12000", sine(160, 1000, 12000), true},
		{"440 Hz sine, 1 s", sine(8000, 440, 8000), true},
		{"speech-like noise bursts, quiet", speechLike(8000, 1000), true},
		{"speech-like noise bursts", speechLike(8000, 6000), true},
		{"speech-like noise bursts, full scale", speechLike(8000, 30000), true},
		{"speech-like noise bursts, one 20 ms frame", speechLike(8000, 6000)[2*400 : 2*560], true},
		{"exactly the minimum length", sine(64, 1000, 4000), true},
		{"odd trailing byte", append(sine(160, 1000, 4000), 0x7F), true},
		{"one sample too short", sine(63, 1000, 4000), false},
		{"silence", make([]byte, 320), false},
		{"dither", dither(160), false},
		{"white noise", whiteNoise(160), false},
		{"8-bit source widened to 16 bits", lowByteZero(sine(160, 1000, 4000)), false},
		{"empty", nil, false},
	}
	// The little-endian provider fixture frames: the same 1 kHz tone at
	// three levels, as a real L16 stream would carry it.
	for _, fx := range loadFixturePayloads(t) {
		if fx.Codec != "l16le" {
			continue
		}
		pcm, err := base64.StdEncoding.DecodeString(fx.Payload)
		require.NoError(t, err)
		tests = append(tests, struct {
			name    string
			pcm     []byte
			swapped bool
		}{fmt.Sprintf("fixture %s:%d", fx.Source, fx.Line), pcm, true})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.False(t, LooksByteSwapped(tt.pcm), "unswapped audio flagged as swapped")
			require.Equal(t, tt.swapped, LooksByteSwapped(swapBytes(tt.pcm)), "byte-swapped audio")
		})
	}
}
