package scale

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latency histograms record nanoseconds with three significant digits;
// values below a microsecond are not worth telling apart, which keeps
// each worker's histogram small (a few hundred KiB at most).
const (
	latencyLowest  = int64(time.Microsecond)
	latencySigFigs = 3
)

// newLatencyHistogram returns a histogram able to hold latencies up to
// highest.
func newLatencyHistogram(highest time.Duration) *hdrhistogram.Histogram {
	return hdrhistogram.New(latencyLowest, max(int64(highest), 2*latencyLowest), latencySigFigs)
}
