package codec

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// frame is one 20 ms frame at 8 kHz: 160 G.711 bytes or 160 L16 samples.
const frameSamples = 160

func TestNoAllocations(t *testing.T) {
	g711 := make([]byte, frameSamples)
	for i := range g711 {
		g711[i] = byte(i)
	}
	pcm := sine(frameSamples, 1000, 4000)
	dst := make([]byte, 2*frameSamples)
	enc := make([]byte, frameSamples)

	tests := []struct {
		name string
		fn   func()
	}{
		{"DecodeMulaw", func() { DecodeMulaw(dst, g711) }},
		{"DecodeAlaw", func() { DecodeAlaw(dst, g711) }},
		{"DecodeL16BE", func() { DecodeL16BE(dst, pcm) }},
		{"DecodeL16LE", func() { DecodeL16LE(dst, pcm) }},
		{"EncodeMulaw", func() { EncodeMulaw(enc, pcm) }},
		{"EncodeAlaw", func() { EncodeAlaw(enc, pcm) }},
		{"MulawSample", func() { MulawSample(0x80) }},
		{"AlawSample", func() { AlawSample(0xD5) }},
		{"LooksByteSwapped", func() { LooksByteSwapped(pcm) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Zero(t, testing.AllocsPerRun(100, tt.fn))
		})
	}
}

func benchDecode(b *testing.B, srcLen int, fn func(dst, src []byte) int) {
	src := make([]byte, srcLen)
	for i := range src {
		src[i] = byte(i * 31)
	}
	dst := make([]byte, 2*frameSamples)
	b.ReportAllocs()
	b.SetBytes(int64(srcLen))
	for b.Loop() {
		fn(dst, src)
	}
}

func BenchmarkDecodeMulaw(b *testing.B) { benchDecode(b, frameSamples, DecodeMulaw) }
func BenchmarkDecodeAlaw(b *testing.B)  { benchDecode(b, frameSamples, DecodeAlaw) }

// L16 frames are 320 bytes for the same 160 samples.
func BenchmarkDecodeL16BE(b *testing.B) { benchDecode(b, 2*frameSamples, DecodeL16BE) }
func BenchmarkDecodeL16LE(b *testing.B) { benchDecode(b, 2*frameSamples, DecodeL16LE) }

func BenchmarkEncodeMulaw(b *testing.B) {
	pcm := sine(frameSamples, 1000, 4000)
	dst := make([]byte, frameSamples)
	b.ReportAllocs()
	b.SetBytes(int64(len(pcm)))
	for b.Loop() {
		EncodeMulaw(dst, pcm)
	}
}

func BenchmarkLooksByteSwapped(b *testing.B) {
	pcm := sine(frameSamples, 1000, 4000)
	b.ReportAllocs()
	b.SetBytes(int64(len(pcm)))
	for b.Loop() {
		LooksByteSwapped(pcm)
	}
}
