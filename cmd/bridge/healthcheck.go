package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/callcaptions/bridge/config"
)

type healthcheckCmd struct{}

// healthcheck asks the bridge listening on cfg.Addr for /healthz; distroless
// images have no curl, so the binary checks itself. It asks by a loopback
// address, a Host every bridge serves, and sends the API token when it
// finds one (--api-token, else <--data>/api-token): /healthz needs none
// today, and a proxy in front may.
func healthcheck(ctx context.Context, cfg config.Config) error {
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return err
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		return err
	}
	if tok, err := findAPIToken(cfg); err == nil && tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/healthz answered %s", resp.Status)
	}
	return nil
}
