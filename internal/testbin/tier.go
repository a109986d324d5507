package testbin

import (
	"os"
	"testing"
)

// LongTierVar is the environment variable that turns on the long tier:
// the tests that sweep everything live (every catalog variant watched,
// every real-world server under its workload). 'go test ./...' runs a
// representative part of them, or skips them, so that it stays a quick
// loop on a two-core machine; CI (.ci/run) runs the long tier as a step of
// its own.
const LongTierVar = "LEAKLAB_LONG"

// LongTier says whether the long tier is on (LEAKLAB_LONG=1).
func LongTier() bool { return os.Getenv(LongTierVar) == "1" }

// NeedLongTier skips the test, with a line saying how to run it, unless
// the long tier is on.
func NeedLongTier(t testing.TB, what string) {
	t.Helper()
	if !LongTier() {
		t.Skip("SKIPPED, NOT RUN: " + what + " is in the long tier: " + LongTierVar + "=1 go test; CI runs it")
	}
}
