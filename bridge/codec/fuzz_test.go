package codec

import (
	"encoding/binary"
	"testing"
)

// fuzzDstLen turns a fuzzed number into a destination size that is sometimes
// too small, sometimes exact and sometimes larger than needed.
func fuzzDstLen(srcLen int, pick uint16) int {
	switch pick % 4 {
	case 0:
		return 2 * srcLen
	case 1:
		return 2*srcLen + int(pick%7)
	default:
		return int(pick) % (2*srcLen + 1)
	}
}

func fuzzG711(f *testing.F, decode func(dst, src []byte) int, sample func(byte) int16, encode func(dst, pcm []byte) int) {
	f.Add([]byte{}, uint16(0))
	f.Add([]byte{0xFF, 0x7F, 0x00, 0x80, 0xD5, 0x55}, uint16(4))
	f.Add(make([]byte, 160), uint16(7))
	f.Fuzz(func(t *testing.T, src []byte, pick uint16) {
		dst := make([]byte, fuzzDstLen(len(src), pick))
		n := decode(dst, src)
		if want := 2 * min(len(src), len(dst)/2); n != want {
			t.Fatalf("decoded %d bytes, want %d (src %d, dst %d)", n, want, len(src), len(dst))
		}
		for i := 0; i < n/2; i++ {
			if got := int16(binary.LittleEndian.Uint16(dst[2*i:])); got != sample(src[i]) {
				t.Fatalf("sample %d: got %d, want %d", i, got, sample(src[i]))
			}
		}
		// Re-encoding the decode and decoding again is stable: every decoded
		// value is exactly representable, so the second decode matches.
		enc := make([]byte, n/2)
		if m := encode(enc, dst[:n]); m != n/2 {
			t.Fatalf("encoded %d bytes, want %d", m, n/2)
		}
		again := make([]byte, n)
		decode(again, enc)
		for i := 0; i < n; i++ {
			if again[i] != dst[i] {
				t.Fatalf("decode(encode(decode(x))) differs at byte %d", i)
			}
		}
	})
}

func FuzzDecodeMulaw(f *testing.F) { fuzzG711(f, DecodeMulaw, MulawSample, EncodeMulaw) }
func FuzzDecodeAlaw(f *testing.F)  { fuzzG711(f, DecodeAlaw, AlawSample, EncodeAlaw) }

func FuzzDecodeL16(f *testing.F) {
	f.Add([]byte{}, uint16(0))
	f.Add([]byte{0x12, 0x34, 0x56}, uint16(3))
	f.Add(make([]byte, 320), uint16(5))
	f.Fuzz(func(t *testing.T, src []byte, pick uint16) {
		dstLen := int(pick) % (len(src) + 8)
		want := min(len(src), dstLen) &^ 1

		le := make([]byte, dstLen)
		if n := DecodeL16LE(le, src); n != want {
			t.Fatalf("LE wrote %d bytes, want %d", n, want)
		}
		be := make([]byte, dstLen)
		if n := DecodeL16BE(be, src); n != want {
			t.Fatalf("BE wrote %d bytes, want %d", n, want)
		}
		for i := 0; i < want; i += 2 {
			if le[i] != src[i] || le[i+1] != src[i+1] {
				t.Fatalf("LE is not a copy at byte %d", i)
			}
			if be[i] != src[i+1] || be[i+1] != src[i] {
				t.Fatalf("BE is not a byte swap at byte %d", i)
			}
		}
		twice := make([]byte, want)
		if n := DecodeL16BE(twice, be[:want]); n != want {
			t.Fatalf("second BE decode wrote %d bytes, want %d", n, want)
		}
		for i := 0; i < want; i++ {
			if twice[i] != src[i] {
				t.Fatalf("BE decode twice is not the identity at byte %d", i)
			}
		}
		// Must not panic on any input; the verdict itself is tested elsewhere.
		LooksByteSwapped(src)
	})
}
