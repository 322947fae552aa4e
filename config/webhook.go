package config

import (
	"slices"
	"strings"
	"time"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/webhook"
	"github.com/callcaptions/bridge/stt"
)

// Webhook configures deliveries of the bridge's events to the user's back
// end (Standard Webhooks). Off when no URL is set.
type Webhook struct {
	URLs    []string      `name:"webhook-url" env:"BRIDGE_WEBHOOK_URL" sep:"," help:"Endpoint that receives signed POSTs of the call events (repeatable; comma-separated in the environment). Only these URLs are ever called; redirects are not followed."`
	Secret  string        `name:"webhook-secret" env:"BRIDGE_WEBHOOK_SECRET" help:"Signing secret, Standard Webhooks form whsec_<base64 key>, the key 24 to 64 random bytes; required with --webhook-url. Make one: echo whsec_$(head -c 32 /dev/urandom | base64)"`
	Events  []string      `name:"webhook-events" env:"BRIDGE_WEBHOOK_EVENTS" sep:"," default:"${webhook_events}" help:"Event types delivered (comma-separated). transcript.partial is allowed but off by default."`
	Timeout time.Duration `name:"webhook-timeout" env:"BRIDGE_WEBHOOK_TIMEOUT" default:"${webhook_timeout}" help:"Time limit of one delivery attempt (connect, send, answer); 1s to 2m."`
	// InlineMax bounds the transcript carried inside transcript.ready
	// (webhook body and caption socket); 0: never inline.
	InlineMax int `name:"inline-transcript-max" env:"BRIDGE_INLINE_TRANSCRIPT_MAX" default:"${inline_transcript_max}" help:"Largest transcript (bytes of JSON) carried inside transcript.ready, on the caption socket and to webhooks; a larger one is only linked (url). 0: always only linked. Lower it when the receiver limits request bodies (e.g. 100 KiB). 0 to 262144."`
	Attempts  int `name:"webhook-attempts" env:"BRIDGE_WEBHOOK_ATTEMPTS" default:"${webhook_attempts}" help:"Attempts per event (the first and its retries, 1s doubling to 5m with jitter) before it is given up and listed in the call record; 1 to 30."`
}

// Enabled reports whether webhooks are on.
func (w Webhook) Enabled() bool { return len(w.URLs) > 0 }

// webhookTypes are the event types --webhook-events accepts.
var webhookTypes = []string{
	bridge.TypeCallStarted, bridge.TypeCallUpdated, bridge.TypeCallEnded, bridge.TypeTranscriptPartial,
	bridge.TypeTranscriptFinal, bridge.TypeTranscriptReady, bridge.TypeRecordingReady, bridge.TypeDTMF, bridge.TypeGap,
	bridge.TypeSTTPrefix + stt.EventRollover, bridge.TypeSTTPrefix + stt.EventRetry, bridge.TypeSTTPrefix + stt.EventResumed,
	bridge.TypeSTTPrefix + stt.EventFailed, bridge.TypeSTTPrefix + stt.EventGap,
}

// check reports every problem with the webhook settings.
func (w Webhook) check(bad func(setting, format string, a ...any)) {
	if w.InlineMax < 0 || w.InlineMax > bridge.MaxInlineTranscript {
		bad("inline-transcript-max", "%d must be from 0 to %d", w.InlineMax, bridge.MaxInlineTranscript)
	}
	if !w.Enabled() {
		if w.Secret != "" {
			bad("webhook-secret", "has no effect without --webhook-url")
		}
		return
	}
	for _, u := range w.URLs {
		if _, err := webhook.Label(u); err != nil {
			bad("webhook-url", "%q must be an absolute http:// or https:// URL", u)
		}
	}
	if w.Secret == "" {
		bad("webhook-secret", "is required with --webhook-url: whsec_<base64 key> (make one: echo whsec_$(head -c 32 /dev/urandom | base64))")
	} else if _, err := webhook.ParseSecret(w.Secret); err != nil {
		bad("webhook-secret", "%v", err)
	}
	if len(w.Events) == 0 {
		bad("webhook-events", "names no event type (e.g. %s)", strings.Join(webhook.DefaultEvents, ","))
	}
	for _, e := range w.Events {
		if !slices.Contains(webhookTypes, e) {
			bad("webhook-events", "%q is not an event type (%s)", e, strings.Join(webhookTypes, ", "))
		}
	}
	if w.Timeout < time.Second || w.Timeout > 2*time.Minute {
		bad("webhook-timeout", "%s must be from 1s to 2m", w.Timeout)
	}
	if w.Attempts < 1 || w.Attempts > 30 {
		bad("webhook-attempts", "%d must be from 1 to 30", w.Attempts)
	}
}
