// Package simulate is the bridge's simulate command: it plays calls into a
// running bridge as a provider would, writing each provider's frames with
// that provider's Wire (bridge/provider), and checks what the bridge
// recorded. With --calls above one it is the load tool.
package simulate

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/callcaptions/bridge/bridge/provider"
	"github.com/callcaptions/bridge/cmd/bridge/internal/exitcode"
	"github.com/callcaptions/bridge/config"
)

// Cmd is the simulate command's settings. The bridge's own settings given
// on the same command line (or in BRIDGE_* variables) reach and
// authenticate to it: --addr, --api-token (else the token the bridge keeps in
// <--data>/api-token), --public-url, --twilio-auth-token,
// --media-bearer-token, --provider-bearer-tokens, --media-path-secret,
// --provider-path-secrets, --exotel-basic-auth; and --s3-bucket,
// --s3-prefix, --s3-endpoint, --s3-region, --s3-path-style (with the AWS
// credential chain) make it check the WAVs in the bridge's bucket.
type Cmd struct {
	Provider  string        `name:"provider" default:"twilio" enum:"twilio,signalwire,plivo,vobiz,telnyx,exotel" help:"Provider to play the call as: twilio, signalwire, plivo, vobiz, telnyx or exotel."`
	URL       string        `name:"url" help:"Media WebSocket URL, secret path included (default ws://<--addr>/media/<provider>[/<path secret>])."`
	HTTPURL   string        `name:"http-url" help:"Base URL for the caption socket and the REST checks (default: the scheme and host of --url)."`
	WAV       string        `name:"wav" type:"existingfile" help:"PCM16 WAV to play: mono is the inbound track, stereo is inbound (left) and outbound (right). Default: generated speech-like audio."`
	Duration  time.Duration `name:"duration" default:"20s" help:"Length of the generated audio."`
	Tracks    int           `name:"tracks" default:"2" help:"Tracks of the generated audio: 1 (inbound) or 2 (inbound and outbound)."`
	Encoding  string        `name:"encoding" enum:"auto,pcmu,pcma,l16" default:"auto" help:"Wire codec: pcmu, pcma or l16 (auto: l16 for exotel, pcmu otherwise)."`
	Rate      int           `name:"rate" help:"Sample rate of the generated audio (default 8000; a WAV has its own)."`
	Speed     float64       `name:"speed" default:"1" help:"Playback speed: 1 is real time, 10 ten times faster, 0 as fast as the socket takes it."`
	FrameMs   int           `name:"frame-ms" help:"Audio per media frame in milliseconds (default: the provider's, 20 ms; 100 ms for exotel)."`
	CallID    string        `name:"call-id" help:"Call id (default: random, shaped like the provider's; with --calls, suffixed -1, -2, ...)."`
	Params    []string      `name:"param" sep:"none" placeholder:"KEY=VALUE" help:"Custom parameter sent in the start frame (repeatable)."`
	Headers   []string      `name:"header" sep:"none" placeholder:"'NAME: VALUE'" help:"Extra header on the media socket's upgrade request (repeatable)."`
	Basic     string        `name:"basic" placeholder:"USER:PASS" help:"Authorization: Basic on the media socket (default: --exotel-basic-auth for exotel)."`
	SignURL   string        `name:"sign-url" help:"The wss:// URL X-Twilio-Signature signs (default: --public-url's host with the media path)."`
	Captions  bool          `name:"captions" help:"Print the captions of the call as they arrive."`
	Subscribe bool          `name:"subscribe" default:"true" negatable:"" help:"Subscribe to /ws/captions?call=<id> for every call (needed for caption latency)."`
	Calls     int           `name:"calls" default:"1" help:"Concurrent calls; with more than one this is the load tool."`
	Ramp      time.Duration `name:"ramp" help:"Spread the starts of the calls evenly over this long."`
	PIDs      []string      `name:"pid" placeholder:"[NAME=]PID" help:"Process to report the CPU time and resident memory of (read from /proc): the bridge's, or with NAME= another's, such as nats-server=<pid> (repeatable; each reported on its own)."`
	Replicas  []string      `name:"replicas" placeholder:"HOST:PORT" help:"Bridges to spread the calls over, in turn (comma-separated or repeated; default: --addr). They share the settings given here: the API token, secrets and tokens."`
	Cross     bool          `name:"cross-replica" help:"Follow each call's captions on the next bridge of --replicas, not the one it is played into: in cluster mode (--nats-url) the captions then cross NATS."`
	Verify    bool          `name:"verify" default:"true" negatable:"" help:"After the calls, check each call record and that every WAV holds exactly the audio sent."`
	Seed      uint64        `name:"seed" default:"1" help:"Seed of the generated audio (every call plays the same audio)."`
	Timeout   time.Duration `name:"timeout" default:"1m" help:"How long to wait for the bridge to close a call's socket and end it, after its last frame."`
}

