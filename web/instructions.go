package web

import (
	"encoding/json"
	"encoding/xml"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"

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

// instructionKinds maps /instructions/<kind> to the provider it streams from.
var instructionKinds = map[string]provider.Name{
	"twilio": provider.Twilio, "signalwire": provider.SignalWire, "swml": provider.SignalWire,
	"plivo": provider.Plivo, "vobiz": provider.Vobiz, "telnyx": provider.Telnyx,
	"exotel": provider.Exotel, "vonage": provider.Vonage,
}

// Limits of the instruction options.
const (
	defaultHoldSeconds = 3600
	maxHoldSeconds     = 4 * 3600
	maxParams          = 10
	streamName         = "captions"
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

// instructionRequest is what the markup is made from.
type instructionRequest struct {
	p        provider.Name
	kind     string
	mode     string // "start" or "connect"
	dial     string
	hold     int
	codec    string
	params   [][2]string // custom parameters, in a stable order
	callID   string      // Vonage: the call's uuid, carried to the socket
	media    string      // wss:// URL of the media socket, with its path secret if any
	bearer   string      // token the provider sends as Authorization: Bearer
	callback string      // status callback URL, "" when callbacks could not authenticate
	scheme   string      // how the media socket authenticates
}

func (s *Server) instructions(c *fiber.Ctx) error {
	kind := c.Params("kind")
	p, ok := instructionKinds[kind]
	if !ok {
		return fiber.NewError(fiber.StatusNotFound, "no stream instructions for "+kind+" (twilio, signalwire, swml, plivo, vobiz, telnyx, exotel, vonage)")
	}
	form, err := requestForm(c)
	if err != nil {
		return err
	}
	if aerr := s.checkWebhook(c, p, c.Params("secret"), form); aerr != nil {
		return s.refuseWebhook(c, p, aerr)
	}
	req, err := s.instructionRequest(c, p, kind, form)
	if err != nil {
		return err
	}
	switch kind {
	case "twilio", "signalwire", "telnyx":
		return sendXML(c, twiml(req))
	case "plivo", "vobiz":
		return sendXML(c, plivoXML(req))
	case "swml":
		doc := swml(req)
		if strings.EqualFold(c.Query("format"), "yaml") {
			b, err := yaml.Marshal(doc)
			if err != nil {
				return err
			}
			c.Set(fiber.HeaderContentType, "application/yaml; charset=utf-8")
			return c.Send(b)
		}
		return c.JSON(doc)
	case "exotel":
		return c.JSON(exotelGuide(req))
	default: // vonage
		return c.JSON(ncco(req))
	}
}

// refuseWebhook answers a webhook that failed authentication.
func (s *Server) refuseWebhook(c *fiber.Ctx, p provider.Name, aerr *authError) error {
	s.metrics().AuthFailure(aerr.scheme)
	s.authLog.Warn().Str("provider", string(p)).Str("path", redactPath(c.Path())).Str("remote", c.IP()).
		Str("scheme", aerr.scheme).Int("status", aerr.status).Msg("webhook refused: " + aerr.msg)
	return aerr.fiber()
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

func (s *Server) instructionRequest(c *fiber.Ctx, p provider.Name, kind string, form url.Values) (instructionRequest, error) {
	req := instructionRequest{p: p, kind: kind, mode: "start", hold: defaultHoldSeconds}
	switch m := c.Query("mode"); m {
	case "", "start":
	case "connect":
		if kind != "twilio" && kind != "signalwire" && kind != "telnyx" {
			return req, fiber.NewError(fiber.StatusBadRequest, "mode=connect is for twilio, signalwire and telnyx")
		}
		req.mode = m
	default:
		return req, fiber.NewError(fiber.StatusBadRequest, "mode must be start or connect")
	}
	if d := c.Query("dial"); d != "" {
		if !dialNumber.MatchString(d) && !dialSIP.MatchString(d) {
			return req, fiber.NewError(fiber.StatusBadRequest, "dial must be a phone number (+15551234567) or a sip: URI")
		}
		req.dial = d
	}
	if h := c.Query("hold"); h != "" {
		n, err := strconv.Atoi(h)
		if err != nil || n < 1 || n > maxHoldSeconds {
			return req, fiber.NewError(fiber.StatusBadRequest, "hold must be 1 to "+strconv.Itoa(maxHoldSeconds)+" seconds")
		}
		req.hold = n
	}
	if cd := c.Query("codec"); cd != "" {
		switch cd {
		case "PCMU", "PCMA", "L16@16000h", "L16@24000h":
		default:
			return req, fiber.NewError(fiber.StatusBadRequest, "codec must be PCMU, PCMA, L16@16000h or L16@24000h")
		}
		if p != provider.SignalWire {
			return req, fiber.NewError(fiber.StatusBadRequest, "codec is for signalwire and swml")
		}
		req.codec = cd
	}

	// The caller, as the webhook names it.
	params := map[string]string{}
	from, to := form.Get("From"), form.Get("To")
	switch kind {
	case "swml":
		var err error
		if from, to, err = swmlCall(c); err != nil {
			return req, err
		}
	case "vonage":
		from, to, req.callID = c.Query("from"), c.Query("to"), c.Query("uuid")
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
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		req.params = append(req.params, [2]string{k, params[k]})
	}

	return req, s.streamAuth(c, &req)
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
	if strings.HasPrefix(web, "https://") {
		return web, "wss://" + strings.TrimPrefix(web, "https://"), nil
	}
	return web, "ws://" + strings.TrimPrefix(web, "http://"), nil
}

// validHost reports whether h is a host[:port] and nothing more: a name
// of letters, digits, '.', '-' and '_', or an IP address (IPv6 in
// brackets), and an optional numeric port.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	host, port := h, ""
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 || net.ParseIP(h[1:end]) == nil {
			return false
		}
		host, port = "", h[end+1:]
		if port != "" {
			var ok bool
			if port, ok = strings.CutPrefix(port, ":"); !ok {
				return false
			}
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 {
		host, port = h[:i], h[i+1:]
		if host == "" {
			return false
		}
	}
	if port != "" || strings.HasSuffix(h, ":") {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] == '+' {
			return false
		}
	}
	for _, r := range host {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// streamAuth fills in the media and callback URLs and the credential the
// provider presents, preferring a signature (nothing secret in the URL),
// then a header, then the path secret.
func (s *Server) streamAuth(c *fiber.Ctx, req *instructionRequest) error {
	a := s.cfg.Auth
	web, ws, err := s.bases(c)
	if err != nil {
		return err
	}
	p := req.p
	req.media = ws + "/media/" + string(p)
	req.callback = web + "/callbacks/" + string(p)
	if a.Open() {
		req.scheme = "none"
		return nil
	}
	schemes := a.Schemes(p)
	if len(schemes) == 0 {
		return fiber.NewError(fiber.StatusConflict, "no authentication is configured for "+string(p)+
			" media sockets, so no stream could connect: set --media-path-secret or --provider-path-secrets "+string(p)+"=…")
	}
	secret := a.secretFor(p)
	req.scheme = schemes[0]
	switch req.scheme {
	case SchemeTwilio:
	case SchemeBasic:
		u, err := url.Parse(req.media)
		if err != nil { // bases checked the host: not expected
			return fiber.NewError(fiber.StatusBadRequest, "cannot build the stream URL: "+err.Error())
		}
		u.User = url.UserPassword(a.ExotelUser, a.ExotelPassword)
		req.media = u.String()
	case SchemeBearer:
		if p == provider.SignalWire {
			req.bearer = a.bearerFor(p)
			break
		}
		// Only SignalWire's markup can set a header.
		if secret == "" {
			return fiber.NewError(fiber.StatusConflict, string(p)+" cannot send a bearer token: set --media-path-secret or --provider-path-secrets "+string(p)+"=…")
		}
		req.scheme = SchemePath
		req.media += "/" + secret
	case SchemePath:
		req.media += "/" + secret
	}
	switch {
	case p == provider.Twilio && a.TwilioAuthToken != "":
	case p == provider.SignalWire && a.SignalWireSigningKey != "":
	case secret != "":
		req.callback += "/" + secret
	default:
		req.callback = "" // nothing would let the callback in
	}
	return nil
}

// XML markup, marshalled with encoding/xml so that every value is escaped.

type xmlResponse struct {
	XMLName xml.Name `xml:"Response"`
	Verbs   []any
}

type xmlStream struct {
	XMLName              xml.Name       `xml:"Stream"`
	URL                  string         `xml:"url,attr"`
	Name                 string         `xml:"name,attr,omitempty"`
	Track                string         `xml:"track,attr,omitempty"`
	Codec                string         `xml:"codec,attr,omitempty"`
	AuthBearerToken      string         `xml:"authBearerToken,attr,omitempty"`
	StatusCallback       string         `xml:"statusCallback,attr,omitempty"`
	StatusCallbackMethod string         `xml:"statusCallbackMethod,attr,omitempty"`
	Parameters           []xmlParameter `xml:"Parameter"`
}

type xmlParameter struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type xmlWrap struct {
	XMLName xml.Name
	Inner   any
}

type xmlPause struct {
	XMLName xml.Name
	Length  int `xml:"length,attr"`
}

type xmlDial struct {
	XMLName xml.Name `xml:"Dial"`
	Number  string   `xml:"Number,omitempty"`
	SIP     string   `xml:"Sip,omitempty"`
	User    string   `xml:"User,omitempty"`
}

// twiml is TwiML (Twilio), cXML (SignalWire) or TeXML (Telnyx): the same
// markup, with SignalWire's codec and bearer token attributes.
func twiml(req instructionRequest) xmlResponse {
	st := xmlStream{URL: req.media, Name: streamName, Track: "both_tracks", Codec: req.codec, AuthBearerToken: req.bearer}
	if req.mode == "connect" {
		st.Track = "inbound_track" // the only track a bidirectional stream may have
	}
	if req.callback != "" {
		st.StatusCallback, st.StatusCallbackMethod = req.callback, "POST"
	}
	if req.p != provider.Telnyx { // TeXML carries no <Parameter>
		for _, kv := range req.params {
			st.Parameters = append(st.Parameters, xmlParameter{kv[0], kv[1]})
		}
	}
	verb := "Start"
	if req.mode == "connect" {
		verb = "Connect"
	}
	resp := xmlResponse{Verbs: []any{xmlWrap{XMLName: xml.Name{Local: verb}, Inner: st}}}
	if req.mode == "connect" {
		return resp // the call lasts as long as the stream
	}
	switch {
	case req.dial == "":
		resp.Verbs = append(resp.Verbs, xmlPause{XMLName: xml.Name{Local: "Pause"}, Length: req.hold})
	case strings.HasPrefix(req.dial, "sip"):
		resp.Verbs = append(resp.Verbs, xmlDial{SIP: req.dial})
	default:
		resp.Verbs = append(resp.Verbs, xmlDial{Number: req.dial})
	}
	return resp
}

type plivoStream struct {
	XMLName              xml.Name `xml:"Stream"`
	Bidirectional        string   `xml:"bidirectional,attr"`
	AudioTrack           string   `xml:"audioTrack,attr"`
	StreamTimeout        int      `xml:"streamTimeout,attr"`
	ContentType          string   `xml:"contentType,attr"`
	StatusCallbackURL    string   `xml:"statusCallbackUrl,attr,omitempty"`
	StatusCallbackMethod string   `xml:"statusCallbackMethod,attr,omitempty"`
	ExtraHeaders         string   `xml:"extraHeaders,attr,omitempty"`
	URL                  string   `xml:",chardata"`
}

// plivoXML is Plivo's (and Vobiz's) <Stream>, μ-law at 8 kHz: the one
// format both document with the same byte-order-free meaning.
func plivoXML(req instructionRequest) xmlResponse {
	st := plivoStream{Bidirectional: "false", AudioTrack: "both", StreamTimeout: 86400,
		ContentType: "audio/x-mulaw;rate=8000", URL: req.media}
	if req.callback != "" {
		st.StatusCallbackURL, st.StatusCallbackMethod = req.callback, "POST"
	}
	if req.p == provider.Plivo { // Vobiz sends extra_headers as "{}" whatever is set
		var hs []string
		for _, kv := range req.params {
			// Plivo allows only [A-Za-z0-9] in extraHeaders.
			k, v := alnum(kv[0]), alnum(kv[1])
			if k != "" {
				hs = append(hs, k+"="+v)
			}
		}
		st.ExtraHeaders = strings.Join(hs, ",")
		if len(st.ExtraHeaders) > 512 {
			st.ExtraHeaders = ""
		}
	}
	resp := xmlResponse{Verbs: []any{st}}
	switch {
	case req.dial == "":
		resp.Verbs = append(resp.Verbs, xmlPause{XMLName: xml.Name{Local: "Wait"}, Length: req.hold})
	case strings.HasPrefix(req.dial, "sip"):
		resp.Verbs = append(resp.Verbs, xmlDial{User: req.dial})
	default:
		resp.Verbs = append(resp.Verbs, xmlDial{Number: req.dial})
	}
	return resp
}

func alnum(s string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' {
			return r
		}
		return -1
	}, s)
}

func sendXML(c *fiber.Ctx, v any) error {
	b, err := xml.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "text/xml; charset=utf-8")
	return c.Send(append([]byte(xml.Header), append(b, '\n')...))
}

