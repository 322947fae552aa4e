// Package soak is the bridge's soak command: calls with random faults,
// under load, for a given time, against a bridge on this machine; then
// every call it started must be accounted for. Not part of the test suite:
// it runs for minutes. Calls speak Twilio and Exotel through those
// providers' Wires (bridge/provider).
//
//	go run ./cmd/bridge soak --duration 3m                 # an in-process bridge
//	go run ./cmd/bridge soak --url http://127.0.0.1:8080   # a running one
package soak

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/rs/zerolog"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/codec"
	"github.com/callcaptions/bridge/bridge/provider"
	"github.com/callcaptions/bridge/cmd/bridge/internal/exitcode"
	"github.com/callcaptions/bridge/cmd/bridge/internal/simulate"
	"github.com/callcaptions/bridge/config"
)

// Cmd is the soak command's settings.
type Cmd struct {
	Duration    time.Duration `name:"duration" default:"1m" help:"How long to keep starting calls; the calls in flight then finish."`
	URL         string        `name:"url" help:"Base URL of a bridge on this machine (http://127.0.0.1:8080). Empty: run one in-process on a temporary data directory."`
	Concurrency int           `name:"concurrency" default:"16" help:"Calls in flight at once (1 to 500)."`
	CallLength  time.Duration `name:"call-length" default:"6s" help:"Longest call (each lasts 1 s to this long, played in real time)."`
	Stall       time.Duration `name:"stall" help:"How long a stalled call goes silent: longer than the bridge's --idle-timeout (default: 3 s, against the in-process bridge's 2 s)."`
	Seed        uint64        `name:"seed" help:"Random seed (default: from the clock); the report names it so a run can be repeated."`
	Keep        bool          `name:"keep" help:"Keep the in-process bridge's data directory and log."`
}

// Faults a soak call can suffer, and the end reason each must get.
var soakFaults = []struct {
	name, reason string
	weight       int
}{
	{"clean", bridge.ReasonStop, 3},
	{"garbage", bridge.ReasonStop, 3},     // malformed frames and unknown events between good ones
	{"dup-reorder", bridge.ReasonStop, 2}, // duplicate frames, adjacent frames swapped
	{"drop", bridge.ReasonDisconnect, 2},  // the socket dies without stop or close frame
	{"stall", bridge.ReasonTimeout, 1},    // the provider goes silent past the idle timeout
	{"oversize", bridge.ReasonError, 1},   // a message over the read limit
	{"stt-fail", bridge.ReasonStop, 1},    // speech-to-text fails every second (mock engine) and must come back
}

// soakRun is one soak: its settings, the bridge under test and the tally.
type soakRun struct {
	cmd      Cmd
	client   *simulate.Client // REST and caption sockets
	bearer   string           // media bearer token, if the bridge wants one
	inProc   bool
	tooBig   int // bytes of a message the bridge must refuse
	out      io.Writer
	problems []string

	mu    sync.Mutex
	calls []*soakCall
	stats map[string]int
}

// soakCall is one call and what happened to it.
type soakCall struct {
	id, fault, provider string
	rate                int
	tracks              []string
	sent                map[string][]byte // audio sent per track (PCM16LE), in order, placed: what the WAV must hold
	exact               bool              // the WAV must equal the audio sent, not just its length
	bigParams           bool              // the start frame carries 48 KB of custom parameters
	problems            []string

	// The media socket, speaking the provider's protocol.
	wire    *provider.Wire
	ids     provider.IDs
	conn    *websocket.Conn
	rng     *rand.Rand
	freq    float64
	seq     int
	held    []byte // a frame held back, sent after the next frame
	swapped int
}

func (c *soakCall) fail(format string, a ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, a...))
}

// Env is what the soak is handed to reach or run a bridge.
type Env struct {
	// APIToken finds the token a tool on this machine sends to the bridge
	// (--api-token or <--data>/api-token).
	APIToken func() (string, error)
	// Start runs a bridge with cfg, logging to log, and returns once it
	// listens: its address and a function that stops it and returns why
	// it ended.
	Start func(cfg config.Config, log zerolog.Logger) (addr string, stop func() error, err error)
}

