package web

import (
	"encoding/base64"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge/provider"
)

// nearMisses are the guesses a timing attack walks through: every prefix
// of secret, every length from empty to twice as long (each sharing as
// much of the secret as it can), every single-byte change, and the secret
// padded, cased or cut by a byte.
func nearMisses(secret string) []string {
	var out []string
	for i := range len(secret) {
		out = append(out, secret[:i])
	}
	for n := 0; n <= 2*len(secret); n++ {
		if n == len(secret) {
			continue
		}
		g := []byte(strings.Repeat(secret, 2)[:n])
		if n > len(secret) {
			g = append([]byte(secret), strings.Repeat("x", n-len(secret))...)
		}
		out = append(out, string(g))
	}
	for i := range len(secret) {
		b := []byte(secret)
		b[i] ^= 0x01
		out = append(out, string(b))
	}
	out = append(out, " "+secret, secret+" ", secret+"\n", secret+"\x00", strings.ToUpper(secret), secret[1:])
	return slices.DeleteFunc(out, func(g string) bool { return g == secret })
}

// TestTokensComparedInConstantTime: every secret the HTTP side checks (the
// API token and each media credential) opens only when it is exact, and
// the one function that compares them is crypto/subtle's comparison over
// hashes of both sides, so that neither a shared prefix nor the length
// shows in the time a refusal takes.
func TestTokensComparedInConstantTime(t *testing.T) {
	secrets := []string{"correct-horse-battery-staple", "k", strings.Repeat("0123456789abcdef", 8) + "é"}

	t.Run("equalSecret accepts only the exact secret", func(t *testing.T) {
		for _, want := range secrets {
			require.True(t, equalSecret(want, want), "%q", want)
			require.True(t, equalSecret(string([]byte(want)), want), "a copy, not the same string header")
			for _, got := range nearMisses(want) {
				require.False(t, equalSecret(got, want), "%q opened %q", got, want)
				require.False(t, equalSecret(want, got), "%q opened %q", want, got)
			}
		}
	})

	t.Run("each media credential opens only when exact", func(t *testing.T) {
		const (
			path, bearer   = "shared-path-secret-0123", "shared-bearer-token-0123"
			plivo, sw      = "plivo-only-secret-0123", "signalwire-only-token-0123"
			user, password = "KEY0123", "TOKEN0123"
		)
		a := Auth{PathSecret: path, BearerToken: bearer,
			ProviderPathSecret: map[provider.Name]string{provider.Plivo: plivo},
			ProviderBearer:     map[provider.Name]string{provider.SignalWire: sw},
			ExotelUser:         user, ExotelPassword: password}
		basic := func(u, p string) string { return base64.StdEncoding.EncodeToString([]byte(u + ":" + p)) }

		for _, k := range []struct {
			what   string
			p      provider.Name
			shared string
			own    map[provider.Name]string
		}{
			{"path secret", provider.Plivo, a.PathSecret, a.ProviderPathSecret},
			{"bearer", provider.SignalWire, a.BearerToken, a.ProviderBearer},
		} {
			for _, exact := range []string{k.shared, k.own[k.p]} {
				_, ok := matchSecret(k.p, exact, k.shared, k.own)
				require.True(t, ok, exact)
				for _, g := range nearMisses(exact) {
					_, ok := matchSecret(k.p, g, k.shared, k.own)
					require.False(t, ok, "%s %q", k.what, g)
				}
			}
		}
		require.True(t, a.matchBasic(basic(user, password)))
		for _, g := range nearMisses(user) {
			require.False(t, a.matchBasic(basic(g, password)), "user %q", g)
		}
		for _, g := range nearMisses(password) {
			require.False(t, a.matchBasic(basic(user, g)), "password %q", g)
		}
	})

	t.Run("only the exact API token opens the API", func(t *testing.T) {
		const tok = "correct-horse-battery-staple"
		app, _, _ := securityApp(t, Config{APIToken: tok})
		requests := func(got string) []*http.Request {
			q := httptest.NewRequest(http.MethodGet, "/api/calls?token="+url.QueryEscape(got), nil)
			if strings.TrimRight(got, " ") != got || strings.ContainsFunc(got, func(r rune) bool { return r < ' ' || r == 0x7f }) {
				// A header cannot carry control characters, and HTTP strips
				// white space after its value: such a guess is either no
				// request or the token itself by the time it is compared.
				return []*http.Request{q}
			}
			h := httptest.NewRequest(http.MethodGet, "/api/calls", nil)
			h.Header.Set("Authorization", "Bearer "+got)
			c := httptest.NewRequest(http.MethodGet, "/api/calls", nil)
			c.Header.Set("Cookie", TokenCookie+"="+url.QueryEscape(got))
			return []*http.Request{q, h, c}
		}
		for _, req := range requests(tok) {
			resp, _ := fetch(t, app, req)
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s %v", req.URL, req.Header)
		}
		for _, got := range nearMisses(tok) {
			for _, req := range requests(got) {
				resp, _ := fetch(t, app, req)
				require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%q opened the API: %s %v", got, req.URL, req.Header)
			}
		}
		resp, _ := fetch(t, app, httptest.NewRequest(http.MethodGet, "/api/calls", nil))
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "no token at all")
	})

	t.Run("equalSecret is crypto/subtle over hashes of both sides", func(t *testing.T) {
		files := parsePackage(t)
		var fn *ast.FuncDecl
		var file *ast.File
		for _, f := range files {
			for _, d := range f.Decls {
				if d, ok := d.(*ast.FuncDecl); ok && d.Recv == nil && d.Name.Name == "equalSecret" {
					fn, file = d, f
				}
			}
		}
		require.NotNil(t, fn, "equalSecret is declared")
		require.NoError(t, constantTimeCompare(fn, file))
	})

	t.Run("no secret is compared any other way", func(t *testing.T) {
		files := parsePackage(t)
		secret := secretFieldNames(files)
		require.Subset(t, secret, []string{"APIToken", "TwilioAuthToken", "SignalWireSigningKey", "BearerToken", "PathSecret",
			"ProviderBearer", "ProviderPathSecret", "ExotelUser", "ExotelPassword"})
		for name, f := range files {
			require.Empty(t, plainComparisons(f, secret), "%s compares a secret in variable time", name)
		}
	})

	t.Run("the checks above catch what they look for", func(t *testing.T) {
		bad := map[string]string{
			"==":              `func (s *Server) tokenOK(got string) bool { return got == s.cfg.APIToken }`,
			"!= via a copy":   `func (a Auth) ok(p provider.Name, got string) bool { want := a.ProviderPathSecret[p]; return want != "" && !(got != want) }`,
			"a prefix":        `func (a Auth) ok(got string) bool { return strings.HasPrefix(got, a.BearerToken) }`,
			"bytes.Equal":     `func (a Auth) ok(got []byte) bool { return bytes.Equal(got, []byte(a.ExotelPassword)) }`,
			"hmac of one arg": `func (a Auth) ok(got []byte) bool { return hmac.Equal(got, []byte(a.PathSecret)) }`,
		}
		secret := []string{"APIToken", "BearerToken", "PathSecret", "ProviderPathSecret", "ExotelPassword"}
		for name, src := range bad {
			f, err := parser.ParseFile(token.NewFileSet(), "bad.go", "package web\n"+src, 0)
			require.NoError(t, err)
			require.NotEmpty(t, plainComparisons(f, secret), "%s was not caught", name)
		}
		ok, err := parser.ParseFile(token.NewFileSet(), "ok.go", "package web\n"+
			`func (a Auth) ok(got string) bool { return a.BearerToken != "" && len(a.PathSecret) > 0 && equalSecret(got, a.BearerToken) }`, 0)
		require.NoError(t, err)
		require.Empty(t, plainComparisons(ok, secret), "a check for \"not set\" and equalSecret are fine")

		for name, src := range map[string]string{
			"bytes ==":            `func equalSecret(got, want string) bool { return got == want }`,
			"unhashed":            `func equalSecret(got, want string) bool { return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1 }`,
			"one side hashed":     `func equalSecret(got, want string) bool { g := sha256.Sum256([]byte(got)); w := sha256.Sum256([]byte(got)); return subtle.ConstantTimeCompare(g[:], w[:]) == 1 }`,
			"another subtle":      `func equalSecret(got, want string) bool { g := sha256.Sum256([]byte(got)); w := sha256.Sum256([]byte(want)); return fake.ConstantTimeCompare(g[:], w[:]) == 1 }`,
			"any non-zero result": `func equalSecret(got, want string) bool { g := sha256.Sum256([]byte(got)); w := sha256.Sum256([]byte(want)); return subtle.ConstantTimeCompare(g[:], w[:]) >= 0 }`,
			"an early exit first": `func equalSecret(got, want string) bool { if len(got) != len(want) { return false }; g := sha256.Sum256([]byte(got)); w := sha256.Sum256([]byte(want)); return subtle.ConstantTimeCompare(g[:], w[:]) == 1 }`,
		} {
			f, err := parser.ParseFile(token.NewFileSet(), "bad.go", "package web\nimport (\n\"crypto/sha256\"\n\"crypto/subtle\"\nfake \"example.com/subtle\"\n)\n"+src, 0)
			require.NoError(t, err)
			require.Error(t, constantTimeCompare(f.Decls[1].(*ast.FuncDecl), f), "%s was not caught", name)
		}
	})
}

