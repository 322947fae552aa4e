package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/cluster/clustertest"
	"github.com/callcaptions/bridge/bridge/codec"
	"github.com/callcaptions/bridge/bridge/provider"
	"github.com/callcaptions/bridge/cmd/bridge/internal/simulate"
	"github.com/callcaptions/bridge/config"
	"github.com/callcaptions/bridge/recorder/s3store/s3test"
)

// runSimulate runs the simulate command line against base and returns its
// exit code and output.
func runSimulate(t *testing.T, base string, args ...string) (int, string) {
	t.Helper()
	u, err := url.Parse(base)
	require.NoError(t, err)
	var out, errOut bytes.Buffer
	code := run(append([]string{"simulate", "--addr", u.Host}, args...), &out, &errOut)
	return code, out.String() + errOut.String()
}

// wireRoundTrip is what the bridge should record for pcm sent as enc:
// encoded and decoded with the codec package, outside the simulator.
func wireRoundTrip(t *testing.T, pcm []byte, enc provider.Encoding) []byte {
	t.Helper()
	out := make([]byte, len(pcm))
	switch enc {
	case provider.PCMU:
		w := make([]byte, len(pcm)/2)
		codec.EncodeMulaw(w, pcm)
		codec.DecodeMulaw(out, w)
	case provider.PCMA:
		w := make([]byte, len(pcm)/2)
		codec.EncodeAlaw(w, pcm)
		codec.DecodeAlaw(out, w)
	default:
		copy(out, pcm)
	}
	return out
}

// TestSimulateProviders plays a call as every provider into a real bridge
// and checks what the bridge made of it: the call record, each WAV sample
// for sample, and the transcript the mock recognizer produced.
func TestSimulateProviders(t *testing.T) {
	_, base := startBridge(t, testConfig(t))
	cases := []struct {
		provider string
		args     []string
		enc      provider.Encoding
		rate     int
		tracks   []string
		reason   string
	}{
		{"twilio", nil, provider.PCMU, 8000, []string{"inbound", "outbound"}, bridge.ReasonStop},
		{"signalwire", []string{"--encoding", "l16", "--rate", "16000"}, provider.L16, 16000, []string{"inbound", "outbound"}, bridge.ReasonStop},
		{"plivo", nil, provider.PCMU, 8000, []string{"inbound", "outbound"}, bridge.ReasonDisconnect},
		{"vobiz", []string{"--encoding", "l16", "--rate", "16000"}, provider.L16, 16000, []string{"inbound", "outbound"}, bridge.ReasonDisconnect},
		{"telnyx", []string{"--encoding", "pcma", "--tracks", "1"}, provider.PCMA, 8000, []string{"inbound"}, bridge.ReasonStop},
		{"exotel", []string{"--tracks", "1"}, provider.L16, 8000, []string{"inbound"}, bridge.ReasonStop},
	}
	for _, tc := range cases {
		t.Run(tc.provider, func(t *testing.T) {
			id := fmt.Sprintf("sim-%s-%d", tc.provider, time.Now().UnixNano())
			args := append([]string{"--provider", tc.provider, "--call-id", id, "--duration", "6s", "--speed", "0",
				"--param", "team=qa", "--seed", "7"}, tc.args...)
			code, out := runSimulate(t, base, args...)
			require.Equal(t, 0, code, out)
			require.Contains(t, out, "1 completed, 0 failed")

			rec := waitEnded(t, base, id)
			require.Equal(t, tc.provider, rec.Provider)
			require.Equal(t, tc.reason, rec.Reason)
			if tc.provider == "telnyx" { // Telnyx carries them in client_state
				require.NotEmpty(t, rec.CustomParameters["client_state"])
			} else {
				require.Equal(t, "qa", rec.CustomParameters["team"], "custom parameters reach the call record")
			}

			var tr bridge.Transcript
			require.Equal(t, http.StatusOK, getJSON(t, base, "/api/calls/"+url.PathEscape(id)+"/transcript", &tr))
			frameSamples := tc.rate * provider.Lookup(provider.Name(tc.provider)).Wire.FrameMs / 1000
			for i, name := range tc.tracks {
				pcm := simulate.SpeechLike(tc.rate, 6*time.Second, 7+uint64(i))
				want := wireRoundTrip(t, pcm, tc.enc)
				w := fetchWAV(t, base, id, name)
				require.Equal(t, tc.rate, w.rate)
				require.Equal(t, want, w.raw[:len(want)], "track %s: the WAV holds the audio sent", name)
				require.Len(t, w.raw, (len(want)/2+frameSamples-1)/frameSamples*frameSamples*2, "track %s: whole frames, nothing more", name)

				var ends []int64
				for _, s := range tr.Segments {
					if s.Track == name {
						ends = append(ends, s.EndMs)
					}
				}
				predicted := simulate.FinalEnds(w.raw, tc.rate, frameSamples)
				require.NotEmpty(t, predicted, "generated audio has utterances")
				require.Equal(t, predicted, ends[:min(len(ends), len(predicted))], "track %s: finals where the simulator predicts them", name)
			}
		})
	}
}

