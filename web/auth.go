package web

import (
	"cmp"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/callcaptions/bridge/bridge/provider"
)

// Auth says who may open media sockets and call the provider webhooks
// (stream instructions and status callbacks). Providers cannot send the API
// token, so these routes have their own credentials. The zero Auth leaves
// them open to anyone, which the bridge announces at start-up.
//
// A media socket is accepted when it carries any one credential that is
// configured for its provider, checked before the upgrade:
//
//	scheme            credential                              providers
//	twilio-signature  X-Twilio-Signature over the wss:// URL   Twilio
//	bearer            Authorization: Bearer <token>            any (SignalWire sends it)
//	path-secret       /media/<provider>/<secret>, /media/s/<secret>  any
//	basic             Authorization: Basic <user:password>     Exotel
//
// A missing credential is refused with 401, a wrong one with 403; nothing
// is upgraded or recorded either way. On the auto-detecting routes a
// credential that belongs to one provider (a Twilio signature, Exotel's
// Basic auth, a per-provider token or secret) also binds the socket: a
// stream detected as another provider is closed.
type Auth struct {
	// TwilioAuthToken verifies X-Twilio-Signature (media sockets,
	// instruction webhooks, status callbacks). Needs Config.PublicURL.
	TwilioAuthToken string
	// SignalWireSigningKey verifies X-SignalWire-Signature on instruction
	// webhooks and status callbacks. Needs Config.PublicURL.
	SignalWireSigningKey string
	// BearerToken and PathSecret are accepted for every provider.
	BearerToken string
	PathSecret  string
	// ProviderBearer and ProviderPathSecret are accepted for one provider.
	ProviderBearer     map[provider.Name]string
	ProviderPathSecret map[provider.Name]string
	// ExotelUser and ExotelPassword are Exotel's Basic auth.
	ExotelUser, ExotelPassword string
}

// Open reports whether media sockets are open to anyone.
func (a Auth) Open() bool {
	return a.TwilioAuthToken == "" && a.BearerToken == "" && a.PathSecret == "" &&
		len(a.ProviderBearer) == 0 && len(a.ProviderPathSecret) == 0 && a.ExotelUser == ""
}

// Authentication schemes, as counted in bridge_auth_failures_total.
const (
	SchemeTwilio     = "twilio-signature"
	SchemeSignalWire = "signalwire-signature"
	SchemeBearer     = "bearer"
	SchemePath       = "path-secret"
	SchemeBasic      = "basic"
	SchemeAPIToken   = "api-token"
	SchemeHost       = "host"   // a Host that is not one of the bridge's names
	SchemeOrigin     = "origin" // a browser page of another origin
	SchemeNone       = "none"   // no credential at all
)

// Schemes lists the schemes that can open p's media sockets, in the order
// the stream instructions prefer them. Empty: p cannot connect (or, when
// Open, needs nothing).
func (a Auth) Schemes(p provider.Name) []string {
	var out []string
	if p == provider.Twilio && a.TwilioAuthToken != "" {
		out = append(out, SchemeTwilio)
	}
	if p == provider.Exotel && a.ExotelUser != "" {
		out = append(out, SchemeBasic)
	}
	if a.bearerFor(p) != "" {
		out = append(out, SchemeBearer)
	}
	if a.secretFor(p) != "" {
		out = append(out, SchemePath)
	}
	return out
}

// bearerFor is the token p's stream instructions carry: the provider's own,
// else the shared one.
func (a Auth) bearerFor(p provider.Name) string { return cmp.Or(a.ProviderBearer[p], a.BearerToken) }

// secretFor is the path secret p's URLs carry: the provider's own, else
// the shared one.
func (a Auth) secretFor(p provider.Name) string { return cmp.Or(a.ProviderPathSecret[p], a.PathSecret) }

// credential is what one request proved.
type credential struct {
	scheme string
	// bound is the only provider the credential opens; "" for any.
	bound provider.Name
}

