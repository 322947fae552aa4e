package codec

// L16 is uncompressed 16-bit PCM. RFC 2586 puts it in network byte order
// (big-endian), but CPaaS "x-l16" streams are often little-endian and some
// providers do not document theirs at all (see protocols.md §7.3), so the
// bridge decodes both and LooksByteSwapped helps when the declared order is
// in doubt.

// DecodeL16BE converts big-endian 16-bit PCM from src into PCM16LE in dst and
// returns the number of bytes written: min(len(src), len(dst)) rounded down
// to even. A trailing odd byte is ignored. dst and src may be the same slice:
// each pair is read before it is written.
func DecodeL16BE(dst, src []byte) int {
	n := min(len(src), len(dst)) &^ 1
	src = src[:n]
	dst = dst[:n]
	for i := 0; i+1 < len(src); i += 2 {
		dst[i], dst[i+1] = src[i+1], src[i]
	}
	return n
}

// DecodeL16LE copies little-endian 16-bit PCM from src into dst and returns
// the number of bytes written: min(len(src), len(dst)) rounded down to even.
// A trailing odd byte is ignored.
func DecodeL16LE(dst, src []byte) int {
	n := min(len(src), len(dst)) &^ 1
	return copy(dst[:n], src[:n])
}

// Byte-swap detection.
//
// Speech is low-pass: consecutive samples are close, so the mean absolute
// first difference (MAFD) is a small fraction of the level (telephone speech
// has most of its energy below 1 kHz). Reading audio with its bytes swapped
// moves the fast-changing low byte into the high byte, which looks like
// full-scale white noise: the MAFD of two independent uniform 16-bit values is
// 65536/3 ≈ 21845, whatever the real level.
//
// The test assumes the low byte is noise-like, as it is in anything recorded
// through a microphone and a codec. Pure synthetic tones break that: a tone at
// 1 kHz or above sampled at 8 kHz repeats a handful of sample values, and at
// some levels above about a third of full scale its swapped reading happens to
// be smooth, so such tones can be judged wrongly either way. Callers should
// use the verdict only where the byte order is in doubt and take it over
// several frames of real audio.
const (
	// swapRatio is how much smoother the byte-swapped reading must be before
	// the audio counts as byte-swapped. Speech in the right order, read
	// swapped, scores close to the white-noise 21845, so a false "swapped"
	// would need speech moving by more than 43690 per sample on average,
	// which it never does; swapped speech scores 4× to several hundred×
	// (quieter is clearer). 2 rather than 4 because the 1 kHz test tones of
	// the provider fixtures (peaks 4000/8000/12000) score 7.7×, 2.04× and
	// 2.3×, and rather than 1.5 because each step down lets more loud
	// synthetic tones through as false positives.
	swapRatio = 2

	// swapMinSamples is the least audio worth judging. First differences over
	// a few samples are dominated by chance; 64 samples is 8 ms at 8 kHz,
	// shorter than any provider's frame, so one frame is always enough.
	swapMinSamples = 64

	// swapMinMAFD is the smallest as-read MAFD that can be byte-swap noise. A
	// swapped signal carries its real low byte in the high byte, so any real
	// change moves it in steps of 256. Below one such step per sample on
	// average the audio is silence or dither and either reading is as good.
	swapMinMAFD = 256
)

// LooksByteSwapped reports whether PCM16LE audio looks like L16 whose bytes
// were swapped, i.e. big-endian audio decoded as little-endian (or the other
// way round). It compares the mean absolute first difference of the audio as
// given with that of the byte-swapped reading and answers true only when the
// swapped reading is at least 2 times smoother and the audio as given moves by
// at least 256 per sample on average. Silence, dither, white noise, audio
// whose low bytes are all zero (8-bit sources widened to 16, which read
// swapped as a tiny, smooth, positive-only signal) and fewer than 64 samples
// all give false: the declared byte order stands unless the evidence is
// clear. A trailing odd byte is ignored.
func LooksByteSwapped(pcm []byte) bool {
	n := len(pcm) / 2
	if n < swapMinSamples {
		return false
	}
	var asIs, swapped uint64
	lowBytes := pcm[0]
	prevA := int32(int16(uint16(pcm[0]) | uint16(pcm[1])<<8))
	prevS := int32(int16(uint16(pcm[1]) | uint16(pcm[0])<<8))
	for i := 2; i+1 < 2*n; i += 2 {
		lowBytes |= pcm[i]
		a := int32(int16(uint16(pcm[i]) | uint16(pcm[i+1])<<8))
		s := int32(int16(uint16(pcm[i+1]) | uint16(pcm[i])<<8))
		asIs += uint64(abs32(a - prevA))
		swapped += uint64(abs32(s - prevS))
		prevA, prevS = a, s
	}
	if lowBytes == 0 {
		return false
	}
	// Compare sums rather than means: both cover the same n-1 differences.
	diffs := uint64(n - 1)
	if asIs < swapMinMAFD*diffs {
		return false
	}
	return swapped*swapRatio < asIs
}

func abs32(v int32) int32 {
	if v < 0 {
		return -v
	}
	return v
}