var reportLine = regexp.MustCompile(`(?m)^\s+(calls|frames sent|finals|recordings|bridge pid)\s+(.*)$`)

// TestSimulateLoad runs the load tool with a handful of calls at high
// speed and checks the report's counts.
func TestSimulateLoad(t *testing.T) {
	// Registered first, so it runs after the bridge has shut down; the
	// goroutines already running are taken now.
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		// The simulator's HTTP client keeps connections to the bridge
		// open for reuse; with the bridge gone they are dead, and closing
		// them now ends their goroutines without waiting on the peer.
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		goleak.VerifyNone(t, before,
			// fasthttp's process-wide date ticker and worker-pool cleaner
			// outlive a server's shutdown by design.
			goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
			goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"))
	})
	_, base := startBridge(t, testConfig(t))
	code, out := runSimulate(t, base, "--calls", "5", "--ramp", "100ms", "--speed", "10", "--duration", "4s",
		"--pid", strconv.Itoa(os.Getpid()))
	require.Equal(t, 0, code, out)
	got := map[string]string{}
	for _, m := range reportLine.FindAllStringSubmatch(out, -1) {
		got[m[1]] = m[2]
	}
	require.Equal(t, "5 completed, 0 failed", got["calls"], out)
	// 4 s of 20 ms frames on two tracks: 400 frames a call.
	require.Equal(t, "2000 (400 per completed call)", got["frames sent"], out)
	require.Regexp(t, `^(\d+) received, (\d+) predicted, (\d+) matched \(0 ending elsewhere than predicted\)$`, got["finals"], out)
	f := regexp.MustCompile(`\d+`).FindAllString(got["finals"], 3)
	require.Equal(t, f[1], f[0], "every predicted final arrived: %s", out)
	require.Equal(t, f[1], f[2], "every final matched its utterance: %s", out)
	require.Equal(t, "10/10 WAVs byte-exact; 5/5 call records complete (all frames, no gaps, no duplicates)", got["recordings"], out)
	require.Contains(t, got["bridge pid"], "CPU-s per call-minute", out)
	require.Regexp(t, `(?m)^\s+connect\s+p50 .* \(n=5\)$`, out, "every call's connect is measured")
	for _, l := range []string{"connect           p50", "pacing lateness   p50", "caption latency   p50", "stop-to-close     p50", "RSS"} {
		require.Contains(t, out, l)
	}
}

// TestSimulateAuthentication: the simulator authenticates with the same
// settings the bridge is given, and a bridge that wants credentials
// refuses a simulator without them.
func TestSimulateAuthentication(t *testing.T) {
	cfg := testConfig(t)
	cfg.PublicURL = "https://bridge.example.com"
	cfg.Providers.TwilioAuthToken = "0123456789abcdef0123456789abcdef"
	cfg.Providers.MediaBearerToken = "bearer-token-0123456789"
	cfg.Providers.ExotelBasicAuth = "exo-user:exo-pass-0123456789"
	cfg.Providers.ProviderPathSecrets = map[string]string{"plivo": "plivo-secret-0123456789"}
	_, base := startBridge(t, cfg)
	short := []string{"--duration", "2s", "--speed", "0", "--no-verify"}

	cases := []struct {
		name string
		args []string
		ok   bool
	}{
		{"twilio signature", []string{"--provider", "twilio", "--public-url", cfg.PublicURL, "--twilio-auth-token", cfg.Providers.TwilioAuthToken}, true},
		{"twilio wrong token", []string{"--provider", "twilio", "--public-url", cfg.PublicURL, "--twilio-auth-token", "ffffffffffffffffffffffffffffffff"}, false},
		{"bearer header", []string{"--provider", "signalwire", "--header", "Authorization: Bearer " + cfg.Providers.MediaBearerToken}, true},
		{"bearer setting", []string{"--provider", "signalwire", "--media-bearer-token", cfg.Providers.MediaBearerToken}, true},
		{"exotel basic", []string{"--provider", "exotel", "--basic", cfg.Providers.ExotelBasicAuth}, true},
		{"plivo path secret", []string{"--provider", "plivo", "--url", strings.Replace(base, "http", "ws", 1) + "/media/plivo/" + cfg.Providers.ProviderPathSecrets["plivo"]}, true},
		{"no credentials", []string{"--provider", "telnyx"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runSimulate(t, base, append(tc.args, short...)...)
			if tc.ok {
				require.Equal(t, 0, code, out)
				require.Contains(t, out, "1 completed, 0 failed")
				return
			}
			require.Equal(t, 1, code, out)
			require.Regexp(t, `HTTP 40[13]`, out)
		})
	}
}

