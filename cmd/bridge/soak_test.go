package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSoakCommand runs the soak tool briefly against an in-process bridge,
// so the tool keeps working; its long runs are made by hand (BENCHMARKS.md).
func TestSoakCommand(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"soak", "--duration", "2s", "--concurrency", "4", "--call-length", "1s", "--seed", "1"}, &out, &errb)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out.String(), errb.String())
	require.Contains(t, out.String(), "problems:         0")
}