// Run runs the soak and returns the exit code: exitcode.OK when every call
// is accounted for, exitcode.Failure when not (or the run failed),
// exitcode.Usage for bad settings.
func Run(ctx context.Context, cfg config.Config, cmd Cmd, env Env, stdout, stderr io.Writer) int {
	if cmd.Concurrency < 1 || cmd.Concurrency > 500 {
		fmt.Fprintf(stderr, "bridge soak: --concurrency: want 1 to 500, got %d\n", cmd.Concurrency)
		return exitcode.Usage
	}
	if cmd.CallLength < time.Second || cmd.Duration <= 0 {
		fmt.Fprintln(stderr, "bridge soak: --call-length must be at least 1s and --duration positive")
		return exitcode.Usage
	}
	if cmd.Seed == 0 {
		cmd.Seed = uint64(time.Now().UnixNano())
	}
	if cmd.Stall == 0 {
		cmd.Stall = 3 * time.Second
	}
	tok, err := env.APIToken()
	if err != nil {
		fmt.Fprintln(stderr, "bridge soak:", err)
		return exitcode.Usage
	}
	r := &soakRun{cmd: cmd, client: &simulate.Client{Token: tok, HTTP: &http.Client{Timeout: 30 * time.Second}},
		bearer: cfg.Providers.MediaBearerToken, out: stdout, stats: map[string]int{}}
	goroutines := soakGoroutines()
	var stop func() error
	if cmd.URL == "" {
		if stop, err = r.startBridge(cfg, env.Start); err != nil {
			fmt.Fprintln(stderr, "bridge soak:", err)
			return exitcode.Failure
		}
	} else {
		u, err := url.Parse(cmd.URL)
		if err != nil || u.Scheme != "http" || !isLoopback(u.Hostname()) {
			fmt.Fprintf(stderr, "bridge soak: --url %q: want http:// and a loopback address (the soak never leaves this machine)\n", cmd.URL)
			return exitcode.Usage
		}
		r.client.Base = strings.TrimSuffix(cmd.URL, "/")
		r.tooBig = 16<<20 + 4096 // over any --max-message-bytes the bridge accepts
	}
	err = r.run(ctx)
	if stop != nil {
		if serr := stop(); serr != nil {
			r.problems = append(r.problems, "bridge shutdown: "+serr.Error())
		}
		// Everything the bridge and the soak started has ended.
		r.client.HTTP.CloseIdleConnections()
		left := soakGoroutines()
		for wait := time.Now().Add(10 * time.Second); left > goroutines && time.Now().Before(wait); left = soakGoroutines() {
			time.Sleep(50 * time.Millisecond)
		}
		r.stats["goroutines left after shutdown"] = left - goroutines
		if left > goroutines {
			r.problems = append(r.problems, fmt.Sprintf("%d goroutines left after the bridge shut down", left-goroutines))
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "bridge soak:", err)
		return exitcode.Failure
	}
	if r.report() > 0 {
		return exitcode.Failure
	}
	return exitcode.OK
}

// soakGoroutines counts this process's goroutines, leaving out the one
// fasthttp starts for good with its first server.
func soakGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			all := string(buf[:n])
			return strings.Count("\n"+all, "\ngoroutine ") - strings.Count(all, "\ngithub.com/valyala/fasthttp.updateServerDate")
		}
		buf = make([]byte, 2*len(buf))
	}
}

func isLoopback(host string) bool {
	ip, err := netip.ParseAddr(host)
	return host == "localhost" || err == nil && ip.IsLoopback()
}

// startBridge runs a bridge in this process on a loopback port, with short
// timeouts so faults resolve quickly. The returned func shuts it down.
func (r *soakRun) startBridge(cfg config.Config, start func(config.Config, zerolog.Logger) (string, func() error, error)) (func() error, error) {
	dir, err := os.MkdirTemp("", "bridge-soak-")
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(dir + "/soak.log")
	if err != nil {
		return nil, err
	}
	cfg.Addr = "127.0.0.1:0"
	cfg.Data = dir
	if cfg.APIToken == "" && !cfg.AllowAnonymous {
		r.client.Token = crand.Text()
		cfg.APIToken = r.client.Token
	}
	cfg.Limits.IdleTimeout = 2 * time.Second
	cfg.Limits.MaxMessageBytes = 64 << 10
	cfg.Limits.ReconnectGrace = 0
	cfg.Limits.ShutdownTimeout = 10 * time.Second
	r.inProc, r.tooBig = true, 80<<10
	log := zerolog.New(logf).Level(zerolog.WarnLevel).With().Timestamp().Logger()
	addr, stopBridge, err := start(cfg, log)
	if err != nil {
		return nil, fmt.Errorf("start the bridge: %w", err)
	}
	r.client.Base = "http://" + addr
	fmt.Fprintf(r.out, "soak: in-process bridge at %s, data %s (idle timeout %s, max message %d KiB, stt %s)\n",
		r.client.Base, dir, cfg.Limits.IdleTimeout, cfg.Limits.MaxMessageBytes>>10, cfg.STT)
	return func() error {
		err := stopBridge()
		logf.Close()
		log, _ := os.ReadFile(dir + "/soak.log")
		r.stats["log warnings"] = strings.Count(string(log), `"level":"warn"`)
		r.stats["log errors"] = strings.Count(string(log), `"level":"error"`)
		if !r.cmd.Keep {
			os.RemoveAll(dir)
		}
		return err
	}, nil
}

