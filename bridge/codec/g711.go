package codec

import (
	"encoding/binary"
	"math/bits"
)

// G.711 code byte layout (both laws):
//
//	 7   6   5   4   3   2   1   0
//	+---+-----------+---------------+
//	| S |  segment  |   mantissa    |
//	+---+-----------+---------------+
//
// μ-law transmits the one's complement of the byte (so 0xFF is +0 and the
// line idles at all ones); A-law transmits the byte XOR 0x55 (every even
// bit inverted). μ-law's sign bit set means negative before the complement,
// i.e. positive on the wire; A-law's sign bit set means positive after the
// XOR. Decoding is a 256-entry table lookup; the tables are computed once at
// init from the segment/mantissa form so the hot loop is a load and a store.

var (
	mulawTable [256]int16
	alawTable  [256]int16
)

func init() {
	for i := range 256 {
		mulawTable[i] = mulawDecode(byte(i))
		alawTable[i] = alawDecode(byte(i))
	}
}

// mulawDecode expands one μ-law code. The magnitude of a code with segment e
// and mantissa m is ((2m+33)<<e - 33) in 14-bit units, i.e. the segment's
// biased base (33<<e) plus the mantissa step, minus the bias of 33 that the
// encoder added so that segment boundaries fall on powers of two. Scaling by
// 4 gives 16-bit PCM (range ±32124), byte-exact with ITU-T G.711's reference
// tables as reproduced by Sun's g711.c, sox, ffmpeg and CPython's audioop.
func mulawDecode(code byte) int16 {
	u := ^code
	e := (u >> 4) & 0x07
	m := int32(u & 0x0F)
	mag := ((2*m+33)<<e - 33) << 2
	if u&0x80 != 0 {
		return int16(-mag)
	}
	return int16(mag)
}

// alawDecode expands one A-law code. Segment 0 is linear with the same step
// as segment 1 (that is what A-law trades for its missing zero); from segment
// 1 on, the implicit leading one (0x108 = 0x100 plus half a step) doubles
// per segment. Range ±32256; there is no zero code, the smallest values are ±8.
func alawDecode(code byte) int16 {
	a := code ^ 0x55
	seg := (a >> 4) & 0x07
	mag := int32(a&0x0F)<<4 | 0x08
	if seg > 0 {
		mag = (mag | 0x100) << (seg - 1)
	}
	if a&0x80 == 0 {
		return int16(-mag)
	}
	return int16(mag)
}

// MulawSample returns the 16-bit linear value of one μ-law code byte.
// 0xFF and 0x7F both decode to 0 (μ-law has a positive and a negative zero).
func MulawSample(b byte) int16 { return mulawTable[b] }

// AlawSample returns the 16-bit linear value of one A-law code byte.
func AlawSample(b byte) int16 { return alawTable[b] }

// DecodeMulaw decodes μ-law bytes from src into PCM16LE in dst and returns
// the number of bytes written: 2*min(len(src), len(dst)/2).
func DecodeMulaw(dst, src []byte) int {
	return decodeTable(dst, src, &mulawTable)
}

// DecodeAlaw decodes A-law bytes from src into PCM16LE in dst and returns the
// number of bytes written: 2*min(len(src), len(dst)/2).
func DecodeAlaw(dst, src []byte) int {
	return decodeTable(dst, src, &alawTable)
}

func decodeTable(dst, src []byte, table *[256]int16) int {
	n := min(len(src), len(dst)/2)
	src = src[:n]
	dst = dst[:2*n]
	for i, b := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], uint16(table[b]))
	}
	return 2 * n
}

// EncodeMulaw encodes PCM16LE from pcm into μ-law bytes in dst and returns
// the number of bytes written: min(len(pcm)/2, len(dst)). A trailing odd byte
// of pcm is ignored.
func EncodeMulaw(dst, pcm []byte) int {
	n := min(len(pcm)/2, len(dst))
	dst = dst[:n]
	for i := range dst {
		dst[i] = mulawEncode(int16(binary.LittleEndian.Uint16(pcm[2*i:])))
	}
	return n
}

// EncodeAlaw encodes PCM16LE from pcm into A-law bytes in dst and returns the
// number of bytes written: min(len(pcm)/2, len(dst)). A trailing odd byte of
// pcm is ignored.
func EncodeAlaw(dst, pcm []byte) int {
	n := min(len(pcm)/2, len(dst))
	dst = dst[:n]
	for i := range dst {
		dst[i] = alawEncode(int16(binary.LittleEndian.Uint16(pcm[2*i:])))
	}
	return n
}

// mulawEncode quantises a 16-bit sample to μ-law the way CPython's
// audioop.lin2ulaw and ffmpeg do: drop to 14 bits with an arithmetic shift
// (so small negatives such as -1 round down to -1 and encode as 0x7E, not as
// negative zero), clip, add the bias of 33 and read the segment off the
// position of the highest set bit. 0 encodes to 0xFF; the negative-zero code
// 0x7F is never produced.
func mulawEncode(s int16) byte {
	v := int32(s) >> 2
	mask := byte(0xFF)
	if v < 0 {
		v = -v
		mask = 0x7F
	}
	// 8158+33 = 8191 is the largest biased magnitude that fits segment 7;
	// anything louder saturates to the top code.
	v = min(v, 8158) + 33
	seg := max(bits.Len32(uint32(v))-6, 0)
	return (byte(seg<<4) | byte(v>>(seg+1))&0x0F) ^ mask
}

// alawEncode quantises a 16-bit sample to A-law the way CPython's
// audioop.lin2alaw does: drop to 13 bits with an arithmetic shift, fold
// negatives as -v-1 (A-law has no zero, so -1 and 0 sit either side of it),
// and read the segment off the highest set bit. 0 encodes to 0xD5.
func alawEncode(s int16) byte {
	v := int32(s) >> 3
	mask := byte(0xD5)
	if v < 0 {
		v = -v - 1
		mask = 0x55
	}
	if v > 0xFFF {
		return 0x7F ^ mask
	}
	seg := max(bits.Len32(uint32(v))-5, 0)
	shift := max(seg, 1)
	return (byte(seg<<4) | byte(v>>shift)&0x0F) ^ mask
}