// parsePackage parses the package's own (non-test) files.
func parsePackage(t *testing.T) map[string]*ast.File {
	t.Helper()
	names, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	out := map[string]*ast.File{}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		require.NoError(t, err)
		out[name] = f
	}
	require.NotEmpty(t, out)
	return out
}

// importName is the name file f gives the package at path ("" when f does
// not import it).
func importName(f *ast.File, path string) string {
	for _, im := range f.Imports {
		if p, _ := strconv.Unquote(im.Path.Value); p == path {
			if im.Name != nil {
				return im.Name.Name
			}
			return path[strings.LastIndex(path, "/")+1:]
		}
	}
	return ""
}

// constantTimeCompare checks that fn(got, want string) bool is exactly:
// hash each argument with crypto/sha256, compare the digests with
// crypto/subtle.ConstantTimeCompare, and return whether it said 1; with no
// other statement that could return early.
func constantTimeCompare(fn *ast.FuncDecl, f *ast.File) error {
	fail := func(format string, a ...any) error { return fmt.Errorf(fn.Name.Name+": "+format, a...) }
	var params []string
	for _, p := range fn.Type.Params.List {
		for _, n := range p.Names {
			params = append(params, n.Name)
		}
	}
	if len(params) != 2 {
		return fail("want two parameters, got %d", len(params))
	}
	subtleName, shaName := importName(f, "crypto/subtle"), importName(f, "crypto/sha256")
	if subtleName == "" || shaName == "" {
		return fail("the file must import crypto/subtle and crypto/sha256")
	}
	hashed := map[string]string{} // digest variable → the parameter it hashes
	var ret *ast.ReturnStmt
	for _, st := range fn.Body.List {
		switch st := st.(type) {
		case *ast.AssignStmt:
			if len(st.Lhs) != 1 || len(st.Rhs) != 1 {
				return fail("unexpected assignment")
			}
			lhs, _ := st.Lhs[0].(*ast.Ident)
			arg, ok := callOf(st.Rhs[0], shaName, "Sum256")
			if lhs == nil || !ok {
				return fail("every assignment must be a sha256.Sum256 digest")
			}
			conv, ok := arg.(*ast.CallExpr) // []byte(param)
			if !ok || len(conv.Args) != 1 {
				return fail("sha256.Sum256 must hash []byte(<parameter>)")
			}
			id, ok := conv.Args[0].(*ast.Ident)
			if !ok || !slices.Contains(params, id.Name) {
				return fail("sha256.Sum256 must hash a parameter")
			}
			hashed[lhs.Name] = id.Name
		case *ast.ReturnStmt:
			ret = st
		default:
			return fail("unexpected statement (an early exit would leak timing)")
		}
	}
	if ret == nil || len(ret.Results) != 1 {
		return fail("no return of the comparison")
	}
	cmp, ok := ret.Results[0].(*ast.BinaryExpr)
	if !ok || cmp.Op != token.EQL {
		return fail("must return ConstantTimeCompare(...) == 1")
	}
	if lit, ok := cmp.Y.(*ast.BasicLit); !ok || lit.Value != "1" {
		return fail("must return ConstantTimeCompare(...) == 1")
	}
	call, ok := cmp.X.(*ast.CallExpr)
	if !ok {
		return fail("must call crypto/subtle.ConstantTimeCompare")
	}
	if sel, ok := call.Fun.(*ast.SelectorExpr); !ok || sel.Sel.Name != "ConstantTimeCompare" || !isIdent(sel.X, subtleName) || len(call.Args) != 2 {
		return fail("must call crypto/subtle.ConstantTimeCompare")
	}
	var compared []string
	for _, a := range call.Args {
		s, ok := a.(*ast.SliceExpr)
		if !ok {
			return fail("must compare the two digests")
		}
		v, ok := s.X.(*ast.Ident)
		if !ok || hashed[v.Name] == "" {
			return fail("must compare the two digests")
		}
		compared = append(compared, hashed[v.Name])
	}
	slices.Sort(compared)
	want := slices.Clone(params)
	slices.Sort(want)
	if !slices.Equal(compared, want) {
		return fail("must compare the digests of both parameters, got %v", compared)
	}
	return nil
}

