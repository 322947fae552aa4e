package main

import (
	"path/filepath"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/webhook"
	"github.com/callcaptions/bridge/config"
)

// --webhook-url: a publisher beside the caption hub queues the events of
// this replica's calls for the user's endpoints. Only the replica that
// holds a call publishes its events into its local Fanout (the cluster
// reader hands other replicas' events to the hub alone), so in cluster
// mode each event is delivered by one replica. The outbox lives in
// <data>/webhooks.

// newWebhooks builds the publisher; nil when no URL is set. failed is told
// about each delivery given up on (it lists it in the call record).
func newWebhooks(cfg config.Config, reg prometheus.Registerer, failed webhook.Failed, log zerolog.Logger) (*webhook.Publisher, error) {
	if !cfg.Webhook.Enabled() {
		return nil, nil
	}
	p, err := webhook.New(webhook.Config{
		URLs: cfg.Webhook.URLs, Secret: cfg.Webhook.Secret, Events: cfg.Webhook.Events,
		Dir: filepath.Join(cfg.Data, "webhooks"), Timeout: cfg.Webhook.Timeout, Attempts: cfg.Webhook.Attempts,
	}, webhook.NewMetrics(reg), failed, log)
	if err != nil {
		return nil, err
	}
	log.Info().Int("endpoints", len(cfg.Webhook.URLs)).Strs("events", cfg.Webhook.Events).Msg("webhooks: call events are delivered to the configured endpoints")
	return p, nil
}

// withWebhooks adds the webhook publisher to pubs when there is one.
func withWebhooks(pubs bridge.Fanout, p *webhook.Publisher) bridge.Fanout {
	if p == nil {
		return pubs
	}
	return append(pubs, p)
}

// webhookFailures lists failed deliveries in the call records of reg,
// which is set once the registry exists (no call runs before).
type webhookFailures struct {
	mu  sync.Mutex
	reg *bridge.Registry
	log zerolog.Logger
}

func (w *webhookFailures) set(reg *bridge.Registry) {
	w.mu.Lock()
	w.reg = reg
	w.mu.Unlock()
}

func (w *webhookFailures) failed(callID string, f bridge.WebhookFailure) {
	w.mu.Lock()
	reg := w.reg
	w.mu.Unlock()
	if reg == nil {
		return
	}
	if err := reg.AttachWebhookFailure(callID, f); err != nil {
		w.log.Warn().Err(err).Str("call_id", callID).Msg("webhook failure not written into the call record")
	}
}

// runWebhooks runs p (nothing when nil) beside the server; stopping it
// leaves what is pending in the outbox.
func runWebhooks(p *webhook.Publisher) *beside {
	if p == nil {
		return runBeside(nil)
	}
	return runBeside(p.Run)
}
