package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// eventually polls cond on the test goroutine every tick until it holds,
// and fails the test if it still does not after waitFor. Unlike
// require.Eventually, which runs cond on a goroutine of its own, cond may
// use require and the helpers built on it (getJSON, record, metric…):
// t.FailNow must run on the test goroutine.
func eventually(t *testing.T, cond func() bool, waitFor, tick time.Duration, msgAndArgs ...any) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			require.FailNow(t, "condition never satisfied within "+waitFor.String(), msgAndArgs...)
		}
		<-ticker.C
	}
}
