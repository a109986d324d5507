package collect

import (
	"os"
	"testing"

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

func TestMain(m *testing.M) {
	if !testbin.RaceEnabled {
		testbin.WaitingParallel(collectTestParallel)
	}
	os.Exit(m.Run())
}