// callOf reports whether e is pkg.name(arg) and returns arg.
func callOf(e ast.Expr, pkg, name string) (ast.Expr, bool) {
	c, ok := e.(*ast.CallExpr)
	if !ok || len(c.Args) != 1 {
		return nil, false
	}
	sel, ok := c.Fun.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != name || !isIdent(sel.X, pkg) {
		return nil, false
	}
	return c.Args[0], true
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

// secretFieldNames are the fields of Auth (every one holds a credential)
// and Config.APIToken.
func secretFieldNames(files map[string]*ast.File) []string {
	out := []string{"APIToken"}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok || ts.Name.Name != "Auth" {
				return true
			}
			for _, fld := range ts.Type.(*ast.StructType).Fields.List {
				for _, name := range fld.Names {
					out = append(out, name.Name)
				}
			}
			return false
		})
	}
	return out
}

// plainComparisons finds, in every function of f, a comparison that is
// not constant-time of a secret: == or != (other than with "", which only
// asks whether it is set), or a call to a bytes/strings/hmac function,
// with a secret field, an element of one, or a local variable assigned
// from either, on one side.
func plainComparisons(f *ast.File, secretFields []string) []string {
	var found []string
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Body == nil {
			continue
		}
		tainted := map[string]bool{}
		var isSecret func(e ast.Expr) bool
		isSecret = func(e ast.Expr) bool {
			switch e := e.(type) {
			case *ast.SelectorExpr:
				return slices.Contains(secretFields, e.Sel.Name)
			case *ast.IndexExpr:
				return isSecret(e.X)
			case *ast.Ident:
				return tainted[e.Name]
			case *ast.ParenExpr:
				return isSecret(e.X)
			case *ast.CallExpr: // a conversion such as []byte(secret)
				return len(e.Args) == 1 && isSecret(e.Args[0]) && !isIdent(e.Fun, "len")
			}
			return false
		}
		// Local copies of a secret are secrets too (two passes reach a
		// copy of a copy).
		for range 2 {
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				if as, ok := n.(*ast.AssignStmt); ok && len(as.Lhs) == len(as.Rhs) {
					for i, l := range as.Lhs {
						if id, ok := l.(*ast.Ident); ok && isSecret(as.Rhs[i]) {
							tainted[id.Name] = true
						}
					}
				}
				return true
			})
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BinaryExpr:
				if n.Op != token.EQL && n.Op != token.NEQ {
					return true
				}
				for _, side := range [][2]ast.Expr{{n.X, n.Y}, {n.Y, n.X}} {
					if lit, ok := side[1].(*ast.BasicLit); ok && lit.Value == `""` {
						continue
					}
					if isSecret(side[0]) {
						found = append(found, fn.Name.Name+": "+n.Op.String())
						break
					}
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				pkg, _ := sel.X.(*ast.Ident)
				if pkg == nil || (pkg.Name != "strings" && pkg.Name != "bytes" && pkg.Name != "hmac" && pkg.Name != "reflect") {
					return true
				}
				if slices.ContainsFunc(n.Args, isSecret) {
					found = append(found, fn.Name.Name+": "+pkg.Name+"."+sel.Sel.Name)
				}
			}
			return true
		})
	}
	return found
}
