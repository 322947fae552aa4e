package web

import (
	"cmp"
	"embed"
	"errors"
	"io/fs"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/filesystem"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/provider"
)

//go:embed static
var staticFiles embed.FS

// Config is the HTTP side of the bridge. Zero values take their Defaults.
type Config struct {
	// APIToken protects the dashboard, the REST API and the caption
	// sockets. Empty: they refuse every request, unless AllowAnonymous.
	APIToken string
	// AllowAnonymous serves the dashboard, the REST API and the caption
	// sockets to anyone when no APIToken is set.
	AllowAnonymous bool
	// AllowedHosts are the Host names the dashboard, the REST API and the
	// caption sockets answer besides loopback names and the PublicURL
	// host; "*" allows any. Other Hosts get 403 (DNS rebinding).
	AllowedHosts []string
	// PublicURL is the https:// base URL providers and browsers reach.
	PublicURL string
	// MaxMessageBytes bounds one WebSocket message on a media socket.
	MaxMessageBytes int
	// IdleTimeout ends a media stream that sends nothing for this long.
	IdleTimeout time.Duration
	// AllowedOrigins may open caption sockets besides the bridge's own
	// origin (PublicURL and the Host the page was served from).
	AllowedOrigins []string
	// BodyLimit bounds HTTP request bodies.
	BodyLimit int
	// Auth protects the media sockets and the provider webhooks (see Auth).
	Auth Auth
	// InboundLabel and OutboundLabel name the tracks for people on the
	// dashboard and in caption files.
	InboundLabel, OutboundLabel string
	// Version is shown on the dashboard (default: from the build info).
	Version string
	// StartTimeout closes a media socket that sends no start frame for
	// this long after it opened.
	StartTimeout time.Duration
	// MaxPendingStreams bounds the media sockets open that have not sent
	// their start frame.
	MaxPendingStreams int
	// MaxSocketsPerAddress bounds the media sockets, and separately the
	// caption sockets, open from one remote address (negative: no cap).
	MaxSocketsPerAddress int
	// MediaBatch is how much of a started stream's traffic its socket lets
	// queue before its reader wakes (negative: every frame as it comes).
	// Frames are read at most this late; sockets accepted through
	// BatchListener only.
	MediaBatch time.Duration
}

// Defaults are the values zero fields of Config take. The command line
// shows the same ones: config reads them from here.
func Defaults() Config {
	return Config{
		MaxMessageBytes: 256 << 10, IdleTimeout: 30 * time.Second, BodyLimit: 1 << 20,
		InboundLabel: "Caller", OutboundLabel: "Agent",
		StartTimeout: 5 * time.Second, MaxPendingStreams: 256, MaxSocketsPerAddress: 1000,
		MediaBatch: 40 * time.Millisecond,
	}
}

func (c *Config) defaults() {
	d := Defaults()
	c.MaxMessageBytes = cmp.Or(c.MaxMessageBytes, d.MaxMessageBytes)
	c.IdleTimeout = cmp.Or(c.IdleTimeout, d.IdleTimeout)
	c.BodyLimit = cmp.Or(c.BodyLimit, d.BodyLimit)
	c.InboundLabel = cmp.Or(c.InboundLabel, d.InboundLabel)
	c.OutboundLabel = cmp.Or(c.OutboundLabel, d.OutboundLabel)
	c.StartTimeout = cmp.Or(c.StartTimeout, d.StartTimeout)
	c.MaxPendingStreams = cmp.Or(c.MaxPendingStreams, d.MaxPendingStreams)
	c.MaxSocketsPerAddress = cmp.Or(c.MaxSocketsPerAddress, d.MaxSocketsPerAddress)
	c.MediaBatch = cmp.Or(c.MediaBatch, d.MediaBatch)
	if c.Version == "" {
		c.Version = buildVersion()
	}
}

// Registry is what the HTTP side uses of the bridge's registry;
// *bridge.Registry implements it. The REST handlers' part is CallReader
// (rest.go).
type Registry interface {
	// Admit and Active decide whether a new call is taken (media sockets,
	// /readyz).
	Admit() error
	Active() int
	// StartStream hands a media stream that sent its start frame to its call.
	StartStream(p provider.Name, st *provider.Start) (*bridge.Stream, error)
	// AttachCallback keeps a provider's status callback with its call.
	AttachCallback(callID string, cb map[string]any) (string, error)
	CallReader
}

var _ Registry = (*bridge.Registry)(nil)

