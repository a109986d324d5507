package leaks_test

import (
	"os"
	"testing"

	"github.com/leaklab/leaklab/internal/testbin"
)

// leaksTestParallel is how many service tests run at once unless
// -parallel says otherwise. Each starts a service binary, waits for it to
// listen, drives it and polls its /metrics until the symptom shows or
// settles: more waiting than computing, so the default (GOMAXPROCS)
// would leave the CPU idle on a small machine.
const leaksTestParallel = 6

func TestMain(m *testing.M) {
	testbin.WaitingParallel(leaksTestParallel, leaksTestParallel)
	os.Exit(m.Run())
}
