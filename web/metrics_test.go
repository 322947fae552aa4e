package web

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
)

// TestMetricsEndpoint: /metrics speaks the Prometheus text format and
// carries the bridge's own series.
func TestMetricsEndpoint(t *testing.T) {
	hub := NewHub(HubConfig{}, zerolog.Nop())
	defer hub.Close()
	m := newPromSet(hub)
	m.bridge.CallStarted()
	m.bridge.Frame(320)
	m.bridge.Gap("media", 40)
	m.bridge.CaptionLatency(15 * time.Millisecond)
	m.web.AuthFailure("bearer")
	m.bridge.STTEvent("retry", "Unavailable")
	app := NewApp(Config{}, Deps{Registry: bridge.NewRegistry(bridge.Config{}), Hub: hub, Metrics: m.web, Gatherer: m, Log: zerolog.Nop()})
	resp, err := app.Test(httptest.NewRequest("GET", "/metrics", nil))
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	b, _ := io.ReadAll(resp.Body)
	body := string(b)
	for _, want := range []string{
		"bridge_calls_active 1",
		"bridge_media_frames_total 1",
		"bridge_recorded_bytes_total 320",
		`bridge_gap_milliseconds_total{kind="media"} 40`,
		`bridge_caption_latency_seconds_bucket{le="0.02"} 1`,
		`bridge_auth_failures_total{scheme="bearer"} 1`,
		`bridge_stt_events_total{code="Unavailable",event="retry"} 1`,
		"bridge_subscribers 0",
		"go_goroutines",
	} {
		require.True(t, strings.Contains(body, want), "missing %q in /metrics", want)
	}
}

// promSet is the process's metrics as serve wires them: the bridge's and
// the HTTP side's collectors on one registry, which /metrics exports.
type promSet struct {
	*prometheus.Registry
	bridge *bridge.Metrics
	web    *Metrics
}

func newPromSet(hub *Hub) promSet {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector())
	bm := bridge.NewMetrics(r)
	return promSet{r, bm, NewMetrics(r, hub, bm)}
}
