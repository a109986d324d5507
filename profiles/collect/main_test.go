package collect

import (
	"os"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/testbin"
)

// collectTestParallel is how many tests run at once unless -parallel says
// otherwise. A collector's test waits for its rounds (every second or
// two) far more than it computes; the fleet test, which loads twelve
// services, is the one that keeps the CPU busy. Under -race the sample
// services the tests run in process are CPU-bound: eight at once made
// captures miss their rounds' deadlines, so the default (GOMAXPROCS)
// stays.
const collectTestParallel = 8

// captureTimeout is the capture timeout of tests that collect every 200
// ms and wait for what they forward or store: the default (the interval)
// failed every heap capture ('?gc=1') while the package's fleet tests
// loaded the machine, and TestForwardToAnotherCollector waited 90 s for a
// heap profile that was never taken (CI, 2026-12-03).
const captureTimeout = 10 * time.Second

func TestMain(m *testing.M) {
	testbin.WaitingParallel(collectTestParallel, 0)
	os.Exit(m.Run())
}
