package codec

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// refMulaw is protocols.md §7.1 transcribed literally, kept apart from the
// package's own formulation so that a mistake in one shows up against the other.
func refMulaw(b byte) int16 {
	u := int(^b & 0xFF)
	t := ((u & 0x0F) << 3) + 0x84
	t <<= (u & 0x70) >> 4
	if u&0x80 != 0 {
		return int16(0x84 - t)
	}
	return int16(t - 0x84)
}

// refAlaw is protocols.md §7.2 transcribed literally.
func refAlaw(b byte) int16 {
	a := int(b ^ 0x55)
	t := (a & 0x0F) << 4
	seg := (a & 0x70) >> 4
	if seg == 0 {
		t += 8
	} else {
		t += 0x108
	}
	if seg > 1 {
		t <<= seg - 1
	}
	if a&0x80 != 0 {
		return int16(t)
	}
	return int16(-t)
}

// search, refLin2Ulaw and refLin2Alaw transcribe Sun's g711.c
// (st_14linear2ulaw / st_linear2alaw) as CPython's audioop applies them to
// 16-bit input: a segment-end table search instead of bit arithmetic.
func search(v int, table []int) int {
	for i, end := range table {
		if v <= end {
			return i
		}
	}
	return len(table)
}

func refLin2Ulaw(s int16) byte {
	v := int(s) >> 2
	mask := 0xFF
	if v < 0 {
		v = -v
		mask = 0x7F
	}
	if v > 8159 {
		v = 8159
	}
	v += 0x84 >> 2
	seg := search(v, []int{0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF})
	if seg >= 8 {
		return byte(0x7F ^ mask)
	}
	return byte((seg<<4 | (v>>(seg+1))&0x0F) ^ mask)
}

func refLin2Alaw(s int16) byte {
	v := int(s) >> 3
	mask := 0xD5
	if v < 0 {
		mask = 0x55
		v = -v - 1
	}
	seg := search(v, []int{0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF})
	if seg >= 8 {
		return byte(0x7F ^ mask)
	}
	aval := seg << 4
	if seg < 2 {
		aval |= (v >> 1) & 0x0F
	} else {
		aval |= (v >> seg) & 0x0F
	}
	return byte(aval ^ mask)
}

func TestSampleAllCodesMatchReference(t *testing.T) {
	for code := range 256 {
		b := byte(code)
		require.Equal(t, refMulaw(b), MulawSample(b), "mu-law code %#02x", b)
		require.Equal(t, refAlaw(b), AlawSample(b), "A-law code %#02x", b)
	}
}

func TestSampleSpotValues(t *testing.T) {
	// The reference points listed in protocols.md §7.1 and §7.2.
	tests := []struct {
		name string
		code byte
		fn   func(byte) int16
		want int16
	}{
		{"mulaw 0xFF positive zero", 0xFF, MulawSample, 0},
		{"mulaw 0x7F negative zero", 0x7F, MulawSample, 0},
		{"mulaw 0xFE smallest positive", 0xFE, MulawSample, 8},
		{"mulaw 0x7E smallest negative", 0x7E, MulawSample, -8},
		{"mulaw 0x80 positive peak", 0x80, MulawSample, 32124},
		{"mulaw 0x00 negative peak", 0x00, MulawSample, -32124},
		{"alaw 0xD5 smallest positive", 0xD5, AlawSample, 8},
		{"alaw 0x55 smallest negative", 0x55, AlawSample, -8},
		{"alaw 0xAA positive peak", 0xAA, AlawSample, 32256},
		{"alaw 0x2A negative peak", 0x2A, AlawSample, -32256},
		{"alaw 0x80", 0x80, AlawSample, 5504},
		{"alaw 0x00", 0x00, AlawSample, -5504},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.fn(tt.code))
		})
	}
}

