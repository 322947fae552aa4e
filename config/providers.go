package config

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/callcaptions/bridge/bridge/provider"
)

// ProviderNames are the provider names the per-provider settings accept:
// the registered dialects' (the same names as /media/<provider>).
var ProviderNames = func() []string {
	out := make([]string, len(provider.Names))
	for i, n := range provider.Names {
		out[i] = string(n)
	}
	return out
}()

// Providers configures how each telephony provider is authenticated and how
// its audio is read.
//
// A media socket is accepted when it carries any one credential configured
// for its provider (the fields below say which applies to which). With none
// set, media sockets are open to anyone and the bridge says so at start-up;
// with any set, every media socket must authenticate, and a provider none of
// them applies to cannot connect. The same secrets protect the stream
// instructions (/instructions/…) and status callbacks (/callbacks/…), which
// providers call without the API token.
type Providers struct {
	TwilioAuthToken      string            `name:"twilio-auth-token" env:"BRIDGE_TWILIO_AUTH_TOKEN" help:"Twilio auth token: media sockets, instruction webhooks and status callbacks must carry a valid X-Twilio-Signature. Needs --public-url."`
	SignalWireSigningKey string            `name:"signalwire-signing-key" env:"BRIDGE_SIGNALWIRE_SIGNING_KEY" help:"SignalWire signing key (API credentials page): instruction webhooks and status callbacks may authenticate with X-SignalWire-Signature. Needs --public-url."`
	MediaBearerToken     string            `name:"media-bearer-token" env:"BRIDGE_MEDIA_BEARER_TOKEN" help:"Token media sockets may present as Authorization: Bearer, for any provider (SignalWire authorization_bearer_token). At least 16 characters."`
	MediaPathSecret      string            `name:"media-path-secret" env:"BRIDGE_MEDIA_PATH_SECRET" help:"Secret path segment accepted for any provider: /media/<provider>/<secret>, /media/s/<secret>, /instructions/<provider>/<secret>, /callbacks/<provider>/<secret>. 16 to 128 of A-Z a-z 0-9 . _ ~ -."`
	ProviderBearerTokens map[string]string `name:"provider-bearer-tokens" env:"BRIDGE_PROVIDER_BEARER_TOKENS" mapsep:"," placeholder:"PROVIDER=TOKEN,..." help:"Bearer tokens that open only one provider's media sockets (e.g. signalwire=…)."`
	ProviderPathSecrets  map[string]string `name:"provider-path-secrets" env:"BRIDGE_PROVIDER_PATH_SECRETS" mapsep:"," placeholder:"PROVIDER=SECRET,..." help:"Path secrets that open only one provider's routes (e.g. plivo=…,vobiz=…)."`
	ExotelBasicAuth      string            `name:"exotel-basic-auth" env:"BRIDGE_EXOTEL_BASIC_AUTH" placeholder:"USER:PASSWORD" help:"Credentials Exotel sends as Authorization: Basic (stream URL wss://USER:PASSWORD@host/media/exotel)."`

	L16ByteOrder  map[string]string `name:"l16-byte-order" env:"BRIDGE_L16_BYTE_ORDER" mapsep:"," placeholder:"PROVIDER=be|le,..." help:"Override the byte order of a provider's L16 audio (documented defaults: plivo=le, vobiz=be, telnyx=be, exotel=le, vonage=le, signalwire=le). A track that looks byte-swapped is flagged in the log and its call record."`
	ReorderFrames int               `name:"reorder-frames" default:"5" env:"BRIDGE_REORDER_FRAMES" help:"Frames a Telnyx track holds back to put out-of-order frames back in order (Telnyx does not guarantee order); 0 turns reordering off."`
	MediaBatch    time.Duration     `name:"media-batch" default:"${media_batch}" env:"BRIDGE_MEDIA_BATCH" help:"How much of a started stream's audio its socket gathers before the bridge reads it: fewer wake-ups per frame for at most this much added latency (captions, stop). 0: read every frame as it arrives."`
}

// Unreserved are the characters a URL carries unescaped (RFC 3986), the
// only ones a path secret or a token file may hold.
const Unreserved = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"

// MinSecretLen is the shortest bearer token or path secret accepted: 16
// characters of a random string are about 95 bits.
const MinSecretLen = 16

// Open reports whether no media authentication is configured: media
// sockets are then open to anyone.
func (p Providers) Open() bool {
	return p.TwilioAuthToken == "" && p.MediaBearerToken == "" && p.MediaPathSecret == "" &&
		len(p.ProviderBearerTokens) == 0 && len(p.ProviderPathSecrets) == 0 && p.ExotelBasicAuth == ""
}

