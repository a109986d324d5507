package profiles

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// liveHeapMetrics are the /metrics series that give a target's heap in
// use, best first: the live heap as of the last GC (runtime/metrics, in
// client_golang's Go collector when enabled), then the Go collector's
// default HeapAlloc, which a GC just forced (a heap profile's gc=1) makes
// nearly the live heap.
var liveHeapMetrics = []string{"go_gc_heap_live_bytes", "go_memstats_heap_alloc_bytes"}

// FetchLiveHeap reads the target's heap in use from its /metrics, exact
// where a heap profile's is an estimate from samples. It returns the
// metric's name with the value, or an error when the target exports none.
func FetchLiveHeap(ctx context.Context, client *http.Client, base string) (float64, string, error) {
	found := map[string]float64{}
	err := ScanMetrics(ctx, client, base, 10*time.Second, 8<<20, func(line string) bool {
		for _, name := range liveHeapMetrics {
			if v, ok := MetricValue(line, name); ok {
				found[name] = v
			}
		}
		return len(found) < len(liveHeapMetrics)
	})
	if err != nil {
		return 0, "", err
	}
	for _, name := range liveHeapMetrics {
		if v, ok := found[name]; ok {
			return v, name, nil
		}
	}
	return 0, "", fmt.Errorf("%s/metrics has no go_gc_heap_live_bytes or go_memstats_heap_alloc_bytes", base)
}
