package watch_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leaklab/leaklab/profiles"
	"github.com/leaklab/leaklab/profiles/watch"
)

// update records the watches in testdata/watches again from live
// workloads (workload_test.go), in at most about two minutes:
//
//	go test ./profiles/watch -run 'Healthy|SmallHeapLeak|Diffuse|AutoDecidesSlowLeak$' -update -v
var update = flag.Bool("update", false, "record the watches in testdata/watches anew, from live workloads")

// A recording is a real watch (or several) of a workload, kept as the
// profile store the watch wrote (watch.Options.Store), under
// testdata/watches/NAME. A test whose point is the detector's verdict on
// a realistic series replays it through watch.Replay, the detector's own
// code, instead of waiting for a live watch: the verdict is the same (the
// same profiles, fed in the same order, at the times they were taken),
// except that the store keeps no goroutine dumps, so goroutine sites are
// judged by their counts alone.
//
// With -update, a recording is watched again, live, and replayed; it is
// kept only when the replay passes the test's check, after as many live
// watches at most as the live test used to allow (a verdict that rests on
// a few sampled allocations misses now and then by chance), so -update
// fails where the live test would have failed. It also checks that the
// replay judged the heap as the live watch did.
type recording struct {
	name    string // directory under testdata/watches
	mode    string // the workload (serveWorkload)
	watches int    // watches in one recording, each of a fresh workload, at once
	// attempts is how many recordings -update may make until the check
	// passes.
	attempts int
	opts     watch.Options // the live watch; Own is workloadCode
}

func (r recording) dir() string { return filepath.Join("testdata", "watches", r.name) }

// replayOptions replays as the recorded watch judged.
func (r recording) replayOptions() watch.ReplayOptions {
	return watch.ReplayOptions{DetectorOptions: r.detectorOptions(), Auto: r.opts.Auto, Every: r.opts.Every, For: r.opts.For, MaxFor: r.opts.MaxFor}
}

func (r recording) detectorOptions() watch.DetectorOptions {
	do := r.opts.DetectorOptions
	do.Own = workloadCode
	return do
}

// replayed is one recorded watch, replayed.
type replayed struct {
	rep *watch.Report
	// recorded is how many snapshots the store holds of the watch.
	recorded int
}

// replayRecording replays every watch of r and hands them to check, which
// returns what is wrong with the verdicts ("" when they are right); the
// test fails with it. With -update it records r first.
func replayRecording(t *testing.T, r recording, check func(t *testing.T, watches []replayed) string) []replayed {
	t.Helper()
	if *update {
		record(t, r, check)
	}
	watches, err := replayDir(r.dir(), r)
	if err != nil {
		t.Fatalf("%v (record it with: go test ./profiles/watch -run %s -update)", err, t.Name())
	}
	if problem := check(t, watches); problem != "" {
		t.Error(problem)
	}
	return watches
}

// replayDir replays each target of the store in dir, in the order they
// were first captured.
func replayDir(dir string, r recording) ([]replayed, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("no recorded watches: %v", err)
	}
	store, err := profiles.Open(dir)
	if err != nil {
		return nil, err
	}
	all, err := store.List(profiles.Filter{})
	if err != nil {
		return nil, err
	}
	var targets []string
	counts := map[string]int{}
	for _, m := range all {
		if counts[m.Target] == 0 {
			targets = append(targets, m.Target)
		}
		if m.Type == profiles.TypeHeap {
			counts[m.Target]++
		}
	}
	if len(targets) != r.watches {
		return nil, fmt.Errorf("%s holds %d recorded watches, want %d", dir, len(targets), r.watches)
	}
	var out []replayed
	for _, target := range targets {
		rep, err := watch.Replay(context.Background(), store, target, r.replayOptions())
		if err != nil {
			return nil, err
		}
		out = append(out, replayed{rep: rep, recorded: counts[target]})
	}
	return out, nil
}

