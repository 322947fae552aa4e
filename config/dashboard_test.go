package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDashboardLabels(t *testing.T) {
	cases := []struct {
		name          string
		args, env     []string
		inbound, outb string
		problems      []string
	}{
		{name: "defaults", inbound: "Caller", outb: "Agent"},
		{name: "flags", args: []string{"--inbound-label", "Patient", "--outbound-label", "Nurse"}, inbound: "Patient", outb: "Nurse"},
		{name: "environment", env: []string{"BRIDGE_INBOUND_LABEL=Kunde", "BRIDGE_OUTBOUND_LABEL=Bearbeiterin"}, inbound: "Kunde", outb: "Bearbeiterin"},
		{name: "empty and too long, both reported", args: []string{"--inbound-label", " ", "--outbound-label", strings.Repeat("x", 41)},
			problems: []string{"--inbound-label: must not be empty", "--outbound-label: at most 40 characters, got 41"}},
		{name: "one line only", args: []string{"--inbound-label", "a\nb"}, problems: []string{`--inbound-label: must be one line of text, got "a\nb"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, ok := loadCase(t, tc.env, tc.args, tc.problems)
			if !ok {
				return
			}
			require.Equal(t, tc.inbound, cfg.Dashboard.InboundLabel)
			require.Equal(t, tc.outb, cfg.Dashboard.OutboundLabel)
		})
	}
}
