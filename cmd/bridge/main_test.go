package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/cmd/bridge/internal/exitcode"
)

func TestHelpListsEverySettingWithDefaultAndEnv(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, 0, run([]string{"--help"}, &out, &errb))
	help := out.String()
	for _, want := range []string{
		`--addr="127.0.0.1:8080"`, "$BRIDGE_ADDR",
		`--data="./data"`, "$BRIDGE_DATA",
		`--stt="mock"`, "$BRIDGE_STT",
		"--api-token", "$BRIDGE_API_TOKEN",
		"--public-url", "$BRIDGE_PUBLIC_URL",
		"--allow-anonymous", "$BRIDGE_ALLOW_ANONYMOUS",
		"--allowed-hosts", "$BRIDGE_ALLOWED_HOSTS",
		"--max-calls", "$BRIDGE_MAX_CALLS",
	} {
		require.Contains(t, help, want)
	}
}

func TestBadSettingsAreAllReported(t *testing.T) {
	var out, errb bytes.Buffer
	t.Setenv("BRIDGE_ADDR", "nonsense")
	code := run([]string{"--public-url", "ftp://x", "--max-calls", "0", "--stt", "mock"}, &out, &errb)
	require.Equal(t, 2, code)
	msg := errb.String()
	for _, want := range []string{"--addr", "--public-url", "--max-calls"} {
		require.Contains(t, msg, want)
	}
	require.Equal(t, 3+2, strings.Count(msg, "\n"), "one line per problem plus a heading and a hint:\n%s", msg)
}

func TestHealthcheck(t *testing.T) {
	cfg := testConfig(t)
	inst, _ := startBridge(t, cfg)
	var out, errb bytes.Buffer
	require.Equal(t, 0, run([]string{"healthcheck", "--addr", inst.addr}, &out, &errb), errb.String())
	require.Equal(t, 1, run([]string{"healthcheck", "--addr", "127.0.0.1:1"}, &out, &errb))
}

// TestExitCodes pins the exit statuses: they are a public contract
// (README.md, "Exit codes"), so the numbers must not change.
func TestExitCodes(t *testing.T) {
	require.Equal(t, 0, exitcode.OK)
	require.Equal(t, 1, exitcode.Failure)
	require.Equal(t, 2, exitcode.Usage)

	for _, tc := range []struct {
		name string
		args []string
		want int
		says string // on stderr
	}{
		{"help", []string{"--help"}, exitcode.OK, ""},
		{"unknown flag", []string{"--no-such-flag"}, exitcode.Usage, "--no-such-flag"},
		{"unknown flag of a sub-command", []string{"healthcheck", "--no-such-flag"}, exitcode.Usage, "--no-such-flag"},
		{"bad value", []string{"--max-calls", "0"}, exitcode.Usage, "--max-calls"},
		{"soak's own check", []string{"soak", "--concurrency", "0"}, exitcode.Usage, "--concurrency"},
		{"nothing listening", []string{"healthcheck", "--addr", "127.0.0.1:1"}, exitcode.Failure, "unhealthy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			require.Equal(t, tc.want, run(tc.args, &out, &errb), errb.String())
			require.Contains(t, errb.String(), tc.says)
		})
	}
}