// simRun is one simulate invocation: what every call plays and where.
type simRun struct {
	cmd     Cmd
	d       *provider.Dialect
	audio   *simAudio
	targets []*target // the bridges calls are played into, in turn
	procs   []proc    // processes to measure (--pid)
	bucket  *bucket   // where the WAVs are checked with --s3-bucket; nil: through the bridge
	params  map[string]string
	out     io.Writer
	outMu   sync.Mutex
	stats   simStats
}

// target is one bridge of the run: where its media socket is and how it
// is authenticated, and its REST API and caption socket.
type target struct {
	mediaURL string
	header   http.Header // of the media socket
	client   *Client
}

// proc is a process of --pid.
type proc struct {
	name string // "bridge" unless named
	pid  int
}

// Env is what the command is handed by main.
type Env struct {
	// APIToken finds the token to send to the bridge (--api-token or
	// <--data>/api-token).
	APIToken func() (string, error)
	// S3Client builds the client of the bucket of --s3-bucket, as the
	// bridge does.
	S3Client func(ctx context.Context, c config.S3) (*s3.Client, error)
}

// Run runs the simulate command and returns the exit code: exitcode.OK when
// every call succeeded (and verified), exitcode.Failure when one did not or
// the run failed, exitcode.Usage for bad settings.
func Run(ctx context.Context, cfg config.Config, cmd Cmd, env Env, stdout, stderr io.Writer) int {
	r, err := newSimRun(ctx, cfg, cmd, env, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "bridge simulate:", err)
		return exitcode.Usage
	}
	rep, err := r.run(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "bridge simulate:", err)
		return exitcode.Failure
	}
	rep.print(stdout)
	if rep.failed() > 0 || rep.verifyFailed > 0 {
		return exitcode.Failure
	}
	return exitcode.OK
}

