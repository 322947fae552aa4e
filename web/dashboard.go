package web

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"
)

// dashboardConfig is GET /api/config: what the page needs to know about the
// bridge that serves it.
type dashboardConfig struct {
	InboundLabel  string `json:"inbound_label"`
	OutboundLabel string `json:"outbound_label"`
	// TokenRequired says the API and sockets need the token (the page holds
	// it in an HttpOnly cookie, so it can only learn this from the server).
	TokenRequired bool   `json:"token_required"`
	Version       string `json:"version"`
}

func (s *Server) getConfig(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-cache")
	return c.JSON(dashboardConfig{
		InboundLabel:  s.cfg.InboundLabel,
		OutboundLabel: s.cfg.OutboundLabel,
		TokenRequired: s.cfg.APIToken != "",
		Version:       s.cfg.Version,
	})
}

// buildVersion is the module version, or the VCS revision the binary was
// built from, or "devel".
var buildVersion = sync.OnceValue(func() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	rev = rev[:min(len(rev), 12)]
	if dirty {
		rev += "-dirty"
	}
	return "devel " + rev
})

// wantsPage reports whether a failed request was a page load in a browser
// (as opposed to an API call, a socket or a script's fetch), which should
// get an explanation in HTML rather than JSON.
func wantsPage(c *fiber.Ctx) bool {
	return c.Method() == fiber.MethodGet &&
		!strings.HasPrefix(c.Path(), "/api/") &&
		!websocket.IsWebSocketUpgrade(c) &&
		strings.Contains(c.Get(fiber.HeaderAccept), "text/html")
}

// errorPageStyle is the only style of the error page; the page's own CSP
// allows exactly this by hash, since the dashboard's stylesheet is behind
// the token too.
const errorPageStyle = `body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;display:grid;place-items:center;min-height:100vh;background:#f6f7f9;color:#1d2430}
main{max-width:34rem;margin:1.5rem;padding:2rem;background:#fff;border:1px solid #dde1e7;border-radius:12px}
h1{font-size:1.25rem;margin:0 0 .75rem}p{margin:.5rem 0}code{font-size:.9em;background:#eef0f4;padding:.1em .35em;border-radius:4px}
form{display:flex;gap:.5rem;margin-top:1rem;flex-wrap:wrap}input{flex:1;min-width:12rem;font:inherit;padding:.45rem .6rem;border:1px solid #b8bfca;border-radius:6px}
button{font:inherit;padding:.45rem 1rem;border-radius:6px;border:1px solid #1f5fbf;background:#1f5fbf;color:#fff;cursor:pointer}
:focus-visible{outline:3px solid #1f5fbf;outline-offset:2px}
@media (prefers-color-scheme:dark){body{background:#12151a;color:#e4e8ee}main{background:#1a1f26;border-color:#2c333d}code{background:#262d37}input{background:#12151a;color:inherit;border-color:#4a5463}button{background:#4d8fea;border-color:#4d8fea;color:#0b0e12}:focus-visible{outline-color:#7fb0f5}}`

var errorPageCSP = func() string {
	sum := sha256.Sum256([]byte(errorPageStyle))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
}()

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Title}} · Call captions</title><style>{{.Style}}</style></head>
<body><main>
<h1>{{.Title}}</h1>
{{if .Token}}<p>This bridge is protected by an access token.</p>
<p>Open the dashboard link the bridge printed when it started. It looks like <code>http://host:port/?token=…</code>; this browser then keeps the token in a cookie, so you only need the link once.</p>
<form method="get" action="/"><label for="token" hidden>Access token</label><input id="token" name="token" type="password" autocomplete="off" placeholder="or paste the token here" required aria-label="Access token"><button type="submit">Open dashboard</button></form>
{{else}}<p>{{.Message}}</p>{{end}}
</main></body></html>
`))

// errorHTML answers a failed page load with a short explanation.
func errorHTML(c *fiber.Ctx, code int, msg string) error {
	title := http.StatusText(code)
	token := code == fiber.StatusUnauthorized
	if token {
		title = "Access token needed"
	}
	c.Set(fiber.HeaderContentSecurityPolicy, errorPageCSP)
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Status(code)
	return errorPage.Execute(c.Response().BodyWriter(), struct {
		Title, Message string
		Token          bool
		Style          template.CSS
	}{title, msg, token, template.CSS(errorPageStyle)})
}