// TestGoldenSweep checks every code against testdata/g711_decode.golden,
// which was produced by CPython's audioop, a third implementation that shares
// no code with this package or with the references above.
func TestGoldenSweep(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "g711_decode.golden"))
	require.NoError(t, err)
	defer f.Close()

	seen := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		require.Len(t, fields, 3, "line %q", line)
		code, err := strconv.ParseUint(fields[0], 16, 8)
		require.NoError(t, err)
		mu, err := strconv.ParseInt(fields[1], 10, 16)
		require.NoError(t, err)
		a, err := strconv.ParseInt(fields[2], 10, 16)
		require.NoError(t, err)
		require.Equal(t, seen, int(code), "golden file must list codes in order")

		src := []byte{byte(code)}
		dst := make([]byte, 2)
		require.Equal(t, 2, DecodeMulaw(dst, src))
		require.Equal(t, int16(mu), int16(binary.LittleEndian.Uint16(dst)), "mu-law %#02x", code)
		require.Equal(t, 2, DecodeAlaw(dst, src))
		require.Equal(t, int16(a), int16(binary.LittleEndian.Uint16(dst)), "A-law %#02x", code)
		seen++
	}
	require.NoError(t, sc.Err())
	require.Equal(t, 256, seen)
}

// fixturePayload is one media frame copied from the shared provider fixtures
// together with its expected decode (expected.json), so the package tests do
// not depend on anything outside the package.
type fixturePayload struct {
	Source  string  `json:"source"`
	Line    int     `json:"line"`
	Codec   string  `json:"codec"`
	Payload string  `json:"payload"`
	Samples int     `json:"samples"`
	First8  []int16 `json:"first8"`
	SHA256  string  `json:"sha256"`
}

func loadFixturePayloads(t testing.TB) []fixturePayload {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "fixture_payloads.json"))
	require.NoError(t, err)
	var fx []fixturePayload
	require.NoError(t, json.Unmarshal(raw, &fx))
	require.NotEmpty(t, fx)
	return fx
}

func TestFixturePayloadHashes(t *testing.T) {
	for _, fx := range loadFixturePayloads(t) {
		t.Run(fmt.Sprintf("%s:%d", fx.Source, fx.Line), func(t *testing.T) {
			src, err := base64.StdEncoding.DecodeString(fx.Payload)
			require.NoError(t, err)
			var pcm []byte
			switch fx.Codec {
			case "mulaw":
				pcm = make([]byte, 2*len(src))
				require.Equal(t, len(pcm), DecodeMulaw(pcm, src))
			case "alaw":
				pcm = make([]byte, 2*len(src))
				require.Equal(t, len(pcm), DecodeAlaw(pcm, src))
			case "l16le":
				pcm = make([]byte, len(src))
				require.Equal(t, len(pcm), DecodeL16LE(pcm, src))
			default:
				t.Fatalf("unknown codec %q", fx.Codec)
			}
			require.Equal(t, fx.Samples, len(pcm)/2)
			for i, want := range fx.First8 {
				require.Equal(t, want, int16(binary.LittleEndian.Uint16(pcm[2*i:])), "sample %d", i)
			}
			sum := sha256.Sum256(pcm)
			require.Equal(t, fx.SHA256, hex.EncodeToString(sum[:]))
		})
	}
}

func TestG711DecodeLength(t *testing.T) {
	tests := []struct {
		name    string
		dstLen  int
		srcLen  int
		written int
	}{
		{"room for all", 320, 160, 320},
		{"larger dst", 400, 160, 320},
		{"short dst", 100, 160, 100},
		{"odd dst rounds down", 101, 160, 100},
		{"one byte dst", 1, 160, 0},
		{"empty src", 320, 0, 0},
		{"nil dst", 0, 160, 0},
	}
	decoders := []struct {
		name   string
		decode func(dst, src []byte) int
		sample func(byte) int16
	}{
		{"mulaw", DecodeMulaw, MulawSample},
		{"alaw", DecodeAlaw, AlawSample},
	}
	for _, d := range decoders {
		for _, tt := range tests {
			t.Run(d.name+"/"+tt.name, func(t *testing.T) {
				src := make([]byte, tt.srcLen)
				for i := range src {
					src[i] = byte(i * 7)
				}
				// Fill dst with a marker to prove nothing past n is touched.
				dst := make([]byte, tt.dstLen)
				for i := range dst {
					dst[i] = 0xA5
				}
				n := d.decode(dst, src)
				require.Equal(t, tt.written, n)
				for i := 0; i < n/2; i++ {
					require.Equal(t, d.sample(src[i]), int16(binary.LittleEndian.Uint16(dst[2*i:])))
				}
				for i := n; i < len(dst); i++ {
					require.Equal(t, byte(0xA5), dst[i], "byte %d past the output was written", i)
				}
			})
		}
	}
}