// authError is a refused request: status 401 (no credential) or 403 (a
// wrong one), and the scheme to count.
type authError struct {
	status int
	scheme string
	msg    string
}

func (e *authError) fiber() error { return fiber.NewError(e.status, e.msg) }

// firstFailure keeps the first wrong credential a request showed: what a
// refused request is told and counted as.
type firstFailure struct{ err *authError }

func (f *firstFailure) add(scheme, msg string) {
	if f.err == nil {
		f.err = &authError{fiber.StatusForbidden, scheme, msg}
	}
}

// checkMedia authenticates a media socket's upgrade request for p ("" on
// the auto-detecting routes); secret is the path segment, if the route has
// one.
func (s *Server) checkMedia(c *fiber.Ctx, p provider.Name, secret string) (credential, *authError) {
	a := s.cfg.Auth
	if a.Open() {
		if secret != "" {
			return credential{}, &authError{fiber.StatusNotFound, SchemePath, "no path secret is configured on this bridge; use /media or /media/<provider>"}
		}
		return credential{scheme: "open"}, nil
	}
	var failed firstFailure
	if secret != "" {
		if bound, ok := matchSecret(p, secret, a.PathSecret, a.ProviderPathSecret); ok {
			return credential{scheme: SchemePath, bound: bound}, nil
		}
		failed.add(SchemePath, "wrong path secret")
	}
	scheme, cred := parseAuthorization(c.Get(fiber.HeaderAuthorization))
	switch scheme {
	case "bearer":
		if bound, ok := matchSecret(p, cred, a.BearerToken, a.ProviderBearer); ok {
			return credential{scheme: SchemeBearer, bound: bound}, nil
		}
		if a.BearerToken != "" || len(a.ProviderBearer) > 0 {
			failed.add(SchemeBearer, "wrong bearer token")
		}
	case "basic":
		if a.ExotelUser != "" {
			if (p == "" || p == provider.Exotel) && a.matchBasic(cred) {
				return credential{scheme: SchemeBasic, bound: provider.Exotel}, nil
			}
			failed.add(SchemeBasic, "wrong Basic credentials")
		}
	}
	if (p == "" || p == provider.Twilio) && s.twilioSigned(c, "wss", nil, &failed) {
		return credential{scheme: SchemeTwilio, bound: provider.Twilio}, nil
	}
	if failed.err != nil {
		return credential{}, failed.err
	}
	msg := "media sockets need authentication"
	if p != "" {
		if schemes := a.Schemes(p); len(schemes) > 0 {
			msg += " (" + string(p) + ": " + strings.Join(schemes, " or ") + ")"
		} else {
			msg = "no authentication is configured for " + string(p) + " media sockets: set --media-path-secret or --provider-path-secrets " + string(p) + "=…"
		}
	}
	return credential{}, &authError{fiber.StatusUnauthorized, SchemeNone, msg}
}

// matchSecret compares got with the shared secret and with each provider's
// own that may open p's routes (every provider's when p is unknown), all of
// them, so that the time taken does not say which matched. bound is the
// provider whose own secret it was ("" for the shared one).
func matchSecret(p provider.Name, got, shared string, own map[provider.Name]string) (bound provider.Name, ok bool) {
	ok = shared != "" && equalSecret(got, shared)
	for _, q := range provider.Names {
		want := own[q]
		if want == "" || (p != "" && q != p) {
			continue
		}
		if equalSecret(got, want) && !ok {
			ok, bound = true, q
		}
	}
	return bound, ok
}

func (a Auth) matchBasic(cred string) bool {
	user, pass, ok := parseBasic(cred)
	if !ok {
		return false
	}
	// Evaluate both halves: the time taken does not say which was wrong.
	u := equalSecret(user, a.ExotelUser)
	pw := equalSecret(pass, a.ExotelPassword)
	return u && pw
}

