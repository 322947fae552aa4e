package web

import (
	"encoding/json"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/callcaptions/bridge/bridge/provider"
)

// Stream instructions: a provider's voice webhook (a phone number's "a call
// comes in" URL) can point straight at the bridge and get back the markup
// that starts a both-tracks stream to it, with its authentication:
//
//	GET|POST /instructions/twilio       TwiML   <Start><Stream track="both_tracks"> (mode=connect: <Connect><Stream>)
//	GET|POST /instructions/signalwire   cXML    the same, with authBearerToken
//	GET|POST /instructions/swml         SWML    JSON (format=yaml: YAML), stream with authorization_bearer_token
//	GET|POST /instructions/plivo        Plivo XML <Stream bidirectional="false" audioTrack="both" contentType="audio/x-mulaw;rate=8000">
//	GET|POST /instructions/vobiz        Vobiz XML, the same
//	GET|POST /instructions/telnyx       TeXML   <Start><Stream track="both_tracks">
//	GET|POST /instructions/exotel       JSON    the stream URL to paste into the Stream or Voicebot applet
//	GET|POST /instructions/vonage       NCCO    connect to a websocket endpoint
//
// Each also answers under /instructions/<kind>/<secret>. Providers cannot
// send the API token, so these routes are protected like the media sockets:
// open when media sockets are open; otherwise the request needs the path
// secret of that provider, the provider's signature (Twilio with
// --twilio-auth-token, SignalWire with --signalwire-signing-key) or, for
// an operator checking the output, the API token. The output holds the
// provider's credentials (a path secret, a bearer token, Basic auth), so it
// is never served to anyone else.
//
// Query parameters: dial=<E.164 number or sip: URI> connects the caller on
// after the stream starts (otherwise the call is held open for hold=<s>
// seconds, default 3600, so the caller can be captioned alone);
// mode=connect (Twilio, SignalWire, Telnyx) uses a bidirectional stream
// that lasts as long as the socket (inbound track only); codec=
// (SignalWire: PCMU, PCMA, L16@16000h, L16@24000h); param.<name>=<value>
// adds a custom parameter to the stream. The caller's From and To from the
// webhook become the custom parameters "from" and "to" where the provider
// carries them to the socket.

// Limits of the instruction options.
const (
	defaultHoldSeconds = 3600
	maxHoldSeconds     = 4 * 3600
	maxParams          = 10
)

var (
	dialNumber = regexp.MustCompile(`^\+?[0-9]{3,20}$`)
	dialSIP    = regexp.MustCompile(`^sips?:[A-Za-z0-9._~%!$&'()*+,;=:@-]{3,250}$`)
	paramName  = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
)

// providerRoutes adds the stream instructions and status callbacks routes.
func (s *Server) providerRoutes(app *fiber.App) {
	s.authLog = s.log.Sample(&zerolog.BurstSampler{Burst: 10, Period: time.Minute})
	for _, path := range []string{"/instructions/:kind", "/instructions/:kind/:secret"} {
		app.Get(path, s.instructions)
		app.Post(path, s.instructions)
	}
	for _, path := range []string{"/callbacks/:provider", "/callbacks/:provider/:secret"} {
		app.Get(path, s.callback)
		app.Post(path, s.callback)
	}
}

func (s *Server) instructions(c *fiber.Ctx) error {
	kind := c.Params("kind")
	d, m := provider.MarkupFor(kind)
	if m == nil {
		return fiber.NewError(fiber.StatusNotFound, "no stream instructions for "+kind+" (twilio, signalwire, swml, plivo, vobiz, telnyx, exotel, vonage)")
	}
	p := d.Name
	form, err := s.webhookForm(c, p)
	if err != nil {
		return err
	}
	req, err := s.instructionRequest(c, p, m, form)
	if err != nil {
		return err
	}
	req.YAML = strings.EqualFold(c.Query("format"), "yaml")
	body, contentType, err := m.Build(req)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, contentType)
	return c.Send(body)
}

