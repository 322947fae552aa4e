package config

import (
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kong"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/webhook"
	"github.com/callcaptions/bridge/web"
)

// defaults are the defaults the components own, for the ${…} in the
// struct tags: each is written once, where it is used.
func defaults() kong.Vars {
	vars := googleVars()
	maps.Copy(vars, limitVars())
	maps.Copy(vars, kong.Vars{
		"webhook_events":        strings.Join(webhook.DefaultEvents, ","),
		"webhook_timeout":       shortDuration(webhook.DefaultTimeout),
		"webhook_attempts":      strconv.Itoa(webhook.DefaultAttempts),
		"inline_transcript_max": strconv.Itoa(bridge.MaxInlineTranscript),
	})
	return vars
}

// limitVars are the bridge's, the HTTP side's and the caption hub's own
// defaults, for the ${…} in the tags of Limits and Dashboard.
func limitVars() kong.Vars {
	b, w, h := bridge.Defaults(), web.Defaults(), web.HubDefaults()
	return kong.Vars{
		"max_calls":                strconv.Itoa(b.MaxCalls),
		"max_streams_per_call":     strconv.Itoa(b.MaxStreamsPerCall),
		"max_call_duration":        shortDuration(b.MaxCallDuration),
		"max_gap":                  shortDuration(b.MaxGap),
		"stt_queue":                shortDuration(b.STTQueue),
		"max_events_per_call":      strconv.Itoa(b.MaxEventsPerCall),
		"resume_window":            shortDuration(b.ResumeWindow),
		"max_message_bytes":        strconv.Itoa(w.MaxMessageBytes),
		"idle_timeout":             shortDuration(w.IdleTimeout),
		"max_pending_streams":      strconv.Itoa(w.MaxPendingStreams),
		"start_timeout":            shortDuration(w.StartTimeout),
		"max_sockets_per_address":  strconv.Itoa(w.MaxSocketsPerAddress),
		"media_batch":              shortDuration(w.MediaBatch),
		"inbound_label":            w.InboundLabel,
		"outbound_label":           w.OutboundLabel,
		"max_subscribers":          strconv.Itoa(h.MaxSubscribers),
		"max_subscribers_per_call": strconv.Itoa(h.MaxPerCall),
		"subscriber_wait":          shortDuration(h.WaitTimeout),
		"subscriber_queue":         strconv.Itoa(h.Outbox),
		"max_replay_bytes":         strconv.Itoa(h.MaxReplayBytes),
	}
}

// shortDuration writes d as a person would type it: 4h, 2m, 1m30s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