// writeFmt writes the body of a PCM16 fmt chunk, its size first.
func writeFmt(b *bytes.Buffer, channels, rate int) {
	for _, v := range []any{uint32(16), uint16(1), uint16(channels), uint32(rate), uint32(rate * channels * 2), uint16(channels * 2), uint16(16)} {
		_ = binary.Write(b, binary.LittleEndian, v)
	}
}

// TestSimulateWAV plays a stereo WAV file: left is inbound, right outbound.
func TestSimulateWAV(t *testing.T) {
	_, base := startBridge(t, testConfig(t))
	left, right := simulate.SpeechLike(8000, 3*time.Second, 11), simulate.SpeechLike(8000, 3*time.Second, 12)
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString("RIFF")
	_ = binary.Write(&b, le, uint32(36+2*len(left)))
	b.WriteString("WAVEfmt ")
	writeFmt(&b, 2, 8000)
	b.WriteString("data")
	_ = binary.Write(&b, le, uint32(2*len(left)))
	for i := 0; i < len(left); i += 2 {
		b.Write(left[i : i+2])
		b.Write(right[i : i+2])
	}
	path := filepath.Join(t.TempDir(), "call.wav")
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))

	id := fmt.Sprintf("sim-wav-%d", time.Now().UnixNano())
	code, out := runSimulate(t, base, "--wav", path, "--call-id", id, "--speed", "0")
	require.Equal(t, 0, code, out)
	waitEnded(t, base, id)
	require.Equal(t, wireRoundTrip(t, left, provider.PCMU), fetchWAV(t, base, id, "inbound").raw)
	require.Equal(t, wireRoundTrip(t, right, provider.PCMU), fetchWAV(t, base, id, "outbound").raw)
}

func TestSimulateHelp(t *testing.T) {
	var out bytes.Buffer
	require.Equal(t, 0, run([]string{"simulate", "--help"}, &out, &out), out.String())
	for _, f := range []string{"--provider", "--wav", "--speed", "--calls", "--ramp", "--captions", "--header", "--basic", "--twilio-auth-token", "--pid"} {
		require.Contains(t, out.String(), f)
	}
}

// hostOf is the host:port of a base URL.
func hostOf(t *testing.T, base string) string {
	t.Helper()
	u, err := url.Parse(base)
	require.NoError(t, err)
	return u.Host
}

// reportFields are the report's labelled lines, by label.
func reportFields(out string) map[string]string {
	got := map[string]string{}
	for _, m := range reportLine.FindAllStringSubmatch(out, -1) {
		got[m[1]] = m[2]
	}
	return got
}