// webhookForm authenticates a webhook of provider p (see checkWebhook) and
// returns its form (see requestForm). A refusal is counted and logged.
func (s *Server) webhookForm(c *fiber.Ctx, p provider.Name) (url.Values, error) {
	form, err := requestForm(c)
	if err != nil {
		return nil, err
	}
	if aerr := s.checkWebhook(c, p, c.Params("secret"), form); aerr != nil {
		s.metr.AuthFailure(aerr.scheme)
		s.authLog.Warn().Str("provider", string(p)).Str("path", redactPath(c.Path())).Str("remote", c.IP()).
			Str("scheme", aerr.scheme).Int("status", aerr.status).Msg("webhook refused: " + aerr.msg)
		return nil, aerr.fiber()
	}
	return form, nil
}

// requestForm is a webhook's parameters: the form body of a POST (the
// signature covers them), nil otherwise. A form body that does not parse is
// a 400: signing or reading only part of it would be wrong either way.
func requestForm(c *fiber.Ctx) (url.Values, error) {
	if c.Method() != fiber.MethodPost || !strings.HasPrefix(strings.ToLower(c.Get(fiber.HeaderContentType)), fiber.MIMEApplicationForm) {
		return nil, nil
	}
	v, err := url.ParseQuery(string(c.Body()))
	if err != nil {
		return nil, fiber.NewError(fiber.StatusBadRequest, "malformed form body: "+err.Error())
	}
	return v, nil
}

// instructionRequest is what p's markup m is built from.
func (s *Server) instructionRequest(c *fiber.Ctx, p provider.Name, m *provider.Markup, form url.Values) (provider.StreamRequest, error) {
	req := provider.StreamRequest{Mode: "start", Hold: defaultHoldSeconds}
	switch mode := c.Query("mode"); mode {
	case "", "start":
	case "connect":
		if !m.Connect {
			return req, fiber.NewError(fiber.StatusBadRequest, "mode=connect is for twilio, signalwire and telnyx")
		}
		req.Mode = mode
	default:
		return req, fiber.NewError(fiber.StatusBadRequest, "mode must be start or connect")
	}
	if d := c.Query("dial"); d != "" {
		if !dialNumber.MatchString(d) && !dialSIP.MatchString(d) {
			return req, fiber.NewError(fiber.StatusBadRequest, "dial must be a phone number (+15551234567) or a sip: URI")
		}
		req.Dial = d
	}
	if h := c.Query("hold"); h != "" {
		n, err := strconv.Atoi(h)
		if err != nil || n < 1 || n > maxHoldSeconds {
			return req, fiber.NewError(fiber.StatusBadRequest, "hold must be 1 to "+strconv.Itoa(maxHoldSeconds)+" seconds")
		}
		req.Hold = n
	}
	if cd := c.Query("codec"); cd != "" {
		if !slices.Contains([]string{"PCMU", "PCMA", "L16@16000h", "L16@24000h"}, cd) {
			return req, fiber.NewError(fiber.StatusBadRequest, "codec must be PCMU, PCMA, L16@16000h or L16@24000h")
		}
		if !m.Codec {
			return req, fiber.NewError(fiber.StatusBadRequest, "codec is for signalwire and swml")
		}
		req.Codec = cd
	}

	// The caller, as the webhook names it.
	params := map[string]string{}
	from, to := form.Get("From"), form.Get("To")
	switch m.Kind {
	case "swml":
		var err error
		if from, to, err = swmlCall(c); err != nil {
			return req, err
		}
	case "vonage":
		from, to, req.CallID = c.Query("from"), c.Query("to"), c.Query("uuid")
	}
	if from != "" {
		params["from"] = from
	}
	if to != "" {
		params["to"] = to
	}
	n := 0
	var bad string
	c.Context().QueryArgs().VisitAll(func(k, v []byte) {
		name, ok := strings.CutPrefix(string(k), "param.")
		if !ok {
			return
		}
		if n++; n > maxParams || !paramName.MatchString(name) || len(v) > 256 {
			bad = name
			return
		}
		params[name] = string(v)
	})
	if bad != "" {
		return req, fiber.NewError(fiber.StatusBadRequest, "at most 10 param.<name>=<value>, names of A-Z a-z 0-9 _ . - and values up to 256 bytes")
	}
	for _, k := range slices.Sorted(maps.Keys(params)) {
		req.Params = append(req.Params, [2]string{k, params[k]})
	}

	return req, s.streamAuth(c, p, &req)
}

