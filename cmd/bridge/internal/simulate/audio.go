package simulate

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"time"

	"github.com/callcaptions/bridge/bridge/codec"
	"github.com/callcaptions/bridge/bridge/provider"
	"github.com/callcaptions/bridge/stt/mock"
)

// simAudio is what a simulated call plays, prepared once and shared by
// every call of a load run: per track, the base64 payload of every frame
// and what the bridge will record and transcribe from it.
type simAudio struct {
	rate         int
	encoding     provider.Encoding
	frameSamples int
	frames       int // frames per track
	tracks       []*simTrack
}

type simTrack struct {
	name     string
	payloads [][]byte // base64 of each frame's wire bytes
	decoded  []byte   // the PCM16LE the bridge writes to the WAV: the wire audio decoded
	// finals are the utterances the mock recognizer will report, in order.
	finals []predictedFinal
}

func (a *simAudio) frameDuration() time.Duration {
	return time.Duration(a.frameSamples) * time.Second / time.Duration(a.rate)
}

func (a *simAudio) duration() time.Duration {
	return time.Duration(a.frames) * a.frameDuration()
}

// predictedFinal is an utterance as the mock recognizer will see it: the
// frame whose audio completes the silence that ends it (sending that frame
// is what makes the final due), its segment number and its end on the call
// clock.
type predictedFinal struct {
	frame   int
	segment int
	endMs   int64
}

// readWAV reads a PCM16 WAV file: one channel per returned slice (at most
// two), PCM16LE, and the sample rate.
func readWAV(path string) (channels [][]byte, rate int, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, 0, fmt.Errorf("%s: not a RIFF/WAVE file", path)
	}
	var nch, bits, format int
	var data []byte
	for p := 12; p+8 <= len(b); {
		id, size := string(b[p:p+4]), int(binary.LittleEndian.Uint32(b[p+4:p+8]))
		body := b[p+8:]
		size = min(size, len(body)) // a header not patched after a crash: take what is there
		body = body[:size]
		switch id {
		case "fmt ":
			if len(body) < 16 {
				return nil, 0, fmt.Errorf("%s: short fmt chunk", path)
			}
			format = int(binary.LittleEndian.Uint16(body[0:2]))
			nch = int(binary.LittleEndian.Uint16(body[2:4]))
			rate = int(binary.LittleEndian.Uint32(body[4:8]))
			bits = int(binary.LittleEndian.Uint16(body[14:16]))
			if format == 0xFFFE && len(body) >= 26 { // WAVE_FORMAT_EXTENSIBLE: the sub-format decides
				format = int(binary.LittleEndian.Uint16(body[24:26]))
			}
		case "data":
			data = body
		}
		p += 8 + size + size&1
	}
	switch {
	case format != 1 || bits != 16:
		return nil, 0, fmt.Errorf("%s: want 16-bit PCM, got format %d with %d bits", path, format, bits)
	case nch < 1 || nch > 2:
		return nil, 0, fmt.Errorf("%s: want mono or stereo, got %d channels", path, nch)
	case data == nil:
		return nil, 0, fmt.Errorf("%s: no data chunk", path)
	}
	channels = make([][]byte, nch)
	for i := 0; i+2*nch <= len(data); i += 2 * nch { // one sample of every channel
		for c := range channels {
			channels[c] = append(channels[c], data[i+2*c:i+2*c+2]...)
		}
	}
	return channels, rate, nil
}

// SpeechLike generates a track of speech-like audio: utterances of 0.8 to
// 3 s (a voiced sound with harmonics and a syllable-rate envelope, loud
// enough for any energy detector) separated by pauses of 0.8 to 1.8 s of
// faint noise, ending in a pause long enough for the last utterance to be
// settled before the call ends. The same seed gives the same audio.
func SpeechLike(rate int, d time.Duration, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	n := int(d.Seconds() * float64(rate))
	pcm := make([]byte, 2*n)
	tail := int(1.2 * float64(rate)) // trailing pause: more than the recognizer's end-of-utterance silence
	pos := int((0.3 + 0.5*rng.Float64()) * float64(rate))
	for i := 0; i < pos && i < n; i++ {
		putSample(pcm, i, noise(rng))
	}
	for pos < n {
		speak := int((0.8 + 2.2*rng.Float64()) * float64(rate))
		pause := int((0.8 + 1.0*rng.Float64()) * float64(rate))
		if pos+speak > n-tail {
			speak = n - tail - pos
		}
		if speak >= rate/2 {
			f0 := 100 + 120*rng.Float64()
			syll := 3 + 2*rng.Float64()
			amp := 3000 + 3000*rng.Float64()
			for i := 0; i < speak; i++ {
				t := float64(i) / float64(rate)
				env := 0.45 + 0.55*math.Abs(math.Sin(math.Pi*syll*t))
				var v float64
				for h := 1; h <= 6; h++ {
					v += math.Sin(2*math.Pi*f0*float64(h)*t) / float64(h)
				}
				putSample(pcm, pos+i, int16(amp*env*v/2)+noise(rng))
			}
		} else {
			speak = 0
		}
		pos += speak
		for i := 0; i < pause && pos < n; i++ {
			putSample(pcm, pos, noise(rng))
			pos++
		}
	}
	return pcm
}

