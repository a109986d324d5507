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
// over at most catalogBatch services at once: all 38 variants. They wait
// more than they compute: all at once, under their loads, with their
// watchers, they took 1.4 to 1.6 cores of the 2-core machine for 34 s, and all 38
// verdicts were right the first time in four runs out of four
// (go test ./profiles/watch -run 'TestWatchCatalog$' -count=1 -v, run
// four times on 2026-12-03; 19 at a time, the test took 79 s).
const (
	catalogWatchFor   = 30 * time.Second
	catalogWatchEvery = 2 * time.Second
	catalogBatch      = 38
)

// catalogQuick are the services go test ./... watches, one of each kind
// of verdict (a heap leak, a goroutine leak, a problem that is not a
// leak), both variants; the long tier (testbin.LongTier, which CI runs)
// watches every one. All 38 at once take 1.4 to 1.6 cores for over half a
// minute, the largest share of the CPU that go test ./... needs.
var catalogQuick = map[string]bool{"unbounded-cache": true, "abandoned-worker": true, "cpu-bound": true}

// catalogQuickFor is how long go test ./... watches catalogQuick: the
// issue's 30 s is the long tier's, for every variant. Watches of these six
// services, replayed over their first 8, 10, 12 ... 30 s (watch.Replay
// with Until), gave the leaks' verdicts right from 12 s on (three runs,
// 2026-12-03); unbounded-cache's fixed twin, an LRU that fills for its
// first 6 s at 20 requests/s and then levels off, was reported over
// windows of 10 to 18 s in 7 of 12 replays, and in two live 16 s watches
// in a row under a load average of 10 to 17, never over 20 s or more.
// 24 s, with the second watch below for an unlucky draw, takes 6 s off
// the test.
const catalogQuickFor = 24 * time.Second

// catalogFor is how long each variant is watched in this tier.
func catalogFor() time.Duration {
	if testbin.LongTier() {
		return catalogWatchFor
	}
	return catalogQuickFor
}

type watched struct {
	svc   *leaks.Service
	fixed bool
	url   string
	rep   *watch.Report
	err   error
	load  *scale.LoadResult
}

// TestWatchCatalog runs every catalog service, both variants, each in its
// own process under its steady load, watches them for 30 s (go test ./...
// three services for catalogQuickFor), and checks the verdicts: the
// culprit of every leaky heap or goroutine service is among the suspects;
// fixed variants, and services whose problem is not a leak (cpu, lock,
// alloc), have no suspect at all.
//
// Heap verdicts rest on sampled profiles (one sample per ~512 KiB
// allocated), so a 30 s watch of a slow leak sees a dozen samples or two,
// and now and then one watch in a few dozen gets a wrong verdict by chance
// (CI once missed unclosed-body's heap site at a retention of 0.34 against
// the 0.35 rule). A variant whose verdict is wrong is watched once more, in
// a fresh process; the test fails when the second watch is wrong too, so
// it catches a broken detector or service, not one unlucky sample draw.
func TestWatchCatalog(t *testing.T) {
	if testing.Short() {
		t.Skip("watches every sample service for 30s; skipped with -short")
	}
	// Alongside the other live watches, which mostly wait: the batches
	// below are what loads the CPU.
	t.Parallel()
	var runs []*watched
	for _, svc := range leaks.All() {
		if !testbin.LongTier() && !catalogQuick[svc.Name] {
			continue
		}
		for _, fixed := range []bool{false, true} {
			runs = append(runs, &watched{svc: svc, fixed: fixed})
		}
	}
	if !testbin.LongTier() {
		t.Logf("%d of the catalog's %d services (%v), watched for %s; all of them, for %s, in the long tier: %s=1 go test ./profiles/watch -run TestWatchCatalog",
			len(runs)/2, len(leaks.All()), catalogQuick, catalogQuickFor, catalogWatchFor, testbin.LongTierVar)
	}
	watchAll(t, runs)
	var again []*watched
	for _, r := range runs {
		// Every sample service exports the runtime's live heap, read
		// exactly at the first snapshot and the last; a heap leak raises it.
		if r.err == nil {
			// (That it grew is part of the verdict, below: a watch whose
			// load was starved can see no growth.)
			if l := r.rep.LiveHeap; l == nil || l.Metric != "go_gc_heap_live_bytes" || l.First <= 0 {
				t.Errorf("%s: live heap from /metrics: %+v, want go_gc_heap_live_bytes at the first and last snapshot", r.name(), l)
			}
		}
		if problem := verdictProblem(r); problem != "" {
			t.Logf("%s: first watch: %s; watching it again", r.name(), problem)
			again = append(again, &watched{svc: r.svc, fixed: r.fixed})
			continue
		}
		t.Logf("%s: %s", r.name(), r.summary())
	}
	if len(again) > len(runs)/4 {
		// more than chance: no second chance either
		t.Errorf("%d of %d variants got a wrong verdict in the first watch", len(again), len(runs))
	}
	watchAll(t, again)
	for _, r := range again {
		if problem := verdictProblem(r); problem != "" {
			t.Errorf("%s: wrong in two watches: %s", r.name(), problem)
			continue
		}
		t.Logf("%s: second watch: %s", r.name(), r.summary())
	}
}