// TestSimulateCrossReplica spreads calls over two replicas that share a
// NATS server and a bucket, follows each call's captions on the other
// replica, measures two processes and checks every WAV in the bucket.
func TestSimulateCrossReplica(t *testing.T) {
	nats := clustertest.Start(t)
	objects := s3test.Start(t)
	bucket := objects.Bucket("calls")
	var bases []string
	for _, node := range []string{"replica-a", "replica-b"} {
		cfg := s3Config(t, objects, bucket)
		cfg.S3.Prefix = "sim/"
		cfg.NATS = config.NATS{URL: nats.URL(), NodeID: node}
		_, base := startReplicaWith(t, cfg)
		bases = append(bases, base)
	}
	self := strconv.Itoa(os.Getpid())
	s3Args := []string{"--s3-bucket", bucket, "--s3-endpoint", objects.Endpoint(), "--s3-path-style", "--s3-region", s3test.Region}
	id := fmt.Sprintf("sim-cross-%d", time.Now().UnixNano())
	code, out := runSimulate(t, bases[0], append([]string{"--replicas", hostOf(t, bases[0]) + "," + hostOf(t, bases[1]), "--cross-replica",
		"--call-id", id, "--calls", "4", "--ramp", "100ms", "--speed", "10", "--duration", "4s",
		"--pid", self, "--pid", "nats-server=" + self, "--s3-prefix", "sim/"}, s3Args...)...)
	require.Equal(t, 0, code, out)
	got := reportFields(out)
	require.Equal(t, "4 completed, 0 failed", got["calls"], out)
	f := regexp.MustCompile(`\d+`).FindAllString(got["finals"], 3)
	require.Len(t, f, 3, out)
	require.NotEqual(t, "0", f[1], "the audio predicts finals: %s", out)
	require.Equal(t, f[1], f[0], "every predicted final arrived on the other replica: %s", out)
	require.Equal(t, f[1], f[2], "every final matched its utterance: %s", out)
	require.Equal(t, "8/8 WAVs byte-exact in s3://calls/sim/; 4/4 call records complete (all frames, no gaps, no duplicates)", got["recordings"], out)
	require.Contains(t, out, "replicas          2, taking the calls in turn; each call's captions followed on the next replica (cross-replica)")
	require.Contains(t, out, "  bridge pid "+self+" ")
	require.Contains(t, out, "  nats-server pid "+self+" ")
	require.Regexp(t, `all 2 processes   whole run: [\d.]+ CPU-s \([\d.]+ cores\) = [\d.]+ CPU-s per call-minute`, out)
	for i, base := range bases {
		require.Equal(t, 2.0, metric(t, base, `bridge_calls_total{reason="stop"}`), "replica %d took every other call", i)
		require.Positive(t, metric(t, base, "bridge_nats_received_total"), "replica %d followed the other's calls", i)
	}

	t.Run("missing from the bucket", func(t *testing.T) {
		// The same bridges; the simulator looks for the calls under a
		// prefix they do not upload to.
		id := fmt.Sprintf("sim-elsewhere-%d", time.Now().UnixNano())
		code, out := runSimulate(t, bases[0], append([]string{"--replicas", hostOf(t, bases[0]) + "," + hostOf(t, bases[1]),
			"--call-id", id, "--calls", "2", "--speed", "0", "--duration", "2s", "--timeout", "2s", "--s3-prefix", "elsewhere/"}, s3Args...)...)
		require.Equal(t, 1, code, out)
		got := reportFields(out)
		require.Equal(t, "2 completed, 0 failed", got["calls"], out)
		require.Equal(t, "0/0 WAVs byte-exact in s3://calls/elsewhere/; 0/2 call records complete (all frames, no gaps, no duplicates)", got["recordings"], out)
		require.Regexp(t, `verify: calls/elsewhere/calls/`+regexp.QuoteMeta(id)+`-\d/call.json not in the bucket after 2s`, out)
	})
}

// TestSimulateCrossReplicaNeedsCluster: without cluster mode a caption
// subscriber on the other bridge never hears of the call, so each call
// fails: the subscriptions do go to the other bridge.
func TestSimulateCrossReplicaNeedsCluster(t *testing.T) {
	_, a := startBridge(t, testConfig(t))
	_, b := startBridge(t, testConfig(t))
	code, out := runSimulate(t, a, "--replicas", hostOf(t, a)+","+hostOf(t, b), "--cross-replica", "--calls", "2",
		"--speed", "0", "--duration", "2s", "--timeout", "2s", "--no-verify")
	require.Equal(t, 1, code, out)
	require.Equal(t, "0 completed, 2 failed", reportFields(out)["calls"], out)
	require.Contains(t, out, "2 × no call.ended on the caption socket within 2s of the stop")

	code, out = runSimulate(t, a, "--replicas", hostOf(t, a)+","+hostOf(t, b), "--calls", "2",
		"--speed", "0", "--duration", "2s", "--timeout", "2s")
	require.Equal(t, 0, code, out)
	require.Equal(t, "2 completed, 0 failed", reportFields(out)["calls"], out)
	require.Contains(t, out, "each call's captions followed on the replica it is played into")
	for _, base := range []string{a, b} {
		require.Equal(t, 2.0, metric(t, base, `bridge_calls_total{reason="stop"}`), "one call of each run")
	}
}

// TestSimulateReplicaSettings: settings the replicas' options refuse,
// each named, before any call.
func TestSimulateReplicaSettings(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"cross with one", []string{"--replicas", "127.0.0.1:1", "--cross-replica"}, "--cross-replica: want at least two --replicas, got 1"},
		{"cross without", []string{"--cross-replica"}, "--cross-replica: want at least two --replicas, got 0"},
		{"url with several", []string{"--replicas", "127.0.0.1:1,127.0.0.1:2", "--url", "ws://127.0.0.1:1/media/twilio"}, "--url, --http-url: name one bridge"},
		{"not host:port", []string{"--replicas", "127.0.0.1:1,bridge-b"}, `--replicas: "bridge-b" is not host:port`},
		{"bad pid", []string{"--pid", "nats-server=x"}, `--pid: "nats-server=x" is not [NAME=]PID`},
		{"unnamed", []string{"--pid", "=12"}, `--pid: "=12" is not [NAME=]PID`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runSimulate(t, "http://127.0.0.1:1", tc.args...)
			require.Equal(t, 2, code, out)
			require.Contains(t, out, tc.want)
		})
	}
}
