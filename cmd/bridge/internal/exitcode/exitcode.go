// Package exitcode names the exit statuses of the bridge command and its
// sub-commands (serve, healthcheck, simulate, soak). They are a public
// contract: scripts, container health checks and CI depend on the numbers,
// so a value must never change; README.md ("Exit codes") lists them.
//
// They live in their own package so that main and the simulate and soak
// packages, which return their own statuses, share one definition.
package exitcode

const (
	// OK (0): the command did what was asked. serve shut down cleanly
	// after a signal, healthcheck found the bridge healthy, simulate and
	// soak found no failures, --help printed the help.
	OK = 0

	// Failure (1): the settings were fine but the work failed. serve
	// stopped with an error (including a second signal forcing the exit),
	// healthcheck found the bridge unhealthy or unreachable, simulate had
	// a failed or unverified call, soak had a call not accounted for or
	// could not start its bridge.
	Failure = 1

	// Usage (2): bad flags, environment or settings, found before any work
	// started: unknown flags, invalid or contradictory values (reported
	// all together), and the sub-commands' own checks of their arguments.
	Usage = 2
)
