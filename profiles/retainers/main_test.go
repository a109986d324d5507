package retainers_test

import (
	"os"
	"testing"

	"github.com/leaklab/leaklab/internal/testbin"
)

// retainersTestParallel is how many tests run at once unless -parallel
// says otherwise: each scans a sample service of its own, and a scan's
// test mostly waits for the service it drives and for the scan. Under
// -race the drive, in this process, costs CPU: the default (GOMAXPROCS)
// stays.
const retainersTestParallel = 6

func TestMain(m *testing.M) {
	if !testbin.RaceEnabled {
		testbin.WaitingParallel(retainersTestParallel)
	}
	os.Exit(m.Run())
}