func (r *soakRun) count(what string, n int) {
	r.mu.Lock()
	r.stats[what] += n
	r.mu.Unlock()
}

// run starts calls until the duration is over, at most Concurrency at a
// time, and waits for every one to be checked.
func (r *soakRun) run(ctx context.Context) error {
	checks := context.WithoutCancel(ctx) // a stopped soak still accounts for its calls
	if code, err := r.client.Get(checks, "/healthz", nil); err != nil || code != http.StatusOK {
		return fmt.Errorf("the bridge at %s is not healthy (%d, %v)", r.client.Base, code, err)
	}
	slowBefore := r.metric("bridge_subscribers_slow_disconnects_total")
	fmt.Fprintf(r.out, "soak: %s against %s, seed %d, %d calls at once, calls of 1 s to %s\n",
		r.cmd.Duration, r.client.Base, r.cmd.Seed, r.cmd.Concurrency, r.cmd.CallLength)

	// Two all-calls subscribers that never read, for the whole run. Their
	// socket buffers are small, so the bridge's writes to them block soon
	// and their queues overflow.
	var stuck []*websocket.Conn
	for range 2 {
		d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, NetDial: func(network, addr string) (net.Conn, error) {
			c, err := net.Dial(network, addr)
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(64 << 10)
			}
			return c, err
		}}
		if c, err := r.client.Dial(ctx, &d, "/ws/captions", r.client.Header()); err == nil {
			stuck = append(stuck, c)
		}
	}

	deadline := time.Now().Add(r.cmd.Duration)
	slots := make(chan struct{}, r.cmd.Concurrency)
	var wg sync.WaitGroup
	rng := rand.New(rand.NewPCG(r.cmd.Seed, 0x50a4))
	var deck []int // an index into soakFaults per unit of weight
	for i, f := range soakFaults {
		deck = append(deck, slices.Repeat([]int{i}, f.weight)...)
	}
	for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil || !time.Now().Before(deadline) {
			break
		}
		fault := soakFaults[deck[rng.IntN(len(deck))]]
		c := &soakCall{id: fmt.Sprintf("CAsoak%010d%018d", r.cmd.Seed%1e10, i), fault: fault.name}
		callRng := rand.New(rand.NewPCG(r.cmd.Seed, uint64(i)+1))
		r.mu.Lock()
		r.calls = append(r.calls, c)
		r.mu.Unlock()
		wg.Go(func() {
			defer func() { <-slots }()
			r.play(ctx, checks, c, fault.reason, callRng)
		})
		if i%100 == 99 {
			fmt.Fprintf(r.out, "soak: %d calls started, %s left\n", i+1, time.Until(deadline).Round(time.Second))
		}
	}
	wg.Wait()

	for _, c := range stuck {
		c.Close()
	}
	r.stats["all-calls subscribers never reading"] = len(stuck)
	r.stats["subscribers cut off as slow"] = int(r.metric("bridge_subscribers_slow_disconnects_total") - slowBefore)
	if code, err := r.client.Get(checks, "/healthz", nil); err != nil || code != http.StatusOK {
		r.problems = append(r.problems, fmt.Sprintf("healthz after the run: %d %v", code, err))
	}
	if r.inProc {
		if n := r.metric("bridge_calls_active"); n != 0 {
			r.problems = append(r.problems, fmt.Sprintf("%g calls still active after every call ended", n))
		}
	}
	return nil
}