// SWML (SignalWire Markup Language).

type swmlDoc struct {
	Version  string              `json:"version" yaml:"version"`
	Sections map[string][]swmlOp `json:"sections" yaml:"sections"`
}

type swmlOp struct {
	Answer  *struct{}    `json:"answer,omitempty" yaml:"answer,omitempty"`
	Stream  *swmlStream  `json:"stream,omitempty" yaml:"stream,omitempty"`
	Connect *swmlConnect `json:"connect,omitempty" yaml:"connect,omitempty"`
	Play    *swmlPlay    `json:"play,omitempty" yaml:"play,omitempty"`
}

type swmlStream struct {
	URL              string            `json:"url" yaml:"url"`
	Name             string            `json:"name" yaml:"name"`
	Track            string            `json:"track" yaml:"track"`
	Codec            string            `json:"codec,omitempty" yaml:"codec,omitempty"`
	BearerToken      string            `json:"authorization_bearer_token,omitempty" yaml:"authorization_bearer_token,omitempty"`
	StatusURL        string            `json:"status_url,omitempty" yaml:"status_url,omitempty"`
	StatusURLMethod  string            `json:"status_url_method,omitempty" yaml:"status_url_method,omitempty"`
	CustomParameters map[string]string `json:"custom_parameters,omitempty" yaml:"custom_parameters,omitempty"`
}