// swmlCall reads the caller from the JSON SignalWire posts to a SWML URL:
// {"call":{"from":…,"to":…},…}. A request without a JSON body (an operator
// trying the URL) names no caller; a JSON body that does not parse is a 400.
func swmlCall(c *fiber.Ctx) (from, to string, err error) {
	body := c.Body()
	if len(body) == 0 || !strings.HasPrefix(strings.ToLower(c.Get(fiber.HeaderContentType)), fiber.MIMEApplicationJSON) {
		return "", "", nil
	}
	var v struct {
		Call struct {
			From string `json:"from"`
			To   string `json:"to"`
		} `json:"call"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return "", "", fiber.NewError(fiber.StatusBadRequest, "SWML request body is not the JSON SignalWire sends: "+err.Error())
	}
	return v.Call.From, v.Call.To, nil
}

// bases are the https:// and wss:// roots of this bridge as providers
// reach it: --public-url, or else the request's own host (a bridge tried
// out behind ngrok without --public-url). The request's scheme and host
// come from headers any client sets (Host, X-Forwarded-Proto,
// X-Forwarded-Host): anything but http or https and a plain host[:port] is
// a 400, never a URL built from it.
func (s *Server) bases(c *fiber.Ctx) (web, ws string, err error) {
	if pub := s.publicURL(); pub != nil {
		web = pub.Scheme + "://" + pub.Host + strings.TrimSuffix(pub.Path, "/")
	} else {
		proto := strings.ToLower(c.Protocol())
		if proto != "http" && proto != "https" {
			return "", "", fiber.NewError(fiber.StatusBadRequest, "X-Forwarded-Proto must be http or https (or set --public-url)")
		}
		host := c.Hostname()
		if !validHost(host) {
			return "", "", fiber.NewError(fiber.StatusBadRequest, "the Host (or X-Forwarded-Host) header is not a valid host[:port] (or set --public-url)")
		}
		web = proto + "://" + host
	}
	return web, "ws" + strings.TrimPrefix(web, "http"), nil // https://… → wss://…, http://… → ws://…
}

// validHost reports whether h is a host[:port] and nothing more (a name or
// an address, see parseHost) with a port, if any, from 1 to 65535.
func validHost(h string) bool {
	if _, ok := parseHost(h); !ok {
		return false
	}
	_, port, err := net.SplitHostPort(h)
	if err != nil { // no port
		return true
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535
}

// streamAuth fills in the media and callback URLs and the credential the
// provider presents, preferring a signature (nothing secret in the URL),
// then a header, then the path secret.
func (s *Server) streamAuth(c *fiber.Ctx, p provider.Name, req *provider.StreamRequest) error {
	a := s.cfg.Auth
	web, ws, err := s.bases(c)
	if err != nil {
		return err
	}
	req.Media = ws + "/media/" + string(p)
	req.Callback = web + "/callbacks/" + string(p)
	if a.Open() {
		req.Scheme = "none"
		return nil
	}
	schemes := a.Schemes(p)
	if len(schemes) == 0 {
		return fiber.NewError(fiber.StatusConflict, "no authentication is configured for "+string(p)+
			" media sockets, so no stream could connect: set --media-path-secret or --provider-path-secrets "+string(p)+"=…")
	}
	secret := a.secretFor(p)
	req.Scheme = schemes[0]
	switch req.Scheme {
	case SchemeTwilio:
	case SchemeBasic:
		u, err := url.Parse(req.Media)
		if err != nil { // bases checked the host: not expected
			return fiber.NewError(fiber.StatusBadRequest, "cannot build the stream URL: "+err.Error())
		}
		u.User = url.UserPassword(a.ExotelUser, a.ExotelPassword)
		req.Media = u.String()
	case SchemeBearer:
		if p == provider.SignalWire {
			req.Bearer = a.bearerFor(p)
			break
		}
		// Only SignalWire's markup can set a header.
		if secret == "" {
			return fiber.NewError(fiber.StatusConflict, string(p)+" cannot send a bearer token: set --media-path-secret or --provider-path-secrets "+string(p)+"=…")
		}
		req.Scheme = SchemePath
		req.Media += "/" + secret
	case SchemePath:
		req.Media += "/" + secret
	}
	switch {
	case p == provider.Twilio && a.TwilioAuthToken != "":
	case p == provider.SignalWire && a.SignalWireSigningKey != "":
	case secret != "":
		req.Callback += "/" + secret
	default:
		req.Callback = "" // nothing would let the callback in
	}
	return nil
}