func newSimRun(ctx context.Context, cfg config.Config, cmd Cmd, env Env, out io.Writer) (*simRun, error) {
	p := provider.Name(cmd.Provider)
	d := provider.Lookup(p)
	if d == nil || d.Wire == nil {
		return nil, fmt.Errorf("--provider: %q cannot be simulated (choose one of %s)", cmd.Provider, strings.Join(simDialectNames(), ", "))
	}
	if cmd.Calls < 1 {
		return nil, fmt.Errorf("--calls: want at least 1, got %d", cmd.Calls)
	}
	if cmd.Speed < 0 {
		return nil, fmt.Errorf("--speed: want 0 (as fast as possible) or more, got %g", cmd.Speed)
	}
	tok, err := env.APIToken()
	if err != nil {
		return nil, err
	}
	r := &simRun{cmd: cmd, d: d, out: out, params: map[string]string{}}
	for _, kv := range cmd.Params {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--param: %q is not KEY=VALUE", kv)
		}
		r.params[k] = v
	}

	enc := d.Wire.Encodings[0]
	if cmd.Encoding != "auto" && cmd.Encoding != "" {
		enc = provider.Encoding(strings.ToUpper(cmd.Encoding))
	}
	var (
		pcm   [][]byte
		names []string
		rate  = cmd.Rate
	)
	if cmd.WAV != "" {
		chans, wavRate, err := readWAV(cmd.WAV)
		if err != nil {
			return nil, err
		}
		if rate != 0 && rate != wavRate {
			return nil, fmt.Errorf("--rate %d differs from the WAV's %d Hz (the simulator does not resample)", rate, wavRate)
		}
		rate = wavRate
		pcm, names = chans, []string{provider.TrackInbound, provider.TrackOutbound}[:len(chans)]
	} else {
		if rate == 0 {
			rate = 8000
			if enc == provider.L16 && d.Wire.L16Rates[0] != 8000 {
				rate = d.Wire.L16Rates[0]
			}
		}
		if cmd.Tracks != 1 && cmd.Tracks != 2 {
			return nil, fmt.Errorf("--tracks: want 1 or 2, got %d", cmd.Tracks)
		}
		if cmd.Duration < time.Second {
			return nil, fmt.Errorf("--duration: want at least 1s, got %s", cmd.Duration)
		}
		names = []string{provider.TrackInbound, provider.TrackOutbound}[:cmd.Tracks]
		for i := range names {
			pcm = append(pcm, SpeechLike(rate, cmd.Duration, cmd.Seed+uint64(i)))
		}
	}
	if len(names) == 2 && !d.Wire.Stereo {
		fmt.Fprintf(out, "note: %s does not announce tracks in its start frame, so the bridge takes its stream as inbound only; playing the inbound track only\n", p)
		names, pcm = names[:1], pcm[:1]
	}
	if err := d.CheckFormat(enc, rate); err != nil {
		return nil, err
	}
	bigEndian := d.Order == provider.BigEndian // little-endian is what the bridge assumes without evidence
	if o, ok := cfg.Providers.ByteOrders()[string(p)]; ok {
		bigEndian = o == "be"
	}
	frameMs := d.Wire.FrameMs
	if cmd.FrameMs != 0 {
		if cmd.FrameMs < 10 || cmd.FrameMs > 1000 || cmd.FrameMs%10 != 0 {
			return nil, fmt.Errorf("--frame-ms: want 10 to 1000 in steps of 10, got %d", cmd.FrameMs)
		}
		frameMs = cmd.FrameMs
	}
	a, err := prepareAudio(names, pcm, rate, enc, bigEndian, rate*frameMs/1000)
	if err != nil {
		return nil, err
	}
	r.audio = a

	hosts := slices.DeleteFunc(slices.Clone(cmd.Replicas), func(h string) bool { return strings.TrimSpace(h) == "" })
	switch {
	case len(hosts) > 1 && (cmd.URL != "" || cmd.HTTPURL != ""):
		return nil, errors.New("--url, --http-url: name one bridge; with several --replicas the URLs are made from each one's host:port")
	case cmd.Cross && len(hosts) < 2:
		return nil, fmt.Errorf("--cross-replica: want at least two --replicas, got %d", len(hosts))
	case len(hosts) == 0:
		hosts = []string{""} // --url, else --addr
	}
	for _, h := range hosts {
		t, err := newTarget(cfg, cmd, p, strings.TrimSpace(h), tok)
		if err != nil {
			return nil, err
		}
		r.targets = append(r.targets, t)
	}
	for _, s := range cmd.PIDs {
		name, n, ok := strings.Cut(s, "=")
		if !ok {
			name, n = "bridge", s
		}
		pid, err := strconv.Atoi(n)
		if err != nil || pid <= 0 || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("--pid: %q is not [NAME=]PID (e.g. 1234 or nats-server=1234)", s)
		}
		r.procs = append(r.procs, proc{name: name, pid: pid})
	}
	if cfg.S3.Enabled() && cmd.Verify {
		client, err := env.S3Client(ctx, cfg.S3)
		if err != nil {
			return nil, err
		}
		r.bucket = &bucket{client: client, name: cfg.S3.Bucket, prefix: cfg.S3.Prefix}
	}
	return r, nil
}