type swmlConnect struct {
	To string `json:"to" yaml:"to"`
}

type swmlPlay struct {
	URL string `json:"url" yaml:"url"`
}

func swml(req instructionRequest) swmlDoc {
	st := &swmlStream{URL: req.media, Name: streamName, Track: "both_tracks", Codec: req.codec, BearerToken: req.bearer}
	if req.callback != "" {
		st.StatusURL, st.StatusURLMethod = req.callback, "POST"
	}
	for _, kv := range req.params {
		if st.CustomParameters == nil {
			st.CustomParameters = map[string]string{}
		}
		st.CustomParameters[kv[0]] = kv[1]
	}
	main := []swmlOp{{Answer: &struct{}{}}, {Stream: st}}
	if req.dial != "" {
		main = append(main, swmlOp{Connect: &swmlConnect{To: req.dial}})
	} else {
		main = append(main, swmlOp{Play: &swmlPlay{URL: "silence:" + strconv.Itoa(req.hold)}})
	}
	return swmlDoc{Version: "1.0.0", Sections: map[string][]swmlOp{"main": main}}
}

// exotelGuide is what to paste into an Exotel Stream or Voicebot applet:
// Exotel's stream URL is configured in its dashboard, not returned by a
// webhook.
type exotelGuideDoc struct {
	Provider       string   `json:"provider"`
	StreamURL      string   `json:"stream_url"`
	StreamURL16k   string   `json:"stream_url_16k"`
	Authentication string   `json:"authentication"`
	Codecs         string   `json:"codecs"`
	Steps          []string `json:"steps"`
}