// Deps are the components the HTTP side serves.
type Deps struct {
	Registry Registry
	// Streams starts media streams; nil: Registry's, in this process.
	Streams Streams
	Hub     *Hub
	Log     zerolog.Logger
	// Metrics may be nil (a private set is made); Gatherer is what
	// /metrics exports (nil: nothing).
	Metrics  *Metrics
	Gatherer prometheus.Gatherer
	// Ready reports whether the bridge takes new calls (false while
	// draining for shutdown). Nil: always ready.
	Ready func() bool
	// NATS reports whether the connection of cluster mode is up, for
	// /readyz to show. Nil: no cluster mode.
	NATS func() bool
}

// Server holds the HTTP handlers and what they need.
type Server struct {
	cfg   Config
	reg   Registry
	strm  Streams // Deps.Streams; nil: reg starts media streams
	hub   *Hub
	log   zerolog.Logger
	ready func() bool
	nats  func() bool // nil: no cluster mode
	metr  *Metrics
	hosts hostPolicy
	// authLog is sampled: refused sockets and webhooks can come in floods.
	authLog zerolog.Logger
	// pendingStarts counts media sockets that have not sent their start
	// frame (bounded by MaxPendingStreams, see serveMedia).
	pendingStarts atomic.Int64
	sockets       *addressCaps
}

// socketReadBuffer is a WebSocket's own read buffer: room for a frame
// header and a control frame (at most 125 bytes of payload), above
// fasthttp's request reader.
const socketReadBuffer = 512

// NewApp builds the Fiber app: media sockets, caption sockets, REST API,
// health and the dashboard.
func NewApp(cfg Config, deps Deps) *fiber.App {
	cfg.defaults()
	s := &Server{cfg: cfg, reg: deps.Registry, hub: deps.Hub, log: deps.Log.With().Str("component", "web").Logger(), ready: deps.Ready, nats: deps.NATS,
		metr: deps.Metrics, hosts: newHostPolicy(cfg.PublicURL, cfg.AllowedHosts), sockets: newAddressCaps(cfg.MaxSocketsPerAddress)}
	if s.metr == nil {
		s.metr = NewMetrics(nil, deps.Hub, nil)
	}
	s.strm = deps.Streams
	if deps.Gatherer == nil {
		deps.Gatherer = prometheus.NewRegistry()
	}
	if s.ready == nil {
		s.ready = func() bool { return true }
	}
	app := fiber.New(fiber.Config{
		DisableStartupMessage: true,
		BodyLimit:             cfg.BodyLimit,
		ReadBufferSize:        16 << 10, // room for long signed URLs and cookies in headers
		ErrorHandler:          s.errorHandler,
		IdleTimeout:           2 * time.Minute,
	})
	app.Use(s.recoverHTTP, securityHeaders)

	app.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	app.Get("/readyz", s.readyz)
	app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(deps.Gatherer, promhttp.HandlerOpts{})))

	// Socket buffers are held for the whole call, per socket. fasthttp's
	// request reader (ReadBufferSize above) stays under every upgraded
	// connection and already batches the socket's reads, so a socket's own
	// read buffer only needs to hold frame headers: anything larger is read
	// straight into the caller's buffer. Write buffers are taken from a
	// pool for the length of one message: media sockets only ever write a
	// close frame, caption sockets a small event now and then.
	media := websocket.New(s.serveMedia, websocket.Config{
		ReadBufferSize:  socketReadBuffer,
		WriteBufferSize: 512,
		WriteBufferPool: &sync.Pool{},
		RecoverHandler:  s.recoverSocket,
	})
	for _, path := range []string{"/media", "/media/:provider", "/media/s/:secret", "/media/:provider/:secret"} {
		app.Get(path, s.admitMedia, media)
	}
	s.providerRoutes(app)

	// Health and metrics answer any Host: load balancers and Prometheus
	// reach them by IP. Media sockets and provider webhooks come through
	// proxies under names of their own and carry their own credentials.
	api := app.Group("/api", s.checkHost, s.requireToken)
	api.Get("/calls", s.listCalls)
	api.Get("/config", s.getConfig)
	api.Get("/calls/:id", s.getCall)
	api.Get("/calls/:id/transcript.vtt", s.serveCaptions(formatVTT))
	api.Get("/calls/:id/transcript.srt", s.serveCaptions(formatSRT))
	api.Get("/calls/:id/transcript", s.getTranscript)
	api.Get("/calls/:id/recordings/:file", s.getRecording)

	if s.hub != nil {
		app.Get("/ws/captions", s.checkHost, s.requireToken, s.checkOrigin, s.capAddress(kindCaptions), websocket.New(s.serveCaptionSocket, websocket.Config{
			ReadBufferSize:  socketReadBuffer,
			WriteBufferSize: 4096, // most events fit in one frame
			WriteBufferPool: &sync.Pool{},
			RecoverHandler:  s.recoverSocket,
		}))
	}

	sub, _ := fs.Sub(staticFiles, "static")
	app.Use("/", s.checkHost, s.requireToken, filesystem.New(filesystem.Config{Root: http.FS(sub), Index: "index.html", MaxAge: 0}))
	return app
}

