//go:build pprof

package main

import (
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof on http.DefaultServeMux
	"os"
)

// A profiling build (go build -tags pprof) serves net/http/pprof on the
// loopback address in BRIDGE_PPROF (e.g. 127.0.0.1:6060), on its own
// listener, so profiles of a bridge under load can be taken without
// touching the app. Release builds contain none of this.
func init() {
	addr := os.Getenv("BRIDGE_PPROF")
	if addr == "" {
		return
	}
	go func() { _ = http.ListenAndServe(addr, nil) }()
}
