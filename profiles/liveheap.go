package profiles

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// liveHeapMetrics are the /metrics series that give a target's heap in
// use, best first: the live heap as of the last GC (runtime/metrics, in
// client_golang's Go collector when enabled), then the Go collector's
// default HeapAlloc, which a GC just forced (a heap profile's gc=1) makes
// nearly the live heap.
var liveHeapMetrics = []*regexp.Regexp{
	regexp.MustCompile(`(?m)^go_gc_heap_live_bytes(?:\{[^}]*\})? ([0-9.eE+-]+)`),
	regexp.MustCompile(`(?m)^go_memstats_heap_alloc_bytes(?:\{[^}]*\})? ([0-9.eE+-]+)`),
}

// FetchLiveHeap reads the target's heap in use from its /metrics, exact
// where a heap profile's is an estimate from samples. It returns the
// metric's name with the value, or an error when the target exports none.
func FetchLiveHeap(ctx context.Context, client *http.Client, base string) (float64, string, error) {
	if client == nil {
		client = http.DefaultClient
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := getOK(ctx, client, strings.TrimRight(base, "/")+"/metrics", 10*time.Second, "metrics")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return 0, "", err
	}
	for _, re := range liveHeapMetrics {
		if m := re.FindSubmatch(body); m != nil {
			v, err := strconv.ParseFloat(string(m[1]), 64)
			if err == nil {
				name, _, _ := strings.Cut(re.String()[len("(?m)^"):], "(")
				return v, name, nil
			}
		}
	}
	return 0, "", fmt.Errorf("%s/metrics has no go_gc_heap_live_bytes or go_memstats_heap_alloc_bytes", base)
}
