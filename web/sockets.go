package web

import (
	"sync"
	"time"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"
)

// Kinds of sockets capped per remote address.
const (
	kindMedia    = "media"
	kindCaptions = "captions"
)

// addressCaps counts the open sockets of each kind per remote address and
// refuses one more beyond max (Config.MaxSocketsPerAddress). Behind a
// reverse proxy or a tunnel (ngrok) every socket comes from the proxy's
// address, so the cap then bounds the proxy as a whole.
type addressCaps struct {
	max int // <= 0: no cap
	mu  sync.Mutex
	// open holds one entry per address with a socket open, removed when its
	// last socket closes: it is bounded by the open sockets.
	open map[string]map[string]int // kind → address → open sockets
}

func newAddressCaps(max int) *addressCaps {
	return &addressCaps{max: max, open: map[string]map[string]int{kindMedia: {}, kindCaptions: {}}}
}

// full says whether addr has its share of sockets of kind open already
// (checked before the upgrade; hold decides).
func (a *addressCaps) full(kind, addr string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.max > 0 && a.open[kind][addr] >= a.max
}

// hold takes a place for one socket of kind from addr, or reports false
// when addr has its share; release gives it back.
func (a *addressCaps) hold(kind, addr string) bool {
	if a.max <= 0 {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.open[kind][addr] >= a.max {
		return false
	}
	a.open[kind][addr]++
	return true
}

func (a *addressCaps) release(kind, addr string) {
	if a.max <= 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.open[kind][addr]--; a.open[kind][addr] <= 0 {
		delete(a.open[kind], addr)
	}
}

// capAddress refuses, before the upgrade, a socket of kind from an address
// that has its share open: 429, counted.
func (s *Server) capAddress(kind string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if s.sockets.full(kind, c.IP()) {
			s.metr.perAddress.WithLabelValues(kind).Inc()
			c.Set(fiber.HeaderRetryAfter, "5")
			return fiber.NewError(fiber.StatusTooManyRequests, "too many "+kind+" sockets from this address (--max-sockets-per-address)")
		}
		return c.Next()
	}
}

// writeClose sends a close frame, its reason cut to 120 bytes (a control
// frame's payload is at most 125).
func writeClose(c *websocket.Conn, code int, reason string, timeout time.Duration) error {
	if len(reason) > 120 {
		reason = reason[:120]
	}
	return c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(timeout))
}