// equalSecret compares in constant time, whatever the lengths: both sides
// are hashed first, so a mismatch in length takes as long as any other.
func equalSecret(got, want string) bool {
	g := sha256.Sum256([]byte(got))
	w := sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// parseAuthorization splits an Authorization header into its scheme, in
// lower case, and its credentials: "Bearer abc" → ("bearer", "abc").
// Anything it cannot split gives ("", "").
func parseAuthorization(h string) (scheme, cred string) {
	h = strings.TrimSpace(h)
	sp := strings.IndexAny(h, " \t")
	if sp <= 0 {
		return "", ""
	}
	scheme = strings.ToLower(h[:sp])
	cred = strings.TrimSpace(h[sp+1:])
	if cred == "" {
		return "", ""
	}
	return scheme, cred
}

// parseBasic decodes Basic credentials (RFC 7617): base64 of user:password.
func parseBasic(cred string) (user, pass string, ok bool) {
	b, err := base64.StdEncoding.DecodeString(cred)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(cred); err != nil {
			return "", "", false
		}
	}
	user, pass, ok = strings.Cut(string(b), ":")
	return user, pass, ok
}

// publicRequestURL is the URL the provider dialled for this request, built
// from the configured public URL (never from Host or X-Forwarded-*, which
// a proxy may rewrite): scheme ("wss" for sockets, "https" for webhooks;
// "ws"/"http" when the public URL is http), the public host, and the
// request's path and query. A path prefix of the public URL (a proxy that
// serves the bridge under /bridge) is added when the request lacks it.
func (s *Server) publicRequestURL(c *fiber.Ctx, scheme string) (*url.URL, bool) {
	pub := s.publicURL()
	if pub == nil {
		return nil, false
	}
	if pub.Scheme == "http" {
		scheme = strings.TrimSuffix(scheme, "s")
	}
	uri := string(c.Request().RequestURI())
	path, query, _ := strings.Cut(uri, "?")
	prefix := strings.TrimSuffix(pub.Path, "/")
	if prefix != "" && !strings.HasPrefix(path, prefix+"/") && path != prefix {
		path = prefix + path
	}
	return &url.URL{Scheme: scheme, Host: pub.Host, Opaque: path, RawQuery: query}, true
}

// publicURL is Config.PublicURL parsed (validated by config), or nil.
func (s *Server) publicURL() *url.URL {
	if s.cfg.PublicURL == "" {
		return nil
	}
	u, err := url.Parse(strings.TrimSuffix(s.cfg.PublicURL, "/"))
	if err != nil || u.Host == "" {
		return nil
	}
	return u
}

// urlString renders u with its path as it was sent (no re-escaping).
func urlString(u *url.URL) string {
	out := u.Scheme + "://" + u.Host + u.Opaque
	if u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	return out
}

// portVariants returns the URL as is, without its port and with the
// scheme's default port: providers are inconsistent about whether the
// signed URL has a port (twilio-python's validator tries both).
func portVariants(u *url.URL) []string {
	out := []string{urlString(u)}
	host, port, err := net.SplitHostPort(u.Host)
	def := "443"
	if u.Scheme == "http" || u.Scheme == "ws" {
		def = "80"
	}
	v := *u
	if err == nil {
		if port == def {
			v.Host = host
			out = append(out, urlString(&v))
		}
	} else {
		v.Host = net.JoinHostPort(u.Host, def)
		out = append(out, urlString(&v))
	}
	return out
}

// twilioSigned verifies X-Twilio-Signature, when the request has one and a
// Twilio auth token is configured, over the public URL of this request,
// with and without its port, and the form parameters (nil for a WebSocket
// upgrade, which has no body). A wrong signature is added to failed.
func (s *Server) twilioSigned(c *fiber.Ctx, scheme string, form url.Values, failed *firstFailure) bool {
	key, sig := s.cfg.Auth.TwilioAuthToken, c.Get("X-Twilio-Signature")
	if key == "" || sig == "" {
		return false
	}
	if u, ok := s.publicRequestURL(c, scheme); ok && provider.TwilioSignatureOK(key, sig, portVariants(u), form) {
		return true
	}
	failed.add(SchemeTwilio, "X-Twilio-Signature does not match --public-url and the Twilio auth token")
	return false
}

