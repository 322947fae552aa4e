package config

import (
	"fmt"
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

// validate reports every problem with the labels.
func (d Dashboard) validate() []error {
	var errs []error
	for _, l := range []struct{ flag, v string }{{"inbound-label", d.InboundLabel}, {"outbound-label", d.OutboundLabel}} {
		switch {
		case strings.TrimSpace(l.v) == "":
			errs = append(errs, fmt.Errorf("--%s: must not be empty", l.flag))
		case !utf8.ValidString(l.v) || strings.ContainsAny(l.v, "\r\n\t"):
			errs = append(errs, fmt.Errorf("--%s: must be one line of text, got %q", l.flag, l.v))
		case utf8.RuneCountInString(l.v) > maxLabel:
			errs = append(errs, fmt.Errorf("--%s: at most %d characters, got %d", l.flag, maxLabel, utf8.RuneCountInString(l.v)))
		}
	}
	return errs
}