// record watches r's workloads live into a fresh store until the replay
// passes check, and puts that store in r.dir() in place of the old one.
func record(t *testing.T, r recording, check func(t *testing.T, watches []replayed) string) {
	t.Helper()
	for attempt := 1; attempt <= r.attempts; attempt++ {
		tmp := t.TempDir()
		store, err := profiles.Open(tmp)
		if err != nil {
			t.Fatal(err)
		}
		live := make([]*watch.Report, r.watches)
		var wg sync.WaitGroup
		for i := range live {
			wg.Go(func() {
				opts := r.opts
				opts.DetectorOptions, opts.Store = r.detectorOptions(), store
				live[i] = watchWorkloadWith(t, r.mode, opts)
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		watches, err := replayDir(tmp, r)
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range watches {
			// the replay is of the same target as the live watch, in order
			var lw *watch.Report
			for _, l := range live {
				if l.Target == w.rep.Target {
					lw = l
				}
			}
			if lw == nil {
				t.Fatalf("replayed watch %d of %s was not watched live", i, w.rep.Target)
			}
			if got, want := heapVerdicts(w.rep), heapVerdicts(lw); got != want || w.rep.Snapshots != lw.Snapshots {
				t.Fatalf("the replay of watch %d judged otherwise than the live watch:\nreplay (%d snapshots): %s\nlive (%d snapshots): %s",
					i, w.rep.Snapshots, got, lw.Snapshots, want)
			}
		}
		problem := check(t, watches)
		if problem == "" {
			if err := os.RemoveAll(r.dir()); err != nil {
				t.Fatal(err)
			}
			if err := os.CopyFS(r.dir(), os.DirFS(tmp)); err != nil {
				t.Fatal(err)
			}
			t.Logf("recorded %s (attempt %d of %d)", r.dir(), attempt, r.attempts)
			return
		}
		t.Logf("recording %d of %s failed the check, recording again: %s", attempt, r.name, problem)
	}
	t.Fatalf("%d recordings of %s in a row failed the check: a broken detector or workload, not chance", r.attempts, r.name)
}

// heapVerdicts sums up a report's heap suspects, which a replay judges
// from exactly what the live watch saw.
func heapVerdicts(rep *watch.Report) string {
	var out []string
	for _, s := range rep.Suspects {
		if s.Kind == watch.KindHeap {
			out = append(out, fmt.Sprintf("%s %s %.0f", s.Function, s.Confidence, s.GrowthPerMinute))
		}
	}
	return strings.Join(out, "; ")
}

// The recorded watches of the tests below.
var (
	// healthyRecording: three 30 s watches of the healthy workload.
	healthyRecording = recording{name: "healthy", mode: "healthy", watches: 3, attempts: 2,
		opts: watch.Options{Every: 2 * time.Second, For: 30 * time.Second}}
	// heapLeakRecording: the default one-minute watch of a 6 MB/min leak.
	heapLeakRecording = recording{name: "heapleak", mode: "heapleak", watches: 1, attempts: 2,
		opts: watch.Options{Every: watch.DefaultEvery, For: watch.DefaultFor}}
	// diffuseRecording: the default one-minute watch of growth spread
	// over four sites.
	diffuseRecording = recording{name: "diffuse", mode: "diffuse", watches: 1, attempts: 3,
		opts: watch.Options{Every: watch.DefaultEvery, For: watch.DefaultFor}}
	// slowLeakRecording: an Auto watch of a slow leak, at twice the
	// speed (TestAutoDecidesSlowLeak).
	slowLeakRecording = recording{name: "slowleak-auto", mode: "slowleak-2x", watches: 1, attempts: 2,
		opts: watch.Options{Auto: true, Every: watch.DefaultEvery / 2, For: watch.DefaultFor / 2, MaxFor: 4 * time.Minute / 2,
			DetectorOptions: watch.DetectorOptions{MinHeapGrowth: 2 * watch.DefaultMinHeapGrowth}}}
)
