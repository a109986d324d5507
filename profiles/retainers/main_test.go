package retainers_test

import (
	"os"
	"testing"

	"github.com/leaklab/leaklab/internal/testbin"
)

// retainersTestParallel is how many tests run at once unless -parallel
// says otherwise: each scans a sample service of its own, and a scan's
// test mostly waits for the service it drives and for the scan; under
// -race too (go test -race -short ./profiles/retainers -v under a load
// average of ~18: 88 s six at once, 137 s two at once).
const retainersTestParallel = 6

func TestMain(m *testing.M) {
	testbin.WaitingParallel(retainersTestParallel, retainersTestParallel)
	os.Exit(m.Run())
}
