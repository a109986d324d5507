package watch_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/profiles/watch"
	"github.com/leaklab/leaklab/scale"
)

// catalogWatch is how long each catalog service is watched: the issue's
// "30 s watch under default load", with a snapshot every 2 s.
const (
	catalogWatchFor   = 30 * time.Second
	catalogWatchEvery = 2 * time.Second
)

// TestWatchCatalog runs every catalog service, both variants, each in its
// own process under its steady load, watches them all at once for 30 s,
// and checks the verdicts: the culprit of every leaky heap or goroutine
// service is among the suspects; fixed variants, and services whose
// problem is not a leak (cpu, lock, alloc), have no suspect at all.
func TestWatchCatalog(t *testing.T) {
	if testing.Short() {
		t.Skip("watches every sample service for 30s; skipped with -short")
	}
	type watched struct {
		svc   *leaks.Service
		fixed bool
		rep   *watch.Report
		err   error
		load  *scale.LoadResult
	}
	var runs []*watched
	for _, svc := range leaks.All() {
		for _, fixed := range []bool{false, true} {
			runs = append(runs, &watched{svc: svc, fixed: fixed})
		}
	}
	urls := make([]string, len(runs))
	for i, r := range runs {
		urls[i] = testbin.StartService(t, r.svc.Name, r.fixed).URL
	}
	var wg sync.WaitGroup
	for i, r := range runs {
		ctx, cancel := context.WithCancel(context.Background())
		ep := r.svc.Endpoints[0]
		var body []byte
		if ep.BodyBytes > 0 {
			body = []byte(strings.Repeat("x", ep.BodyBytes))
		}
		loadDone := make(chan struct{})
		wg.Go(func() {
			defer close(loadDone)
			r.load, _ = scale.Load(ctx, scale.LoadOptions{
				URL: urls[i] + ep.Path, Method: ep.Method, Body: body,
				Rate: r.svc.Rate, Connections: 16, Duration: catalogWatchFor + 10*time.Second,
			})
		})
		wg.Go(func() {
			defer func() { cancel(); <-loadDone }()
			r.rep, r.err = watch.Run(context.Background(), urls[i], watch.Options{Every: catalogWatchEvery, For: catalogWatchFor})
		})
	}
	wg.Wait()

	for _, r := range runs {
		name := r.svc.Name + "/" + string(leaks.VariantOf(r.fixed))
		if r.err != nil {
			t.Errorf("%s: watch failed: %v", name, r.err)
			continue
		}
		if r.load == nil || r.load.Responses == 0 {
			t.Errorf("%s: the load sent nothing", name)
			continue
		}
		var found []string
		culprit := false
		for _, s := range r.rep.Suspects {
			found = append(found, s.Kind+" "+s.Confidence+" "+s.Function)
			culprit = culprit || s.Function == r.svc.Culprit
		}
		leak := !r.fixed && (r.svc.Kind == leaks.KindHeap || r.svc.Kind == leaks.KindGoroutine)
		switch {
		case leak && !culprit:
			t.Errorf("%s: culprit %s not among the suspects %v (top growing: %+v)", name, r.svc.Culprit, found, r.rep.TopGrowing)
		case !leak && len(found) > 0:
			t.Errorf("%s: want no suspect, got %v", name, found)
		default:
			t.Logf("%s: %d snapshots, %.0f req/s, suspects %v", name, r.rep.Snapshots, r.load.RPS, found)
		}
	}
}