// newTarget is the bridge at host (host:port; empty: --url, else --addr)
// as the calls reach it: its media URL, the media socket's headers, its
// REST client.
func newTarget(cfg config.Config, cmd Cmd, p provider.Name, host, tok string) (*target, error) {
	t := &target{mediaURL: cmd.URL, header: http.Header{}}
	if host != "" {
		if _, port, err := net.SplitHostPort(host); err != nil || port == "" {
			return nil, fmt.Errorf("--replicas: %q is not host:port", host)
		}
		t.mediaURL = ""
	} else {
		host = cfg.Addr
	}
	if t.mediaURL == "" {
		if h, port, err := net.SplitHostPort(host); err == nil && (h == "" || h == "0.0.0.0" || h == "::") {
			host = net.JoinHostPort("127.0.0.1", port)
		}
		t.mediaURL = "ws://" + host + "/media/" + string(p)
		if s := perProvider(cfg.Providers.ProviderPathSecrets, p, cfg.Providers.MediaPathSecret); s != "" {
			t.mediaURL += "/" + url.PathEscape(s)
		}
	}
	mu, err := url.Parse(t.mediaURL)
	if err != nil || (mu.Scheme != "ws" && mu.Scheme != "wss") || mu.Host == "" {
		return nil, fmt.Errorf("--url: %q is not a ws:// or wss:// URL", t.mediaURL)
	}
	httpBase := cmd.HTTPURL
	if httpBase == "" {
		httpBase = "http" + strings.TrimPrefix(mu.Scheme, "ws") + "://" + mu.Host
	}
	t.client = &Client{Base: strings.TrimSuffix(httpBase, "/"), Token: tok, HTTP: &http.Client{Timeout: time.Minute}}
	for _, h := range cmd.Headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("--header: %q is not 'Name: value'", h)
		}
		t.header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	bearer := perProvider(cfg.Providers.ProviderBearerTokens, p, cfg.Providers.MediaBearerToken)
	if bearer != "" && t.header.Get("Authorization") == "" {
		t.header.Set("Authorization", "Bearer "+bearer)
	}
	basic := cmd.Basic
	if basic == "" && p == provider.Exotel {
		basic = cfg.Providers.ExotelBasicAuth
	}
	if basic == "" && mu.User != nil { // wss://user:pass@host/…, as Exotel is configured
		basic = mu.User.String()
		if u, err := url.PathUnescape(basic); err == nil {
			basic = u
		}
		mu.User = nil
		t.mediaURL = mu.String()
	}
	if basic != "" {
		t.header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(basic)))
	}
	if tok := cfg.Providers.TwilioAuthToken; tok != "" && p == provider.Twilio {
		t.header.Set("X-Twilio-Signature", twilioSignature(tok, signedURL(cfg, cmd.SignURL, mu)))
	}
	return t, nil
}

// perProvider is p's own value of a per-provider setting (a path secret, a
// bearer token), else the value for every provider.
func perProvider(own map[string]string, p provider.Name, all string) string {
	if v := own[string(p)]; v != "" {
		return v
	}
	return all
}

// signedURL is the URL Twilio signs: the wss:// URL it dialled, which is
// the bridge's public URL with the media path (and any proxy prefix).
func signedURL(cfg config.Config, explicit string, media *url.URL) string {
	if explicit != "" {
		return explicit
	}
	pub, err := url.Parse(strings.TrimSuffix(cfg.PublicURL, "/"))
	if cfg.PublicURL == "" || err != nil || pub.Host == "" {
		return media.String()
	}
	scheme := "wss"
	if pub.Scheme == "http" {
		scheme = "ws"
	}
	path := media.EscapedPath()
	if prefix := strings.TrimSuffix(pub.Path, "/"); prefix != "" && !strings.HasPrefix(path, prefix+"/") {
		path = prefix + path
	}
	s := scheme + "://" + pub.Host + path
	if media.RawQuery != "" {
		s += "?" + media.RawQuery
	}
	return s
}

