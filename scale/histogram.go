package scale

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latency histograms record nanoseconds; values below a microsecond are
// not worth telling apart. Three significant digits cost about 130 KiB
// per histogram and each connection has its own, so above
// preciseHistogramsUpTo connections the histograms keep two digits (1%
// resolution, about 20 KiB) to keep memory in bounds.
const (
	latencyLowest         = int64(time.Microsecond)
	preciseHistogramsUpTo = 256
)

// newLatencyHistogram returns a histogram for latencies up to highest,
// sized for a run with this many connections.
func newLatencyHistogram(highest time.Duration, connections int) *hdrhistogram.Histogram {
	digits := 3
	if connections > preciseHistogramsUpTo {
		digits = 2
	}
	return hdrhistogram.New(latencyLowest, max(int64(highest), 2*latencyLowest), digits)
}