// watchAll watches runs, catalogBatch at a time, each in a fresh process.
func watchAll(t *testing.T, runs []*watched) {
	for lo := 0; lo < len(runs); lo += catalogBatch {
		batch := runs[lo:min(lo+catalogBatch, len(runs))]
		// Started at once: one after the other, on a machine busy with
		// the rest of go test ./..., they took seconds before any watch.
		// (A service that does not start fails the test from its own
		// goroutine, which FailNow ends, leaving its URL empty; this one
		// stops below.)
		var started sync.WaitGroup
		for _, r := range batch {
			started.Go(func() { r.url = testbin.StartService(t, r.svc.Name, r.fixed).URL })
		}
		started.Wait()
		for _, r := range batch {
			if r.url == "" {
				t.FailNow()
			}
		}
		watchBatch(batch)
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
			r.load, _ = scale.Load(ctx, exercise.SteadyLoad(r.svc, r.url, 8, catalogFor()+10*time.Second))
		})
		wg.Go(func() {
			defer func() { cancel(); <-loadDone }()
			r.rep, r.err = watch.Run(context.Background(), r.url, watch.Options{Every: catalogWatchEvery, For: catalogFor()})
		})
	}
	wg.Wait()
}

// watchUnderLoad watches a catalog service at url while it is under its
// steady load (at rate requests/s instead when rate is not 0), and stops
// the load when the watch ends.
func watchUnderLoad(t *testing.T, svc *leaks.Service, url string, rate float64, opts watch.Options) *watch.Report {
	t.Helper()
	load := exercise.SteadyLoad(svc, url, 4, opts.For+time.Minute)
	if rate != 0 {
		load.Rate = rate
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		scale.Load(ctx, load)
	}()
	rep, err := watch.Run(context.Background(), url, opts)
	cancel()
	<-done
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func (r *watched) name() string { return r.svc.Name + "/" + string(leaks.VariantOf(r.fixed)) }

func (r *watched) suspects() []string {
	var found []string
	for _, s := range r.rep.Suspects {
		found = append(found, fmt.Sprintf("%s %s %s (late retention %.2f, retention p %.2g)", s.Kind, s.Confidence, s.Function, s.Evidence.LateRetention, s.Evidence.RetentionP))
	}
	return found
}

func (r *watched) summary() string {
	return fmt.Sprintf("%d snapshots, %.0f req/s, suspects %v", r.rep.Snapshots, r.load.RPS, r.suspects())
}

// verdictProblem says what is wrong with a watch's verdict, or "" when it
// is right.
func verdictProblem(r *watched) string {
	if r.err != nil {
		return fmt.Sprintf("watch failed: %v", r.err)
	}
	if r.load == nil || r.load.Responses == 0 {
		return "the load sent nothing"
	}
	if l := r.rep.LiveHeap; !r.fixed && r.svc.Kind == leaks.KindHeap && l != nil && l.Last <= l.First {
		// unbounded-queue grows only while its load outpaces its worker
		// (20 jobs a second): in the long tier's CI run of 2026-12-03,
		// beside the real-world suite, its first watch saw the live heap
		// fall; its second, at 100 req/s, named the culprit.
		return fmt.Sprintf("the live heap did not grow under a heap leak: %+v", l)
	}
	culprit := false
	for _, s := range r.rep.Suspects {
		culprit = culprit || s.Function == r.svc.Culprit
	}
	leak := !r.fixed && (r.svc.Kind == leaks.KindHeap || r.svc.Kind == leaks.KindGoroutine)
	switch {
	case leak && !culprit:
		return fmt.Sprintf("culprit %s not among the suspects %v (top growing: %+v)", r.svc.Culprit, r.suspects(), r.rep.TopGrowing)
	case !leak && len(r.rep.Suspects) > 0:
		return fmt.Sprintf("want no suspect, got %v (suspects: %+v)", r.suspects(), r.rep.Suspects)
	}
	return ""
}