// callID is the id of call i (from 0) of the run.
func (r *simRun) callID(i int) string {
	base := r.cmd.CallID
	if base == "" {
		base = r.d.Wire.NewIDs().Call
	}
	if r.cmd.Calls == 1 {
		return base
	}
	return fmt.Sprintf("%s-%d", base, i+1)
}

// run plays every call and gathers the report.
func (r *simRun) run(ctx context.Context) (*simReport, error) {
	rep := &simReport{run: r}
	stops := make([]func() []procSample, len(r.procs))
	for i, p := range r.procs {
		if _, err := readProc(p.pid); err != nil {
			for _, stop := range stops[:i] {
				stop()
			}
			return nil, fmt.Errorf("--pid %d: %w", p.pid, err)
		}
		stops[i] = watchProc(p.pid, 250*time.Millisecond)
	}
	if r.bucket != nil {
		if err := r.bucket.check(ctx); err != nil {
			for _, stop := range stops {
				stop()
			}
			return nil, fmt.Errorf("--s3-bucket: %w", err)
		}
	}
	rep.selfBefore, _ = readProc(os.Getpid())
	rep.loadBefore = loadAverage()
	rep.results = make([]callResult, r.cmd.Calls)
	rep.start = time.Now()
	var wg sync.WaitGroup
	for i := range rep.results {
		id, at := r.callID(i), rep.start.Add(r.cmd.Ramp*time.Duration(i)/time.Duration(r.cmd.Calls))
		wg.Go(func() {
			select {
			case <-time.After(time.Until(at)):
				rep.results[i] = r.playCall(ctx, i, id)
			case <-ctx.Done():
				rep.results[i] = callResult{id: id, replica: r.replicaOf(i), err: ctx.Err()}
			}
		})
	}
	wg.Wait()
	rep.end = time.Now()
	rep.selfAfter, _ = readProc(os.Getpid())
	rep.loadAfter = loadAverage()
	for i, stop := range stops {
		pr := procRun{proc: r.procs[i], samples: stop()}
		if n := len(pr.samples); n > 0 {
			pr.before, pr.after = pr.samples[0], pr.samples[n-1]
		}
		rep.procs = append(rep.procs, pr)
	}
	if r.cmd.Verify {
		rep.verify(ctx)
	}
	return rep, nil
}

// replicaOf is the index in targets of the bridge call i (from 0) is
// played into: the replicas take the calls in turn.
func (r *simRun) replicaOf(i int) int { return i % len(r.targets) }

// captionsOf is the index in targets of the bridge call i's captions are
// followed on: the one it is played into, or with --cross-replica the
// next.
func (r *simRun) captionsOf(i int) int {
	if r.cmd.Cross {
		return (i + 1) % len(r.targets)
	}
	return r.replicaOf(i)
}

// logf prints a line of the run (captions, notes) without interleaving.
func (r *simRun) logf(format string, a ...any) {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	fmt.Fprintf(r.out, format, a...)
}

// simDialectNames are the providers the simulator can play (those with a
// frame writer), for help and errors.
func simDialectNames() []string {
	var out []string
	for _, n := range provider.Names {
		if provider.Lookup(n).Wire != nil {
			out = append(out, string(n))
		}
	}
	return out
}

// twilioSignature is X-Twilio-Signature for a WebSocket upgrade: the
// base64 HMAC-SHA1 of the wss:// URL, keyed with the account's auth token
// (a GET has no parameters to append).
func twilioSignature(authToken, wssURL string) string {
	return base64.StdEncoding.EncodeToString(provider.TwilioMAC(authToken, wssURL, nil))
}
