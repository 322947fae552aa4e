package config

import (
	"strings"
	"unicode/utf8"
)

// Dashboard configures what people see on the dashboard and in caption
// files.
type Dashboard struct {
	InboundLabel  string `name:"inbound-label" default:"${inbound_label}" env:"BRIDGE_INBOUND_LABEL" help:"Name shown for the inbound track (the caller) on the dashboard and in caption files."`
	OutboundLabel string `name:"outbound-label" default:"${outbound_label}" env:"BRIDGE_OUTBOUND_LABEL" help:"Name shown for the outbound track (what the caller hears) on the dashboard and in caption files."`
}

// maxLabel bounds a track label: it heads every caption line.
const maxLabel = 40

// check reports each problem with the labels to bad.
func (d Dashboard) check(bad func(setting, format string, a ...any)) {
	for _, l := range []struct{ flag, v string }{{"inbound-label", d.InboundLabel}, {"outbound-label", d.OutboundLabel}} {
		switch {
		case strings.TrimSpace(l.v) == "":
			bad(l.flag, "must not be empty")
		case !utf8.ValidString(l.v) || strings.ContainsAny(l.v, "\r\n\t"):
			bad(l.flag, "must be one line of text, got %q", l.v)
		case utf8.RuneCountInString(l.v) > maxLabel:
			bad(l.flag, "at most %d characters, got %d", maxLabel, utf8.RuneCountInString(l.v))
		}
	}
}
