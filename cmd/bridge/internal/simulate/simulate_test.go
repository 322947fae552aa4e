package simulate

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/stt"
	"github.com/callcaptions/bridge/stt/mock"
)

// TestPredictFinalsMatchesMock: the simulator's prediction of where the
// mock recognizer ends utterances is the mock's own behaviour.
func TestPredictFinalsMatchesMock(t *testing.T) {
	for _, rate := range []int{8000, 16000} {
		t.Run(strconv.Itoa(rate), func(t *testing.T) {
			pcm := SpeechLike(rate, 20*time.Second, 3)
			s, err := mock.New(mock.Config{}).Open(context.Background(), stt.StreamConfig{Track: "inbound", SampleRate: rate})
			require.NoError(t, err)
			var got []int64
			done := make(chan struct{})
			go func() {
				defer close(done)
				for r := range s.Results() {
					if r.Kind == stt.Final {
						got = append(got, r.EndMs)
					}
				}
			}()
			frame := rate / 50 * 2
			for i := 0; i < len(pcm); i += frame {
				require.NoError(t, s.Write(int64(i/2), pcm[i:min(i+frame, len(pcm))]))
			}
			require.NoError(t, s.Close())
			<-done
			var want []int64
			for i, f := range predictFinals(pcm, rate, rate/50) {
				require.Equal(t, i+1, f.segment)
				want = append(want, f.endMs)
			}
			require.GreaterOrEqual(t, len(want), 5)
			require.Equal(t, want, got[:len(want)])
		})
	}
}

// writeFmt writes the body of a PCM16 fmt chunk, its size first.
func writeFmt(b *bytes.Buffer, channels, rate int) {
	for _, v := range []any{uint32(16), uint16(1), uint16(channels), uint32(rate), uint32(rate * channels * 2), uint16(channels * 2), uint16(16)} {
		_ = binary.Write(b, binary.LittleEndian, v)
	}
}

func TestReadWAV(t *testing.T) {
	var b bytes.Buffer
	le := binary.LittleEndian
	data := []int16{1, -1, 2, -2, 3, -3}
	b.WriteString("RIFF")
	_ = binary.Write(&b, le, uint32(36+len(data)*2))
	b.WriteString("WAVEfmt ")
	writeFmt(&b, 2, 16000)
	b.WriteString("LIST")
	_ = binary.Write(&b, le, uint32(3))
	b.WriteString("abc\x00") // odd chunk, padded
	b.WriteString("data")
	_ = binary.Write(&b, le, uint32(len(data)*2))
	_ = binary.Write(&b, le, data)
	path := filepath.Join(t.TempDir(), "s.wav")
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))

	chans, rate, err := readWAV(path)
	require.NoError(t, err)
	require.Equal(t, 16000, rate)
	require.Equal(t, [][]byte{{1, 0, 2, 0, 3, 0}, {0xff, 0xff, 0xfe, 0xff, 0xfd, 0xff}}, chans)

	require.NoError(t, os.WriteFile(path, []byte("RIFF\x00\x00\x00\x00WAVE"), 0o644))
	_, _, err = readWAV(path)
	require.ErrorContains(t, err, "16-bit PCM")
}

func TestTwilioSignature(t *testing.T) {
	// openssl dgst -sha1 -hmac 0123456789abcdef0123456789abcdef -binary | base64
	require.Equal(t, "pdNh/PVQcUqJrppuXVeC/tngji4=",
		twilioSignature("0123456789abcdef0123456789abcdef", "wss://bridge.example.com/media/twilio"))
}

func TestLatencies(t *testing.T) {
	var l latencies
	require.Zero(t, l.quantile(0.5))
	for i := 1; i <= 1000; i++ {
		l.add(time.Duration(i) * time.Millisecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, time.Second}} {
		got := l.quantile(tc.q)
		require.InEpsilon(t, float64(tc.want), float64(got), 0.04, "q%.2f = %s", tc.q, got)
	}
	require.Contains(t, l.summary(), "max 1000 ms")
}
