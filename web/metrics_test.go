package web

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
)

// TestMetricsEndpoint: /metrics speaks the Prometheus text format and
// carries the bridge's own series.
func TestMetricsEndpoint(t *testing.T) {
	hub := NewHub(HubConfig{}, zerolog.Nop())
	defer hub.Close()
	m := NewMetrics(hub)
	var _ bridge.Metrics = m
	m.CallStarted()
	m.Frame(320)
	m.Gap("media", 40)
	m.CaptionLatency(15 * time.Millisecond)
	m.AuthFailure("bearer")
	m.STTEvent("retry", "Unavailable")
	app := NewApp(Config{}, Deps{Registry: bridge.NewRegistry(bridge.Config{}), Hub: hub, Metrics: m, Log: zerolog.Nop()})
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