// play runs one call with its fault, then checks it (with checks, which
// outlives ctx).
func (r *soakRun) play(ctx, checks context.Context, c *soakCall, reason string, rng *rand.Rand) {
	c.provider, c.rate, c.tracks = "twilio", 8000, []string{"inbound", "outbound"}
	// Not stt-fail: the mock engine's per-call failure is a parameter Twilio carries.
	if rng.IntN(3) == 0 && c.fault != "stt-fail" {
		c.provider, c.rate, c.tracks = "exotel", 16000, []string{"inbound"}
	}
	c.sent = map[string][]byte{}
	c.exact = c.fault != "dup-reorder"
	c.bigParams = rng.IntN(10) == 0 // big events fill slow subscribers' buffers sooner
	if c.bigParams {
		r.count("calls with 48 KB of custom parameters", 1)
	}
	frames := int(time.Duration(rng.Int64N(int64(r.cmd.CallLength-time.Second)+1)+int64(time.Second)) / (20 * time.Millisecond))

	// Subscribers: one that reads and checks, sometimes one that never reads.
	var subEnd chan string // the end reason the reading subscriber saw
	if rng.IntN(2) == 0 {
		if sub, err := r.dial(ctx, "/ws/captions?call="+url.QueryEscape(c.id)); err == nil {
			r.count("subscribers reading", 1)
			subEnd = make(chan string, 1)
			go func() {
				defer sub.Close()
				subEnd <- r.watch(sub, c)
			}()
		}
	}
	if rng.IntN(5) == 0 {
		if idle, err := r.dial(ctx, "/ws/captions?call="+url.QueryEscape(c.id)); err == nil {
			r.count("subscribers never reading", 1)
			defer idle.Close()
		}
	}

	path := "/media/" + c.provider
	conn, err := r.dial(ctx, path)
	if err != nil {
		c.fail("dial %s: %v", path, err)
		return
	}
	defer conn.Close()
	c.conn, c.rng, c.freq = conn, rng, 200+rng.Float64()*400
	c.wire, c.ids = provider.Lookup(provider.Name(c.provider)).Wire, provider.IDs{Call: c.id, Stream: "MZ" + c.id[2:]}
	if err := c.start(); err != nil {
		c.fail("start: %v", err)
		return
	}
	faultAt := frames // the frame a stall, an oversized message or a drop takes the place of
	if c.fault == "stall" || c.fault == "oversize" || c.fault == "drop" {
		faultAt = rng.IntN(frames)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for k := 0; k < frames && k <= faultAt; k++ {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
		switch {
		case k < faultAt:
			if err := c.frame(k, false); err != nil {
				c.fail("frame %d: %v", k, err)
				return
			}
			switch c.fault {
			case "garbage":
				if rng.IntN(4) == 0 {
					r.count("garbage frames", c.garbage())
				}
			case "dup-reorder":
				if rng.IntN(5) == 0 {
					r.count("duplicate frames", 1)
					_ = c.frame(k, true)
				}
			}
		case c.fault == "stall":
			r.count("stalls", 1)
		case c.fault == "oversize":
			r.count("oversize messages", 1)
			_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"event":"media","media":{"payload":"`+strings.Repeat("A", r.tooBig)+`"}}`))
		default:
			r.count("dropped sockets", 1)
			_ = conn.UnderlyingConn().Close()
		}
	}
	switch c.fault {
	case "stall":
		// Silent until the bridge gives up on the stream.
		if code := c.awaitClose(r.cmd.Stall + 10*time.Second); code != websocket.CloseNormalClosure {
			c.fail("stalled call closed with %d, want 1000 (idle timeout)", code)
		}
	case "oversize":
		if code := c.awaitClose(10 * time.Second); code != websocket.CloseMessageTooBig {
			c.fail("oversized message closed with %d, want 1009", code)
		}
	case "drop":
	default:
		if err := c.flush(); err != nil {
			c.fail("flush: %v", err)
		} else if err := c.stop(); err != nil {
			c.fail("stop: %v", err)
		} else if code := c.awaitClose(10 * time.Second); code != websocket.CloseNormalClosure {
			c.fail("stopped call closed with %d, want 1000", code)
		}
	}
	if c.fault == "dup-reorder" {
		r.count("reordered pairs", c.swapped)
	}
	r.check(checks, c, reason)
	if subEnd != nil {
		select {
		case end := <-subEnd:
			if end != reason {
				c.fail("the subscriber saw the call end with %q, want %q", end, reason)
			}
		case <-time.After(15 * time.Second):
			c.fail("the subscriber never saw the call end")
		}
	}
}

// watch reads a one-call subscription until call.ended; it checks that seq
// only increases and returns the end reason.
func (r *soakRun) watch(sub *websocket.Conn, c *soakCall) string {
	var last float64
	_ = sub.SetReadDeadline(time.Now().Add(r.cmd.CallLength + r.cmd.Stall + 60*time.Second))
	for {
		_, b, err := sub.ReadMessage()
		if err != nil {
			return ""
		}
		var ev struct {
			Type   string  `json:"type"`
			CallID string  `json:"call_id"`
			Seq    float64 `json:"seq"`
			Reason string  `json:"reason"`
		}
		if json.Unmarshal(b, &ev) != nil || ev.CallID != c.id || ev.Seq <= last {
			c.fail("subscriber: bad event after seq %g: %.120s", last, b)
			return ""
		}
		last = ev.Seq
		if ev.Type == bridge.TypeCallEnded {
			return ev.Reason
		}
	}
}

// check accounts for a call: it ended with the reason its fault calls for,
// and every WAV is playable, as long as its record says and holds the audio
// the bridge took.
func (r *soakRun) check(ctx context.Context, c *soakCall, reason string) {
	rec, err := r.client.Ended(ctx, c.id, 30*time.Second)
	if err != nil {
		c.fail("not ended 30 s after its socket: %v", err)
		return
	}
	r.count("ended "+rec.Reason, 1)
	if rec.Reason != reason {
		c.fail("ended with %q, want %q (%s)", rec.Reason, reason, rec.Error)
	}
	if len(rec.Tracks) != len(c.tracks) {
		c.fail("%d tracks recorded, want %d", len(rec.Tracks), len(c.tracks))
	}
	for _, tr := range rec.Tracks {
		r.count("WAVs checked", 1)
		if err := r.client.CheckWAV(ctx, c.id, tr, c.rate, c.sent[tr.Name], c.exact); err != nil {
			c.fail("%s.wav: %v", tr.Name, err)
		}
	}
	if c.fault == "stt-fail" {
		var tr bridge.Transcript
		if code, err := r.client.Get(ctx, "/api/calls/"+url.PathEscape(c.id)+"/transcript", &tr); err != nil || code != http.StatusOK {
			c.fail("transcript: %d %v", code, err)
		}
		for _, ev := range tr.Events {
			switch ev.Type {
			case "stt.failed":
				r.count("stt failures", 1)
			case "stt.resumed":
				r.count("stt reopened", 1)
			}
		}
	}
}

// dial opens a socket on the bridge: a media socket with the media bearer
// token, if any, a caption socket with the API token.
func (r *soakRun) dial(ctx context.Context, path string) (*websocket.Conn, error) {
	h := r.client.Header()
	if strings.HasPrefix(path, "/media") && r.bearer != "" {
		h.Set("Authorization", "Bearer "+r.bearer)
	}
	return r.client.Dial(ctx, &websocket.Dialer{HandshakeTimeout: 10 * time.Second}, path, h)
}

// metric reads one unlabelled series from /metrics (0 when absent).
func (r *soakRun) metric(name string) float64 {
	_, b, _ := r.client.Fetch(context.Background(), "/metrics")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return 0
}

func (c *soakCall) send(b []byte) error {
	c.seq++
	return c.conn.WriteMessage(websocket.TextMessage, b)
}

func (c *soakCall) start() error {
	p := map[string]string{}
	if c.fault == "stt-fail" {
		p["mock_fail_after_ms"] = "1000"
	}
	if c.bigParams {
		for i := range 48 {
			p[fmt.Sprintf("soak%02d", i)] = strings.Repeat("p", 1000)
		}
	}
	return c.send(c.wire.Start(c.ids, c.tracks, c.wire.Encodings[0], c.rate, p)) // μ-law for Twilio, L16 for Exotel
}

// sample is the call's speech-like audio: a tone in bursts.
func (c *soakCall) sample(track string, i int) int16 {
	t := float64(i) / float64(c.rate)
	f := c.freq
	if track == "outbound" {
		f *= 1.5
		t += 0.7
	}
	if math.Mod(t, 2) >= 0.9 {
		return 0
	}
	return int16(7000 * math.Sin(2*math.Pi*f*t))
}

// frame sends frame k of every track and records what the WAV will hold.
// A reordering call sometimes holds one track's frame back and sends it
// after the next frame: too late to place, its place is silence. dup
// resends a frame (the bridge drops it).
func (c *soakCall) frame(k int, dup bool) error {
	n := c.rate / 50
	var hold []byte
	for _, tr := range c.tracks {
		pcm := make([]byte, 2*n)
		for i := range n {
			binary.LittleEndian.PutUint16(pcm[2*i:], uint16(c.sample(tr, k*n+i)))
		}
		payload := pcm
		if c.provider != "exotel" { // μ-law, as the bridge will decode it
			payload = make([]byte, n)
			codec.EncodeMulaw(payload, pcm)
			codec.DecodeMulaw(pcm, payload)
		}
		b64 := base64.StdEncoding.AppendEncode(nil, payload)
		msg := c.wire.AppendMedia(nil, c.ids, int64(c.seq+1), int64(k+1), int64(20*k), tr, b64)
		if dup {
			if err := c.send(msg); err != nil {
				return err
			}
			continue
		}
		// Never the first frame: a stream's timestamps are anchored at the
		// first frame it receives, and no provider reorders over TCP that
		// early (Telnyx, which may reorder, goes through a jitter window).
		if c.fault == "dup-reorder" && k > 0 && c.held == nil && hold == nil && c.rng.IntN(8) == 0 {
			hold = msg
			c.swapped++
			pcm = make([]byte, 2*n)
		} else if err := c.send(msg); err != nil {
			return err
		}
		c.sent[tr] = append(c.sent[tr], pcm...)
	}
	if dup {
		return nil
	}
	if err := c.flush(); err != nil { // what the previous frame held back
		return err
	}
	c.held = hold
	return nil
}

// flush sends the frames held back.
func (c *soakCall) flush() error {
	if c.held == nil {
		return nil
	}
	defer func() { c.held = nil }()
	return c.send(c.held)
}

// garbage sends a short run of bad frames, fewer than the bridge's limit
// of malformed frames in a row.
func (c *soakCall) garbage() int {
	n := 1 + c.rng.IntN(4)
	for range n {
		var err error
		switch c.rng.IntN(4) {
		case 0:
			err = c.conn.WriteMessage(websocket.TextMessage, []byte("{not json"))
		case 1:
			err = c.conn.WriteMessage(websocket.BinaryMessage, []byte{0xde, 0xad, 0xbe, 0xef})
		case 2:
			err = c.send([]byte(`{"event":"media","streamSid":"MZx","media":{"track":"inbound","payload":"***"}}`))
		default:
			err = c.send([]byte(`{"event":"soak-unknown","detail":"ignored"}`))
		}
		if err != nil {
			return 0
		}
	}
	return n
}

func (c *soakCall) stop() error {
	return c.send(c.wire.Stop(c.ids, int64(c.seq+1)))
}

// awaitClose reads until the server's close frame and returns its code (0
// when the connection ended without one).
func (c *soakCall) awaitClose(within time.Duration) int {
	_ = c.conn.SetReadDeadline(time.Now().Add(within))
	for {
		if _, _, err := c.conn.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code
			}
			return 0
		}
	}
}

// report prints the tally and returns the number of problems.
func (r *soakRun) report() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	byFault, bad := map[string]int{}, 0
	for _, c := range r.calls {
		byFault[c.fault]++
		bad += min(len(c.problems), 1)
		for _, p := range c.problems {
			r.problems = append(r.problems, c.id+" ("+c.fault+"): "+p)
		}
	}
	fmt.Fprintf(r.out, "soak: seed %d\n", r.cmd.Seed)
	fmt.Fprintf(r.out, "calls started:    %d\n", len(r.calls))
	fmt.Fprintf(r.out, "accounted for:    %d (ended with the reason their fault calls for, every WAV playable and as long as its record and the audio sent)\n", len(r.calls)-bad)
	var faults []string
	for _, f := range soakFaults {
		faults = append(faults, fmt.Sprintf("%s %d", f.name, byFault[f.name]))
	}
	fmt.Fprintf(r.out, "faults:           %s\n", strings.Join(faults, ", "))
	for _, k := range slices.Sorted(maps.Keys(r.stats)) {
		fmt.Fprintf(r.out, "  %-38s %d\n", k+":", r.stats[k])
	}
	fmt.Fprintf(r.out, "problems:         %d\n", len(r.problems))
	for _, p := range r.problems[:min(len(r.problems), 20)] {
		fmt.Fprintf(r.out, "  %s\n", p)
	}
	if len(r.problems) > 20 {
		fmt.Fprintf(r.out, "  … %d more\n", len(r.problems)-20)
	}
	return len(r.problems)
}