// ByteOrders returns the L16 byte order overrides as provider → "be"/"le"
// (valid after Validate).
func (p Providers) ByteOrders() map[string]string {
	out := make(map[string]string, len(p.L16ByteOrder))
	for k, v := range p.L16ByteOrder {
		if o, ok := byteOrder(v); ok {
			out[strings.ToLower(strings.TrimSpace(k))] = o
		}
	}
	return out
}

// ExotelCredentials splits --exotel-basic-auth (valid after Validate).
func (p Providers) ExotelCredentials() (user, password string) {
	user, password, _ = strings.Cut(p.ExotelBasicAuth, ":")
	return user, password
}

func byteOrder(s string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "be", "big", "big-endian", "bigendian":
		return "be", true
	case "le", "little", "little-endian", "littleendian":
		return "le", true
	}
	return "", false
}

// check reports each problem with the provider settings to bad; publicURL
// is --public-url, which signatures are computed over.
func (p Providers) check(publicURL string, bad func(setting, format string, a ...any)) {
	if p.TwilioAuthToken != "" {
		if strings.TrimSpace(p.TwilioAuthToken) != p.TwilioAuthToken || strings.ContainsAny(p.TwilioAuthToken, " \t\r\n") {
			bad("twilio-auth-token", "must not contain white space")
		}
		if publicURL == "" {
			bad("twilio-auth-token", "needs --public-url: Twilio signs the URL it dials, which the bridge cannot learn from the request behind a proxy")
		}
	}
	if p.SignalWireSigningKey != "" {
		if strings.ContainsAny(p.SignalWireSigningKey, " \t\r\n") {
			bad("signalwire-signing-key", "must not contain white space")
		}
		if publicURL == "" {
			bad("signalwire-signing-key", "needs --public-url: SignalWire signs the URL it calls")
		}
	}
	if p.MediaBearerToken != "" {
		if msg := tokenProblem(p.MediaBearerToken); msg != "" {
			bad("media-bearer-token", "%s", msg)
		}
	}
	if p.MediaPathSecret != "" {
		if msg := secretProblem(p.MediaPathSecret); msg != "" {
			bad("media-path-secret", "%s", msg)
		}
	}
	for _, m := range []struct {
		setting string
		values  map[string]string
		problem func(string) string
	}{
		{"provider-bearer-tokens", p.ProviderBearerTokens, tokenProblem},
		{"provider-path-secrets", p.ProviderPathSecrets, secretProblem},
	} {
		for _, k := range slices.Sorted(maps.Keys(m.values)) {
			if !slices.Contains(ProviderNames, k) {
				bad(m.setting, "unknown provider %q (want one of %s)", k, strings.Join(ProviderNames, ", "))
			} else if msg := m.problem(m.values[k]); msg != "" {
				bad(m.setting, "%s: %s", k, msg)
			}
		}
	}
	if p.ExotelBasicAuth != "" {
		user, pass, ok := strings.Cut(p.ExotelBasicAuth, ":")
		switch {
		case !ok || user == "" || pass == "":
			bad("exotel-basic-auth", "must be USER:PASSWORD with both parts non-empty")
		case strings.ContainsAny(p.ExotelBasicAuth, " \t\r\n"):
			bad("exotel-basic-auth", "must not contain white space")
		case url.UserPassword(user, pass).String() != user+":"+pass:
			bad("exotel-basic-auth", "use only letters, digits and - . _ ~ so that it fits in a stream URL unescaped")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(p.L16ByteOrder)) {
		if !slices.Contains(ProviderNames, strings.ToLower(strings.TrimSpace(k))) {
			bad("l16-byte-order", "unknown provider %q (want one of %s)", k, strings.Join(ProviderNames, ", "))
		}
		if _, ok := byteOrder(p.L16ByteOrder[k]); !ok {
			bad("l16-byte-order", "%s=%q: want be or le", k, p.L16ByteOrder[k])
		}
	}
	if p.ReorderFrames < 0 || p.ReorderFrames > 50 {
		bad("reorder-frames", "must be between 0 (off) and 50, got %d", p.ReorderFrames)
	}
	if p.MediaBatch < 0 || p.MediaBatch > time.Second {
		bad("media-batch", "must be between 0 (off) and 1s, got %s", p.MediaBatch)
	}
}

func tokenProblem(s string) string {
	switch {
	case len(s) < MinSecretLen:
		return fmt.Sprintf("must be at least %d characters", MinSecretLen)
	case len(s) > 1024:
		return "must be at most 1024 characters"
	case strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return "must not contain white space or control characters"
	}
	return ""
}

// secretProblem: a path secret must survive every provider's URL handling
// unescaped, so it is limited to URL-unreserved characters.
func secretProblem(s string) string {
	if len(s) < MinSecretLen || len(s) > 128 {
		return fmt.Sprintf("must be %d to 128 characters, got %d", MinSecretLen, len(s))
	}
	if strings.Trim(s, Unreserved) != "" {
		return "may only contain A-Z a-z 0-9 - . _ ~"
	}
	return ""
}
