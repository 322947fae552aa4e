package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/cluster"
	"github.com/callcaptions/bridge/bridge/webhook"
	"github.com/callcaptions/bridge/config"
	"github.com/callcaptions/bridge/recorder"
	"github.com/callcaptions/bridge/recorder/s3store"
	"github.com/callcaptions/bridge/stt"
	"github.com/callcaptions/bridge/stt/mock"
	"github.com/callcaptions/bridge/stt/session"
	"github.com/callcaptions/bridge/web"
)

// instance is a running bridge.
type instance struct {
	addr     string // the address it listens on
	reg      *bridge.Registry
	hub      *web.Hub
	syncer   *recorder.Syncer   // nil: --fsync-interval 0
	objects  *s3store.Store     // nil: no --s3-bucket
	cluster  *cluster.Cluster   // nil: no --nats-url
	webhooks *webhook.Publisher // nil: no --webhook-url
	draining atomic.Bool
	done     chan error // receives the server's exit
}

// serve runs the bridge until ctx is done, then shuts down gracefully: not
// ready, no new calls, live calls drain until the shutdown timeout and then
// end with reason shutdown, every recording and document is complete. A
// second signal during the drain exits at once. started, if not nil,
// receives the instance once it listens.
func serve(ctx context.Context, cfg config.Config, log zerolog.Logger, stdout io.Writer, started chan<- *instance) error {
	tokenFile := ""
	if cfg.APIToken == "" && !cfg.AllowAnonymous {
		tok, created, err := ensureAPIToken(cfg.Data)
		if err != nil {
			return err
		}
		cfg.APIToken, tokenFile = tok, tokenPath(cfg.Data)
		log.Info().Str("file", tokenFile).Bool("created", created).Msg("API token kept in the data directory; the start-up link carries it")
	}
	inst, app, ln, closeSTT, err := build(cfg, log)
	if err != nil {
		return err
	}
	defer closeSTT()
	if inst.syncer != nil {
		syncing := runBeside(inst.syncer.Run)
		defer func() { _ = syncing.stop(context.Background()) }() // after the calls have drained: a last round then
	}
	up := runUploads(inst.objects)
	defer func() { _ = up.stop(context.Background()) }() // after an early return; the graceful path stops it below
	shared := runCluster(inst.cluster)
	defer func() { _ = shared.stop(context.Background()) }() // after the calls have drained: their last events are sent
	hooks := runWebhooks(inst.webhooks)
	defer func() { _ = hooks.stop(context.Background()) }() // likewise: the calls' last events reach the outbox
	go func() { inst.done <- app.Listener(ln) }()
	printBanner(stdout, cfg, inst.addr, tokenFile)
	warnAnonymous(log, cfg)
	warnOpen(log, cfg)
	if started != nil {
		started <- inst
	}
	select {
	case err := <-inst.done:
		return err
	case <-ctx.Done():
	}
	log.Info().Dur("timeout", cfg.Limits.ShutdownTimeout).Int("active_calls", inst.reg.Active()).Msg("shutting down: draining live calls")
	inst.draining.Store(true)

	// A second signal forces the exit.
	force, stopForce := signalContext(context.Background())
	defer stopForce()
	drainCtx, cancel := context.WithTimeout(force, cfg.Limits.ShutdownTimeout)
	defer cancel()
	drained := make(chan struct{})
	go func() { inst.reg.Shutdown(drainCtx); close(drained) }()
	select {
	case <-drained:
	case <-force.Done():
		return errForced
	}
	inst.cluster.StopRelays(bridge.ReasonShutdown)
	inst.hub.Close()
	_ = app.ShutdownWithTimeout(5 * time.Second)
	if err := up.stop(force); err != nil {
		return err
	}
	log.Info().Msg("shutdown complete")
	return nil
}