func TestMulawRoundTrip(t *testing.T) {
	for code := range 256 {
		b := byte(code)
		pcm := make([]byte, 2)
		binary.LittleEndian.PutUint16(pcm, uint16(MulawSample(b)))
		out := make([]byte, 1)
		require.Equal(t, 1, EncodeMulaw(out, pcm))
		want := b
		if b == 0x7F {
			// Negative zero decodes to 0, and 0 encodes to positive zero.
			want = 0xFF
		}
		require.Equal(t, want, out[0], "code %#02x", b)
	}
}

func TestAlawRoundTrip(t *testing.T) {
	// A-law has no zero code, hence no ambiguous pair: every code survives.
	for code := range 256 {
		b := byte(code)
		pcm := make([]byte, 2)
		binary.LittleEndian.PutUint16(pcm, uint16(AlawSample(b)))
		out := make([]byte, 1)
		require.Equal(t, 1, EncodeAlaw(out, pcm))
		require.Equal(t, b, out[0], "code %#02x", b)
	}
}

// allSamplesPCM returns every 16-bit value from -32768 to 32767 as PCM16LE.
func allSamplesPCM() []byte {
	pcm := make([]byte, 2*65536)
	for i := range 65536 {
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(int16(i-32768)))
	}
	return pcm
}

func TestEncodeAllInputsMatchReference(t *testing.T) {
	pcm := allSamplesPCM()
	tests := []struct {
		name   string
		encode func(dst, pcm []byte) int
		ref    func(int16) byte
		// SHA-256 of CPython audioop.lin2ulaw / lin2alaw over the same input.
		audioopSHA256 string
	}{
		{"mulaw", EncodeMulaw, refLin2Ulaw, "81d633c9e6972a18c74a58720b96cb8ca0bdd096d4060b646dd708c3b846019a"},
		{"alaw", EncodeAlaw, refLin2Alaw, "38488f6fd710f4686360edc4d38639f96c491595ef93f8eb8d62d5e07ca6ce7b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := make([]byte, 65536)
			require.Equal(t, 65536, tt.encode(out, pcm))
			for i, got := range out {
				s := int16(i - 32768)
				require.Equal(t, tt.ref(s), got, "sample %d", s)
			}
			sum := sha256.Sum256(out)
			require.Equal(t, tt.audioopSHA256, hex.EncodeToString(sum[:]))
		})
	}
}

func TestEncodeSpotValues(t *testing.T) {
	tests := []struct {
		name   string
		encode func(dst, pcm []byte) int
		sample int16
		want   byte
	}{
		{"mulaw zero is positive zero", EncodeMulaw, 0, 0xFF},
		{"mulaw -1 rounds to -8 not negative zero", EncodeMulaw, -1, 0x7E},
		{"mulaw max clips to peak", EncodeMulaw, 32767, 0x80},
		{"mulaw min clips to peak", EncodeMulaw, -32768, 0x00},
		{"alaw zero", EncodeAlaw, 0, 0xD5},
		{"alaw -1", EncodeAlaw, -1, 0x55},
		{"alaw max clips to peak", EncodeAlaw, 32767, 0xAA},
		{"alaw min clips to peak", EncodeAlaw, -32768, 0x2A},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pcm := binary.LittleEndian.AppendUint16(nil, uint16(tt.sample))
			out := make([]byte, 1)
			require.Equal(t, 1, tt.encode(out, pcm))
			require.Equal(t, tt.want, out[0])
		})
	}
}

func TestEncodeLength(t *testing.T) {
	tests := []struct {
		name    string
		dstLen  int
		pcmLen  int
		written int
	}{
		{"room for all", 160, 320, 160},
		{"odd pcm drops the last byte", 160, 321, 160},
		{"short dst", 100, 320, 100},
		{"single byte pcm", 10, 1, 0},
		{"empty", 0, 0, 0},
	}
	for _, enc := range []struct {
		name string
		fn   func(dst, pcm []byte) int
	}{{"mulaw", EncodeMulaw}, {"alaw", EncodeAlaw}} {
		for _, tt := range tests {
			t.Run(enc.name+"/"+tt.name, func(t *testing.T) {
				require.Equal(t, tt.written, enc.fn(make([]byte, tt.dstLen), make([]byte, tt.pcmLen)))
			})
		}
	}
}