// readyz says whether the bridge takes new calls and, in cluster mode,
// whether NATS is connected. A replica without NATS still takes calls
// (they are recorded and captioned on it; only other replicas miss their
// captions), so a NATS outage alone does not take every replica out of
// service at once.
func (s *Server) readyz(c *fiber.Ctx) error {
	if !s.ready() {
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "draining"})
	}
	body := fiber.Map{"status": "ready", "active_calls": s.reg.Active()}
	if s.nats != nil {
		body["nats"] = "disconnected"
		if s.nats() {
			body["nats"] = "connected"
		}
	}
	return c.JSON(body)
}

// securityHeaders applies to every response: no framing, no sniffing, a
// strict content security policy for the dashboard.
func securityHeaders(c *fiber.Ctx) error {
	h := &c.Response().Header
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; media-src 'self' blob:; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	return c.Next()
}

type apiError struct {
	Error string `json:"error"`
}

func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	code := fiber.StatusInternalServerError
	var fe *fiber.Error
	if errors.As(err, &fe) {
		code = fe.Code
	}
	if code == fiber.StatusRequestHeaderFieldsTooLarge || code == fiber.StatusRequestEntityTooLarge {
		// The rest of the request may still be arriving: the answer must
		// reach the client before its connection closes.
		if bc := batchConnOf(c.Context().Conn()); bc != nil {
			bc.lingerOnClose()
		}
	}
	if code >= 500 && err != errRecovered { // a recovered panic was logged with its stack
		s.log.Error().Err(err).Str("path", redactPath(c.Path())).Msg("request failed")
	}
	if wantsPage(c) {
		return errorHTML(c, code, err.Error())
	}
	return c.Status(code).JSON(apiError{Error: err.Error()})
}

// recoverSocket is the RecoverHandler of the media and caption sockets,
// whose handlers run outside Fiber's middleware: a panic closes that socket
// only, and is counted and logged with its stack.
func (s *Server) recoverSocket(c *websocket.Conn) {
	if r := recover(); r != nil {
		s.panicked(PanicSocket, r, debug.Stack()).Str("remote", c.IP()).Msg("socket handler panicked; connection closed")
		_ = writeClose(c, websocket.CloseInternalServerErr, "internal error", time.Second)
	}
}

// TokenCookie is the cookie the dashboard keeps the API token in.
const TokenCookie = "bridge_token"

// requireToken lets a request through when it carries the token
// (Authorization: Bearer, ?token=, or the cookie), or when the bridge was
// explicitly opened with AllowAnonymous. Without a token configured it
// refuses everything: nothing is served anonymously by default. A valid
// ?token= on a page load is moved into an HttpOnly cookie so the link
// printed at start-up works once and the token leaves the address bar.
func (s *Server) requireToken(c *fiber.Ctx) error {
	if s.cfg.APIToken == "" {
		if s.cfg.AllowAnonymous {
			return c.Next()
		}
		s.metr.AuthFailure(SchemeAPIToken)
		return fiber.NewError(fiber.StatusUnauthorized, "no API token is configured on this bridge: set --api-token (or --allow-anonymous to serve everyone)")
	}
	if q := c.Query("token"); q != "" && s.tokenOK(q) {
		if c.Method() == fiber.MethodGet && !strings.HasPrefix(c.Path(), "/api/") && !websocket.IsWebSocketUpgrade(c) {
			c.Cookie(&fiber.Cookie{Name: TokenCookie, Value: q, Path: "/", HTTPOnly: true, SameSite: "Strict", Secure: c.Protocol() == "https"})
			return c.Redirect(c.Path(), fiber.StatusSeeOther)
		}
		return c.Next()
	}
	if auth := c.Get(fiber.HeaderAuthorization); strings.HasPrefix(auth, "Bearer ") && s.tokenOK(strings.TrimPrefix(auth, "Bearer ")) {
		return c.Next()
	}
	if ck := c.Cookies(TokenCookie); ck != "" && s.tokenOK(ck) {
		return c.Next()
	}
	s.metr.AuthFailure(SchemeAPIToken)
	return fiber.NewError(fiber.StatusUnauthorized, "a valid API token is required (Authorization: Bearer <token>, ?token=, or open the link printed at start-up)")
}