// build assembles the bridge from its configuration.
func build(cfg config.Config, log zerolog.Logger) (*instance, interface {
	Listener(net.Listener) error
	ShutdownWithTimeout(time.Duration) error
}, net.Listener, func(), error) {
	store, err := recorder.NewStore(cfg.Data)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("data directory %s: %w", cfg.Data, err)
	}
	hub := web.NewHub(web.HubConfig{
		Outbox: cfg.Limits.SubscriberQueue, WaitTimeout: cfg.Limits.SubscriberWait,
		MaxSubscribers: cfg.Limits.MaxSubscribers, MaxPerCall: cfg.Limits.MaxSubscribersCall,
		MaxReplayBytes: cfg.Limits.MaxReplayBytes,
	}, log.With().Str("component", "hub").Logger())
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	bridgeMetrics := bridge.NewMetrics(registry)
	metrics := web.NewMetrics(registry, hub, bridgeMetrics)
	var syncer *recorder.Syncer
	if cfg.FsyncInterval > 0 {
		syncer = recorder.NewSyncer(cfg.FsyncInterval, recorder.SyncReport(registry, log.With().Str("component", "recorder").Logger()))
		store.SyncWith(syncer)
	}
	objects, err := newObjectStore(cfg, store, registry, log)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	clust, err := newCluster(cfg, hub, registry, log)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	failures := &webhookFailures{log: log}
	hooks, err := newWebhooks(cfg, registry, failures.failed, log)
	if err != nil {
		clust.Close()
		return nil, nil, nil, nil, err
	}
	rec, closeSTT, err := newRecognizer(cfg, log, session.NewMetrics(registry))
	if err != nil {
		clust.Close()
		return nil, nil, nil, nil, err
	}
	calls := storeOf(store, objects)
	reg := bridge.NewRegistry(bridge.Config{
		Store: withIndex(calls, clust), Recognizer: rec, Publisher: withWebhooks(withCluster(publishersOf(hub, objects), clust), hooks), Metrics: bridgeMetrics, Log: log,
		MaxCalls: cfg.Limits.MaxCalls, MaxStreamsPerCall: cfg.Limits.MaxStreamsPerCall,
		MaxCallDuration: cfg.Limits.MaxCallDuration, MaxGap: cfg.Limits.MaxGap,
		ReconnectGrace: cfg.Limits.ReconnectGrace, STTQueue: cfg.Limits.STTQueue, MaxEventsPerCall: cfg.Limits.MaxEventsPerCall,
		ByteOrder: byteOrders(cfg.Providers), ReorderFrames: offIfZero(cfg.Providers.ReorderFrames),
		ResumeWindow: offIfZero(cfg.Limits.ResumeWindow), BaseURL: cfg.PublicURL, ObjectURL: objectURL(cfg),
		InlineTranscript: offIfZero(cfg.Webhook.InlineMax),
	})
	failures.set(reg)
	interrupted, err := reg.Load()
	if err != nil {
		closeSTT()
		clust.Close()
		return nil, nil, nil, nil, fmt.Errorf("read stored calls: %w", err)
	}
	if interrupted > 0 {
		log.Warn().Int("calls", interrupted).Msg("calls interrupted by the last stop were repaired and marked interrupted")
	}
	inst := &instance{reg: reg, hub: hub, syncer: syncer, objects: objects, cluster: clust, webhooks: hooks, done: make(chan error, 1)}
	app := web.NewApp(web.Config{
		APIToken: cfg.APIToken, PublicURL: cfg.PublicURL,
		AllowAnonymous: cfg.AllowAnonymous && cfg.APIToken == "", AllowedHosts: allowedHosts(cfg),
		MaxMessageBytes: cfg.Limits.MaxMessageBytes, IdleTimeout: cfg.Limits.IdleTimeout, Auth: webAuth(cfg.Providers),
		InboundLabel: cfg.Dashboard.InboundLabel, OutboundLabel: cfg.Dashboard.OutboundLabel,
		StartTimeout: cfg.Limits.StartTimeout, MaxPendingStreams: cfg.Limits.MaxPendingStreams,
		MaxSocketsPerAddress: offIfZero(cfg.Limits.MaxSocketsPerAddress), MediaBatch: offIfZero(cfg.Providers.MediaBatch),
	}, web.Deps{Registry: webRegistry(reg, clust, calls, objects), Streams: streamsOf(clust, reg), Hub: hub, Log: log, Metrics: metrics, Gatherer: registry, Ready: func() bool { return !inst.draining.Load() }, NATS: natsState(clust)})
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		closeSTT()
		clust.Close()
		return nil, nil, nil, nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	inst.addr = ln.Addr().String()
	return inst, app, web.BatchListener(ln), closeSTT, nil
}

// offIfZero maps a setting whose 0 means off to the components' negative
// off (their zero is the default).
func offIfZero[T int | time.Duration](v T) T {
	if v == 0 {
		return -1
	}
	return v
}

