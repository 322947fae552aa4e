// Command bridge accepts live phone-call audio from telephony providers,
// records every track to WAV, transcribes it and serves live captions, a
// dashboard, the recordings and transcripts.
//
//	go run ./cmd/bridge            # mock STT, ./data, http://127.0.0.1:8080
//	go run ./cmd/bridge --help     # every setting, its default and env variable
//	go run ./cmd/bridge simulate   # play a call into a running bridge
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"
	"github.com/rs/zerolog"

	"github.com/callcaptions/bridge/cmd/bridge/internal/exitcode"
	"github.com/callcaptions/bridge/cmd/bridge/internal/simulate"
	"github.com/callcaptions/bridge/cmd/bridge/internal/soak"
	"github.com/callcaptions/bridge/config"
)

// cli is the command line: the bridge's settings and its sub-commands.
type cli struct {
	config.Config
	Serve       serveCmd       `cmd:"" default:"1" help:"Run the bridge (the default when no command is given)."`
	Healthcheck healthcheckCmd `cmd:"" help:"Exit 0 when the bridge at --addr answers /healthz (for container health checks)."`
	Simulate    simulate.Cmd   `cmd:"" help:"Play calls into a running bridge as a provider would (from a WAV or generated speech); with --calls N, the load tool."`
	Soak        soak.Cmd       `cmd:"" help:"Run calls with random faults (drops, garbage, stalls, duplicates, slow subscribers) under load for a while and check every call is accounted for."`
}

type serveCmd struct{}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code, one of the
// exitcode constants.
func run(args []string, stdout, stderr io.Writer) int {
	var c cli
	exit := -1
	opts := append(config.Options(stdout), kong.Exit(func(code int) { exit = code }))
	p, err := kong.New(&c, opts...)
	if err != nil {
		fmt.Fprintln(stderr, "bridge:", err)
		return exitcode.Usage
	}
	kctx, err := p.Parse(args)
	if exit >= 0 { // --help: kong exits with exitcode.OK
		return exit
	}
	if err != nil {
		fmt.Fprintln(stderr, "bridge: invalid settings:")
		for _, e := range splitErrors(err) {
			fmt.Fprintln(stderr, "  "+e.Error())
		}
		fmt.Fprintln(stderr, "Run 'bridge --help' for every setting and its default.")
		return exitcode.Usage
	}

	ctx, stop := signalContext(context.Background())
	defer stop()
	apiToken := func() (string, error) { return findAPIToken(c.Config) }
	switch kctx.Command() {
	case "simulate":
		return simulate.Run(ctx, c.Config, c.Simulate, simulate.Env{APIToken: apiToken, S3Client: newS3Client}, stdout, stderr)
	case "soak":
		return soak.Run(ctx, c.Config, c.Soak, soak.Env{APIToken: apiToken, Start: serveInBackground}, stdout, stderr)
	case "healthcheck":
		if err := healthcheck(ctx, c.Config); err != nil {
			fmt.Fprintln(stderr, "bridge: unhealthy:", err)
			return exitcode.Failure
		}
		return exitcode.OK
	default:
		log := newLogger(c.Config, stderr)
		if err := serve(ctx, c.Config, log, stdout, nil); err != nil {
			log.Error().Err(err).Msg("bridge stopped")
			return exitcode.Failure
		}
		return exitcode.OK
	}
}

// serveInBackground runs a bridge for the soak and returns
// once it listens: its address and a function that stops it and returns
// serve's error.
func serveInBackground(cfg config.Config, log zerolog.Logger) (string, func() error, error) {
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan *instance, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, log, io.Discard, started) }()
	select {
	case inst := <-started:
		return inst.addr, func() error { cancel(); return <-done }, nil
	case err := <-done:
		cancel()
		return "", nil, err
	}
}

// splitErrors undoes errors.Join so each problem gets its own line.
func splitErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, splitErrors(e)...)
		}
		return out
	}
	return []error{err}
}

var errForced = errors.New("forced exit on second signal")

// signalContext is done on the next SIGINT or SIGTERM.
func signalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}