// signalWireSignatureOK verifies X-SignalWire-Signature over the public URL
// of this request, with and without its port, and its body or form.
func (s *Server) signalWireSignatureOK(c *fiber.Ctx, key, sig string, form url.Values) bool {
	u, ok := s.publicRequestURL(c, "https")
	return ok && provider.SignalWireSignatureOK(key, sig, portVariants(u), c.Body(), form)
}

// checkWebhook authenticates a request from a provider to the
// instructions or callbacks routes of provider p: open when media sockets
// are; otherwise what opens p's media sockets (the path secret in the
// route, the bearer token), the provider's signature (Twilio; SignalWire
// with a signing key) or, for an operator checking the output, the API
// token.
func (s *Server) checkWebhook(c *fiber.Ctx, p provider.Name, secret string, form url.Values) *authError {
	a := s.cfg.Auth
	if a.Open() {
		if secret != "" {
			return &authError{fiber.StatusNotFound, SchemePath, "no path secret is configured on this bridge"}
		}
		return nil
	}
	var failed firstFailure
	if secret != "" {
		if _, ok := matchSecret(p, secret, a.PathSecret, a.ProviderPathSecret); ok {
			return nil
		}
		failed.add(SchemePath, "wrong path secret")
	}
	if p == provider.Twilio && s.twilioSigned(c, "https", form, &failed) {
		return nil
	}
	if a.SignalWireSigningKey != "" && p == provider.SignalWire {
		sig := c.Get("X-SignalWire-Signature")
		if sig == "" {
			sig = c.Get("X-Twilio-Signature")
		}
		if sig != "" {
			if s.signalWireSignatureOK(c, a.SignalWireSigningKey, sig, form) {
				return nil
			}
			failed.add(SchemeSignalWire, "X-SignalWire-Signature does not match --public-url and the signing key")
		}
	}
	// The bearer token that opens p's media sockets opens its webhooks.
	scheme, cred := parseAuthorization(c.Get(fiber.HeaderAuthorization))
	if scheme == "bearer" {
		if _, ok := matchSecret(p, cred, a.BearerToken, a.ProviderBearer); ok {
			return nil
		}
	}
	if s.cfg.APIToken != "" {
		if tok := apiTokenOf(c); tok != "" {
			if s.tokenOK(tok) {
				return nil
			}
			failed.add(SchemeAPIToken, "wrong API token")
		}
	}
	if scheme == "bearer" && a.bearerFor(p) != "" {
		failed.add(SchemeBearer, "wrong bearer token")
	}
	if failed.err != nil {
		return failed.err
	}
	msg := "this route needs the path secret (/…/" + string(p) + "/<secret>)"
	switch {
	case p == provider.Twilio && a.TwilioAuthToken != "":
		msg += ", a valid X-Twilio-Signature"
	case p == provider.SignalWire && a.SignalWireSigningKey != "":
		msg += ", a valid X-SignalWire-Signature"
	}
	if a.bearerFor(p) != "" {
		msg += ", the media bearer token"
	}
	return &authError{fiber.StatusUnauthorized, SchemeNone, msg + " or the API token"}
}

// apiTokenOf is the API token a request carries, if any.
func apiTokenOf(c *fiber.Ctx) string {
	if scheme, cred := parseAuthorization(c.Get(fiber.HeaderAuthorization)); scheme == "bearer" {
		return cred
	}
	if q := c.Query("token"); q != "" {
		return q
	}
	return c.Cookies(TokenCookie)
}

// redactPath hides the secret segment of the routes that carry one
// (/media/<p>/<secret>, /media/s/<secret>, /instructions/<p>/<secret>,
// /callbacks/<p>/<secret>), so that logs never hold it.
func redactPath(p string) string {
	segs := strings.SplitN(p, "/", 5)
	if len(segs) >= 4 && segs[0] == "" {
		switch segs[1] {
		case "media", "instructions", "callbacks":
			segs[3] = "<secret>"
			return strings.Join(segs, "/")
		}
	}
	return p
}
