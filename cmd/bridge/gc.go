package main

import "runtime/debug"

// defaultGCPercent is the bridge's GOGC when the environment sets neither
// GOGC nor GOMEMLIMIT. Most of a call's memory lives as long as the call
// (socket and file buffers, recognizer state) and the per-frame path
// allocates nothing, so collections are rare and cheap: at 50 the heap
// grows to 1.5× its live size between collections instead of Go's 2×,
// about 60 KB less resident memory per call, for collector CPU within the
// noise of BenchmarkCallMemory.
const defaultGCPercent = 50

// tuneGC applies defaultGCPercent unless getenv shows that the operator
// chose (GOGC or GOMEMLIMIT set), and reports whether it did.
func tuneGC(getenv func(string) string) bool {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return false
	}
	debug.SetGCPercent(defaultGCPercent)
	return true
}