// noise is line noise around -60 dBFS: far below any speech threshold.
func noise(rng *rand.Rand) int16 { return int16(rng.IntN(41) - 20) }

func putSample(pcm []byte, i int, v int16) {
	binary.LittleEndian.PutUint16(pcm[2*i:], uint16(v))
}

// prepareAudio encodes each track's PCM16LE for the wire in frames of
// frameSamples, and predicts what the bridge records and transcribes.
func prepareAudio(names []string, pcm [][]byte, rate int, enc provider.Encoding, bigEndian bool, frameSamples int) (*simAudio, error) {
	a := &simAudio{rate: rate, encoding: enc, frameSamples: frameSamples}
	for _, p := range pcm {
		a.frames = max(a.frames, (len(p)/2+frameSamples-1)/frameSamples)
	}
	wireBytes := 2 * frameSamples
	if enc == provider.PCMU || enc == provider.PCMA {
		wireBytes = frameSamples
	}
	for ti, name := range names {
		t := &simTrack{name: name, payloads: make([][]byte, a.frames)}
		// Padded with silence to whole frames, and decoded in place as the
		// bridge will decode what is sent.
		decoded := make([]byte, 2*frameSamples*a.frames)
		copy(decoded, pcm[ti])
		wire := make([]byte, wireBytes)
		for f := range a.frames {
			frame := decoded[2*frameSamples*f : 2*frameSamples*(f+1)]
			switch enc {
			case provider.PCMU:
				codec.EncodeMulaw(wire, frame)
				codec.DecodeMulaw(frame, wire)
			case provider.PCMA:
				codec.EncodeAlaw(wire, frame)
				codec.DecodeAlaw(frame, wire)
			case provider.L16:
				if bigEndian {
					codec.DecodeL16BE(wire, frame) // swapping is its own inverse
				} else {
					copy(wire, frame)
				}
			default:
				return nil, fmt.Errorf("encoding %q cannot be simulated", enc)
			}
			t.payloads[f] = base64.StdEncoding.AppendEncode(nil, wire)
		}
		t.decoded = decoded
		t.finals = predictFinals(decoded, rate, frameSamples)
		a.tracks = append(a.tracks, t)
	}
	return a, nil
}

// FinalEnds is where, in ms on the track, the mock recognizer ends the
// utterances of pcm before the call ends (predictFinals): what a bridge's
// transcript of SpeechLike audio is checked against.
func FinalEnds(pcm []byte, rate, frameSamples int) []int64 {
	var out []int64
	for _, f := range predictFinals(pcm, rate, frameSamples) {
		out = append(out, f.endMs)
	}
	return out
}

// predictFinals runs the mock recognizer's energy detector (stt/mock, with
// its default settings, which the bridge uses) over what the bridge will
// decode, and returns the finals it will report before the call ends: for
// each, the frame that completes the silence ending the utterance.
// Utterances still open when the audio ends are settled at stop and are
// not predicted.
func predictFinals(pcm []byte, rate, frameSamples int) []predictedFinal {
	window := int64(rate / 50)
	limit := mock.DefaultThreshold * mock.DefaultThreshold * float64(window)
	toSamples := func(d time.Duration) int64 { return max(int64(d/time.Microsecond)*int64(rate)/1_000_000, 1) }
	minSilence, minSpeech := toSamples(mock.DefaultMinSilence), toSamples(mock.DefaultMinSpeech)
	var (
		out                 []predictedFinal
		active, confirmed   bool
		start, end, silence int64
		segment             int
		samples             = int64(len(pcm) / 2)
	)
	for w := int64(0); (w+1)*window <= samples; w++ {
		var sum int64
		for i := w * window; i < (w+1)*window; i++ {
			v := int64(int16(binary.LittleEndian.Uint16(pcm[2*i:])))
			sum += v * v
		}
		wEnd := (w + 1) * window
		if float64(sum) <= limit {
			if !active {
				continue
			}
			silence += window
			if silence < minSilence {
				continue
			}
			active = false
			if confirmed {
				out = append(out, predictedFinal{
					frame: int((wEnd - 1) / int64(frameSamples)), segment: segment, endMs: end * 1000 / int64(rate),
				})
			}
			continue
		}
		if !active {
			active, confirmed, start = true, false, w*window
		}
		end, silence = wEnd, 0
		if !confirmed && end-start >= minSpeech {
			confirmed = true
			segment++
		}
	}
	return out
}