func exotelGuide(req instructionRequest) exotelGuideDoc {
	u := req.media
	q := url.Values{}
	for _, kv := range req.params {
		if kv[0] != "from" && kv[0] != "to" && len(q) < 3 { // Exotel passes at most 3 query parameters on
			q.Set(kv[0], kv[1])
		}
	}
	with := func(extra string) string {
		qs := q.Encode()
		if extra != "" {
			if qs != "" {
				qs += "&"
			}
			qs += extra
		}
		if qs == "" {
			return u
		}
		return u + "?" + qs
	}
	return exotelGuideDoc{
		Provider: "exotel", StreamURL: with(""), StreamURL16k: with("sample-rate=16000"), Authentication: req.scheme,
		Codecs: "16-bit little-endian PCM (raw/slin) at 8000 Hz, or 16000/24000 Hz with ?sample-rate=",
		Steps: []string{
			"In the Exotel dashboard, open App Bazaar and edit the call flow of your number.",
			"Add a Stream applet (captions only) or a Voicebot applet (bidirectional) where the call should be captioned.",
			"Paste stream_url (or stream_url_16k for wideband audio) as the applet's WebSocket URL and save.",
			"Place a call: the call appears on the dashboard with its captions.",
		},
	}
}

// NCCO (Vonage Call Control Object).
type nccoAction struct {
	Action   string         `json:"action"`
	Endpoint []nccoEndpoint `json:"endpoint"`
}

type nccoEndpoint struct {
	Type        string            `json:"type"`
	URI         string            `json:"uri"`
	ContentType string            `json:"content-type"`
	Headers     map[string]string `json:"headers,omitempty"`
}

func ncco(req instructionRequest) []nccoAction {
	ep := nccoEndpoint{Type: "websocket", URI: req.media, ContentType: "audio/l16;rate=16000", Headers: map[string]string{}}
	for _, kv := range req.params {
		ep.Headers[kv[0]] = kv[1]
	}
	if req.callID != "" {
		ep.Headers[provider.VonageCallIDHeader] = req.callID
	}
	if len(ep.Headers) == 0 {
		ep.Headers = nil
	}
	return []nccoAction{{Action: "connect", Endpoint: []nccoEndpoint{ep}}}
}
