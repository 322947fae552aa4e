package web

import (
	"net"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// hostPolicy is the set of Host names the dashboard, the REST API and the
// caption sockets answer. A page of another site whose name was rebound
// to this bridge's address (DNS rebinding) sends its own name as Host and
// is refused, token or not. Loopback names are always served.
type hostPolicy struct {
	any   bool
	names map[string]bool // lower case, no port, no brackets, no trailing dot
}

// newHostPolicy allows loopback, the host of publicURL and every name in
// extra ("*" allows any Host). Names that do not parse are skipped: config
// validates them.
func newHostPolicy(publicURL string, extra []string) hostPolicy {
	p := hostPolicy{names: map[string]bool{}}
	add := func(h string) {
		if h == "*" {
			p.any = true
			return
		}
		if name, ok := parseHost(h); ok {
			p.names[name] = true
		}
	}
	if publicURL != "" {
		if _, rest, ok := strings.Cut(publicURL, "://"); ok {
			host, _, _ := strings.Cut(rest, "/")
			add(host)
		}
	}
	for _, h := range extra {
		add(strings.TrimSpace(h))
	}
	return p
}

// allows reports whether a request's Host header names this bridge.
func (p hostPolicy) allows(host string) bool {
	name, ok := parseHost(host)
	switch {
	case !ok:
		return false
	case p.any || isLoopbackName(name):
		return true
	}
	return p.names[name]
}

// parseHost reduces a Host header to the name it carries: lower case,
// without the port, IPv6 brackets or a trailing dot. ok is false for
// anything that is not a name or an address with an optional numeric port.
func parseHost(h string) (name string, ok bool) {
	if h == "" || len(h) > 260 {
		return "", false
	}
	port := ""
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", false
		}
		name, port = h[1:end], h[end+1:]
		if ip := net.ParseIP(name); ip == nil || ip.To4() != nil && !strings.Contains(name, ":") {
			return "", false
		}
		if port != "" && !strings.HasPrefix(port, ":") {
			return "", false
		}
		port = strings.TrimPrefix(port, ":")
	} else {
		var hasPort bool
		name, port, hasPort = strings.Cut(h, ":")
		if hasPort && port == "" || strings.Contains(port, ":") {
			return "", false
		}
	}
	if len(port) > 5 || strings.Trim(port, "0123456789") != "" {
		return "", false
	}
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if name == "" {
		return "", false
	}
	if strings.Contains(name, ":") { // an IPv6 address, checked above
		return name, true
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return "", false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", false
			}
		}
	}
	return name, true
}

// isLoopbackName: localhost, *.localhost (RFC 6761), 127.0.0.0/8, ::1.
func isLoopbackName(name string) bool {
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return true
	}
	ip := net.ParseIP(name)
	return ip != nil && ip.IsLoopback()
}

// checkHost refuses requests whose Host is not one of the bridge's names,
// before the token is looked at. It reads the Host header itself, never
// X-Forwarded-Host, which a page can set on a request to its own origin.
func (s *Server) checkHost(c *fiber.Ctx) error {
	host := string(c.Request().Header.Host())
	if s.hosts.allows(host) {
		return c.Next()
	}
	s.metr.AuthFailure(SchemeHost)
	return fiber.NewError(fiber.StatusForbidden, "Host "+quoteHost(host)+" is not a name of this bridge: add it to --allowed-hosts (or set --public-url to the address browsers use)")
}

// quoteHost shows a Host value safely in a message: printable ASCII only,
// at most 64 bytes of it.
func quoteHost(h string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(h) && i < 64; i++ {
		if c := h[i]; c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			b.WriteByte(c)
		} else {
			b.WriteByte('?')
		}
	}
	if len(h) > 64 {
		b.WriteString("...")
	}
	b.WriteByte('"')
	return b.String()
}
