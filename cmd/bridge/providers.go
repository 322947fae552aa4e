package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/rs/zerolog"

	"github.com/callcaptions/bridge/bridge/provider"
	"github.com/callcaptions/bridge/config"
	"github.com/callcaptions/bridge/web"
)

// webAuth is the media and webhook authentication of the HTTP side.
func webAuth(p config.Providers) web.Auth {
	a := web.Auth{
		TwilioAuthToken: p.TwilioAuthToken, SignalWireSigningKey: p.SignalWireSigningKey,
		BearerToken: p.MediaBearerToken, PathSecret: p.MediaPathSecret,
		ProviderBearer: byProvider(p.ProviderBearerTokens), ProviderPathSecret: byProvider(p.ProviderPathSecrets),
	}
	a.ExotelUser, a.ExotelPassword = p.ExotelCredentials()
	return a
}

// byProvider keys m by provider name; an empty m gives nil.
func byProvider(m map[string]string) map[provider.Name]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[provider.Name]string, len(m))
	for k, v := range m {
		out[provider.Name(k)] = v
	}
	return out
}

// byteOrders are the L16 byte order overrides for the bridge.
func byteOrders(p config.Providers) map[provider.Name]provider.ByteOrder {
	out := map[provider.Name]provider.ByteOrder{}
	for k, v := range p.ByteOrders() {
		o := provider.LittleEndian
		if v == "be" {
			o = provider.BigEndian
		}
		out[provider.Name(k)] = o
	}
	return out
}

// warnOpen says loudly, in the log, that media sockets take anyone.
func warnOpen(log zerolog.Logger, cfg config.Config) {
	if !cfg.Providers.Open() {
		return
	}
	ev := log.Warn().Str("fix", "set --twilio-auth-token, --media-bearer-token, --media-path-secret or --exotel-basic-auth")
	if cfg.PublicURL != "" {
		ev = ev.Str("public_url", cfg.PublicURL)
	}
	ev.Msg("media sockets are open to anyone: whoever finds the URL can stream audio into this bridge and create calls")
}

// printAuth adds to the banner how each provider authenticates and where
// its stream instructions are. Secrets are shown as <secret>.
func printAuth(w io.Writer, cfg config.Config, local string) {
	a := webAuth(cfg.Providers)
	base := local
	if cfg.PublicURL != "" {
		base = strings.TrimSuffix(cfg.PublicURL, "/")
	}
	if a.Open() {
		fmt.Fprintf(w, "  WARNING:       media sockets are OPEN TO ANYONE; set --twilio-auth-token, --media-bearer-token,\n")
		fmt.Fprintf(w, "                 --media-path-secret or --exotel-basic-auth before exposing this bridge\n")
		fmt.Fprintf(w, "  instructions:  %s/instructions/<twilio|signalwire|swml|plivo|vobiz|telnyx|exotel|vonage>\n", base)
		return
	}
	var parts []string
	for _, p := range provider.Names {
		s := strings.Join(a.Schemes(p), "/")
		if s == "" {
			s = "none (cannot connect)"
		}
		parts = append(parts, string(p)+": "+s)
	}
	fmt.Fprintf(w, "  media auth:    %s\n", strings.Join(parts, "; "))
	for _, p := range provider.Names {
		for _, m := range provider.Lookup(p).Markup {
			if len(a.Schemes(p)) == 0 {
				continue
			}
			url := base + "/instructions/" + m.Kind
			signed := (p == provider.Twilio && a.TwilioAuthToken != "") || (p == provider.SignalWire && a.SignalWireSigningKey != "")
			switch {
			case signed:
			case a.PathSecret != "" || a.ProviderPathSecret[p] != "":
				url += "/<secret>"
			default:
				url += "  (API token only: a provider needs a path secret to fetch it)"
			}
			fmt.Fprintf(w, "  %-14s %s\n", m.Kind+":", url)
		}
	}
}