// newRecognizer builds the configured speech-to-text engine.
func newRecognizer(cfg config.Config, log zerolog.Logger, m *session.Metrics) (stt.Recognizer, func(), error) {
	switch cfg.STT {
	case "google":
		r, err := newGoogle(cfg, log, m)
		if err != nil {
			return nil, nil, err
		}
		return r, func() { _ = r.Close() }, nil
	case "mock":
		mc := mock.Config{FailAfter: cfg.Mock.FailAfter, Latency: cfg.Mock.Latency}
		if cfg.Mock.Script != "" {
			lines, err := mock.LoadScript(cfg.Mock.Script)
			if err != nil {
				return nil, nil, fmt.Errorf("--mock-script: %w", err)
			}
			mc.Script = lines
		}
		return mock.New(mc), func() {}, nil
	}
	return nil, nil, fmt.Errorf("--stt %q is not available in this build", cfg.STT)
}

// allowedHosts are the Host names the dashboard, the API and the caption
// sockets answer besides loopback and the public URL's: --allowed-hosts
// and the host of --addr when it is a specific address.
func allowedHosts(cfg config.Config) []string {
	hosts := append([]string(nil), cfg.AllowedHosts...)
	if h, _, err := net.SplitHostPort(cfg.Addr); err == nil && h != "" && h != "0.0.0.0" && h != "::" {
		hosts = append(hosts, h)
	}
	return hosts
}

// warnAnonymous says at every start, in the log, that --allow-anonymous
// serves everything to everyone.
func warnAnonymous(log zerolog.Logger, cfg config.Config) {
	if !cfg.AllowAnonymous || cfg.APIToken != "" {
		return
	}
	log.Warn().Str("fix", "drop --allow-anonymous (a token is then generated) or set --api-token").
		Msg("--allow-anonymous: the dashboard, REST API and caption sockets need no token; every recording, transcript and live caption is readable by anyone who can reach the port")
}

// printBanner tells a new user where to point a provider and where to look.
// tokenFile is set when the API token was generated and kept there.
func printBanner(w io.Writer, cfg config.Config, addr, tokenFile string) {
	local := "http://" + addr
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		port = addr
	} else if host == "0.0.0.0" || host == "::" || host == "" {
		local = "http://127.0.0.1:" + port
	}
	dash := local + "/"
	switch {
	case cfg.APIToken == "":
	case tokenFile != "" || isTerminal(w):
		// A token given by the operator goes into the link only on a
		// terminal: a service's stdout ends up in its logs, and a secret
		// from the operator's store is never logged. A generated token
		// is printed as Jupyter does: this link is how the operator
		// learns it (docker logs), and it is never in the JSON log.
		dash += "?token=" + cfg.APIToken
	default:
		dash += "?token=<your --api-token>"
	}
	media := "ws" + strings.TrimPrefix(local, "http") + "/media"
	if cfg.PublicURL != "" {
		media = "wss" + strings.TrimPrefix(strings.TrimPrefix(strings.TrimSuffix(cfg.PublicURL, "/"), "https"), "http") + "/media"
	}
	fmt.Fprintf(w, "bridge listening on %s (speech-to-text: %s, data: %s)\n", addr, cfg.STT, cfg.Data)
	fmt.Fprintf(w, "  dashboard:     %s\n", dash)
	switch {
	case cfg.APIToken == "":
		fmt.Fprintf(w, "  WARNING:       --allow-anonymous: the dashboard, API, recordings, transcripts and captions are\n")
		fmt.Fprintf(w, "                 readable by ANYONE who can reach this port\n")
	case tokenFile != "":
		fmt.Fprintf(w, "  API token:     kept in %s (send it as Authorization: Bearer <token>, or open the link above)\n", tokenFile)
	}
	fmt.Fprintf(w, "  API:           %s/api/calls\n", local)
	fmt.Fprintf(w, "  media streams: %s  (or %s/<provider>)\n", media, media)
	if cfg.PublicURL == "" {
		fmt.Fprintf(w, "  providers cannot reach this address: expose it (e.g. `ngrok http %s`) and pass --public-url https://<your-host>\n", port)
	}
	printAuth(w, cfg, local)
}

// isTerminal reports whether w is a terminal (not a pipe, file or buffer).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
