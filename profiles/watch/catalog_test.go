package watch_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/leaks/exercise"
	"github.com/leaklab/leaklab/profiles/watch"
	"github.com/leaklab/leaklab/scale"
)

// The "30 s watch under default load", with a snapshot every 2 s,
// over at most catalogBatch services at once: as many processes under load
// plus their watchers as a 2-core CI machine serves without starving them.
const (
	catalogWatchFor   = 30 * time.Second
	catalogWatchEvery = 2 * time.Second
	catalogBatch      = 19
)

type watched struct {
	svc   *leaks.Service
	fixed bool
	url   string
	rep   *watch.Report
	err   error
	load  *scale.LoadResult
}

// TestWatchCatalog runs every catalog service, both variants, each in its
// own process under its steady load, watches them for 30 s, and checks the
// verdicts: the culprit of every leaky heap or goroutine service is among
// the suspects; fixed variants, and services whose problem is not a leak
// (cpu, lock, alloc), have no suspect at all.
func TestWatchCatalog(t *testing.T) {
	if testing.Short() {
		t.Skip("watches every sample service for 30s; skipped with -short")
	}
	var runs []*watched
	for _, svc := range leaks.All() {
		for _, fixed := range []bool{false, true} {
			runs = append(runs, &watched{svc: svc, fixed: fixed})
		}
	}
	for lo := 0; lo < len(runs); lo += catalogBatch {
		batch := runs[lo:min(lo+catalogBatch, len(runs))]
		for _, r := range batch {
			r.url = testbin.StartService(t, r.svc.Name, r.fixed).URL
		}
		watchBatch(batch)
	}
	for _, r := range runs {
		checkVerdict(t, r)
	}
}

// watchBatch loads and watches every service of the batch at once.
func watchBatch(batch []*watched) {
	var wg sync.WaitGroup
	for _, r := range batch {
		ctx, cancel := context.WithCancel(context.Background())
		loadDone := make(chan struct{})
		wg.Go(func() {
			defer close(loadDone)
			r.load, _ = scale.Load(ctx, exercise.SteadyLoad(r.svc, r.url, 8, catalogWatchFor+10*time.Second))
		})
		wg.Go(func() {
			defer func() { cancel(); <-loadDone }()
			r.rep, r.err = watch.Run(context.Background(), r.url, watch.Options{Every: catalogWatchEvery, For: catalogWatchFor})
		})
	}
	wg.Wait()
}

func checkVerdict(t *testing.T, r *watched) {
	t.Helper()
	name := r.svc.Name + "/" + string(leaks.VariantOf(r.fixed))
	if r.err != nil {
		t.Errorf("%s: watch failed: %v", name, r.err)
		return
	}
	if r.load == nil || r.load.Responses == 0 {
		t.Errorf("%s: the load sent nothing", name)
		return
	}
	var found []string
	culprit := false
	for _, s := range r.rep.Suspects {
		found = append(found, fmt.Sprintf("%s %s %s (late retention %.2f, retention p %.2g)", s.Kind, s.Confidence, s.Function, s.Evidence.LateRetention, s.Evidence.RetentionP))
		culprit = culprit || s.Function == r.svc.Culprit
	}
	leak := !r.fixed && (r.svc.Kind == leaks.KindHeap || r.svc.Kind == leaks.KindGoroutine)
	switch {
	case leak && !culprit:
		t.Errorf("%s: culprit %s not among the suspects %v (top growing: %+v)", name, r.svc.Culprit, found, r.rep.TopGrowing)
	case !leak && len(found) > 0:
		t.Errorf("%s: want no suspect, got %v (suspects: %+v)", name, found, r.rep.Suspects)
	default:
		t.Logf("%s: %d snapshots, %.0f req/s, suspects %v", name, r.rep.Snapshots, r.load.RPS, found)
	}
}