// tokenOK compares in constant time, the length included (equalSecret
// hashes both sides first).
func (s *Server) tokenOK(got string) bool {
	return equalSecret(got, s.cfg.APIToken)
}

// checkOrigin refuses caption sockets opened by pages of other origins
// (browsers always send Origin on WebSocket upgrades; other clients may
// omit it).
func (s *Server) checkOrigin(c *fiber.Ctx) error {
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" || s.originAllowed(origin, c) {
		return c.Next()
	}
	s.metr.AuthFailure(SchemeOrigin)
	return fiber.NewError(fiber.StatusForbidden, "origin "+origin+" may not open caption sockets")
}

func (s *Server) originAllowed(origin string, c *fiber.Ctx) bool {
	// The page's own origin counts only under one of the bridge's names: a
	// page of a rebound name is of its own origin too.
	self := origin == c.Protocol()+"://"+c.Hostname() || origin == "http://"+c.Hostname() || origin == "https://"+c.Hostname()
	if self && s.hosts.allows(string(c.Request().Header.Host())) {
		return true
	}
	if s.cfg.PublicURL != "" && strings.TrimSuffix(s.cfg.PublicURL, "/") == origin {
		return true
	}
	for _, o := range s.cfg.AllowedOrigins {
		if o == "*" || o == origin {
			return true
		}
	}
	return false
}

// admitMedia runs before a media socket is upgraded: it refuses what
// cannot be served while it is still cheap (no socket, nothing recorded).
func (s *Server) admitMedia(c *fiber.Ctx) error {
	if !websocket.IsWebSocketUpgrade(c) {
		return fiber.NewError(fiber.StatusUpgradeRequired, "this is a WebSocket endpoint for provider media streams")
	}
	// Providers send no Origin; browsers always do. A web page must not
	// be able to play audio into a call.
	if origin := c.Get(fiber.HeaderOrigin); origin != "" && !s.originAllowed(origin, c) {
		s.metr.AuthFailure(SchemeOrigin)
		s.authLog.Warn().Str("remote", c.IP()).Str("scheme", SchemeOrigin).Int("status", fiber.StatusForbidden).
			Msg("media socket refused before upgrade: opened by a web page of another origin")
		return fiber.NewError(fiber.StatusForbidden, "origin "+quoteHost(origin)+" may not open media sockets (providers send no Origin)")
	}
	if p := c.Params("provider"); p != "" {
		// The constant, not p: p aliases the request buffer, which fasthttp
		// reuses while the socket handler still runs.
		i := slices.Index(provider.Names, provider.Name(p))
		if i < 0 {
			return fiber.NewError(fiber.StatusNotFound, "unknown provider "+p)
		}
		c.Locals(localProvider, provider.Names[i])
	}
	p, _ := c.Locals(localProvider).(provider.Name)
	cred, aerr := s.checkMedia(c, p, c.Params("secret"))
	if aerr != nil {
		s.metr.AuthFailure(aerr.scheme)
		s.authLog.Warn().Str("provider", string(p)).Str("remote", c.IP()).Str("scheme", aerr.scheme).Int("status", aerr.status).
			Msg("media socket refused before upgrade: " + aerr.msg)
		if aerr.status == fiber.StatusUnauthorized {
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="bridge media", Basic realm="bridge media"`)
		}
		return aerr.fiber()
	}
	if cred.bound != "" {
		c.Locals(localBound, cred.bound)
	}
	if err := s.reg.Admit(); err != nil {
		c.Set(fiber.HeaderRetryAfter, "5")
		return fiber.NewError(fiber.StatusServiceUnavailable, err.Error())
	}
	if s.pendingStarts.Load() >= int64(s.cfg.MaxPendingStreams) {
		s.metr.unstarted.WithLabelValues("pending_full").Inc()
		c.Set(fiber.HeaderRetryAfter, "5")
		return fiber.NewError(fiber.StatusServiceUnavailable, "too many media sockets waiting for their start frame")
	}
	return s.capAddress(kindMedia)(c)
}

// serveCaptionSocket is the caption socket within the per-address cap.
func (s *Server) serveCaptionSocket(c *websocket.Conn) {
	if !s.sockets.hold(kindCaptions, c.IP()) {
		s.metr.perAddress.WithLabelValues(kindCaptions).Inc()
		_ = writeClose(c, closeTryLater, "too many caption sockets from this address", time.Second)
		return
	}
	defer s.sockets.release(kindCaptions, c.IP())
	s.hub.ServeWS(c)
}

const (
	localProvider = "provider"
	// localBound is the provider the socket's credential belongs to, when
	// it belongs to one: a stream detected as another is refused.
	localBound = "bound-provider"
)
