package collect

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/leaks/exercise"
	"github.com/leaklab/leaklab/profiles"
	"github.com/leaklab/leaklab/scale"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// fleetServices are catalog services whose leaks the catalog watch test
// finds reliably in 30 s at a snapshot every 2 s, heap and goroutine
// alike; each runs leaky and fixed, in its own process.
var fleetServices = []string{"unbounded-cache", "session-memorystore", "upload-buffer", "abandoned-worker", "unclosed-channel", "runaway-poller"}

const (
	fleetEvery  = 2 * time.Second
	fleetWindow = 40 * time.Second
	// fleetSteady is how long a fixed twin may stay a suspect without
	// failing the test: a verdict that does not last is what an alert's
	// 'for:' clause absorbs; a fixed twin judged a leak for a whole window
	// of rounds is a wrong verdict, not a chance one.
	fleetSteady = fleetWindow
)

// fleetTarget is one service process of the fleet test.
type fleetTarget struct {
	svc   *leaks.Service
	fixed bool
	proc  *testbin.Service
	addr  string
	url   string
}

func (f *fleetTarget) name() string { return f.svc.Name + "/" + string(leaks.VariantOf(f.fixed)) }

// loadFleet drives every target at its steady rate until ctx ends.
func loadFleet(ctx context.Context, wg *sync.WaitGroup, targets []*fleetTarget) {
	for _, ft := range targets {
		wg.Go(func() {
			for ctx.Err() == nil { // again after a restart made the load fail
				scale.Load(ctx, exercise.SteadyLoad(ft.svc, ft.url, 4, 10*time.Minute))
				select {
				case <-ctx.Done():
				case <-time.After(200 * time.Millisecond):
				}
			}
		})
	}
}

func suspectsOf(sus []Suspect, target string) []Suspect {
	var out []Suspect
	for _, s := range sus {
		if s.Target == target {
			out = append(out, s)
		}
	}
	return out
}

func describe(sus []Suspect) string {
	var parts []string
	for _, s := range sus {
		parts = append(parts, fmt.Sprintf("%s %s %s %.0f %s/min", s.Kind, s.Confidence, s.Function, s.GrowthPerMinute, s.Unit))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// TestDetectAcrossFleet collects six catalog services, leaky and fixed,
// together under load, with detection on, and checks the verdicts as the
// window slides: every leaky target comes to have its culprit as a
// suspect, a fixed twin is never a suspect for a whole window, and a leaky
// target restarted mid-run starts a new series (the restart counted, every
// suspect after it with points of the new process only).
//
// It runs with -update, and records the run TestFleetReplay judges: the
// verdicts are replayed, and TestDetectLive is what is live.
func TestDetectAcrossFleet(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("collects twelve sample services under load for over a minute; skipped with -short")
	}
	if !*update {
		t.Skip("records the fleet TestFleetReplay judges (testdata/fleet/pulled.tar.gz); runs with -update")
	}
	bin := testbin.Build(t)
	var targets []*fleetTarget
	for _, name := range fleetServices {
		svc, err := leaks.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, fixed := range []bool{false, true} {
			ft := &fleetTarget{svc: svc, fixed: fixed, addr: testbin.FreeAddr(t)}
			ft.proc = testbin.StartServiceWith(t, bin, name, fixed, "--addr", ft.addr)
			ft.url = ft.proc.URL
			targets = append(targets, ft)
		}
	}
	var discover StaticTargets
	byURL := map[string]*fleetTarget{}
	for _, ft := range targets {
		discover = append(discover, Target{URL: ft.url})
		byURL[ft.url] = ft
	}
	reg := prometheus.NewPedanticRegistry()
	storeDir := t.TempDir()
	st, err := profiles.Open(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	rec := &fleetRecording{Window: fleetWindow}
	for _, ft := range targets {
		rec.Targets = append(rec.Targets, recordedTarget{Series: ft.url, Service: ft.svc.Name, Fixed: ft.fixed})
	}
	r := startCollectorWith(t, Options{
		Discover: discover, Every: fleetEvery, Timeout: 10 * time.Second, Registry: reg, Store: st,
		Detect: Detection{Window: fleetWindow},
	}, true, rec.recordProbes)
	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	loadFleet(ctx, &wg, targets)
	defer func() { stopLoad(); wg.Wait() }()

	restarted := targets[0] // unbounded-cache, leaky
	if restarted.fixed || restarted.svc.Kind != leaks.KindHeap {
		t.Fatal("the restart is meant for a leaky heap service")
	}
	rec.Restarted = restarted.url
	follow(t, r.c, &fleetVerdicts{
		targets: targets, restarted: restarted, what: "leaky targets",
		series: func(ft *fleetTarget) string { return ft.url },
		restarts: func() float64 {
			return testutil.ToFloat64(r.c.fleet.m.restarts.WithLabelValues(restarted.url, "process_start"))
		},
		restart: func() *testbin.Service {
			return testbin.StartServiceWith(t, bin, restarted.svc.Name, false, "--addr", restarted.addr)
		},
		onRestart: func(at time.Time) { rec.KilledAt = at.UTC() },
	})

	body := get(t, r.url+"/metrics")
	if !strings.Contains(body, `leaklab_leak_series_restarts_total{reason="process_start",target="`+restarted.url+`"}`) {
		t.Errorf("the restart of %s was not counted:\n%s", restarted.name(), grepLines(body, "leaklab_leak_series_restarts_total"))
	}
	for _, ft := range targets {
		if ft != restarted && strings.Contains(body, `leaklab_leak_series_restarts_total{reason="`) && strings.Contains(grepLines(body, "leaklab_leak_series_restarts_total"), `target="`+ft.url+`"`) {
			t.Errorf("%s never restarted, but:\n%s", ft.name(), grepLines(body, "leaklab_leak_series_restarts_total"))
		}
	}

	checkSuspectsExposed(t, r, body)
	stopLoad()
	wg.Wait()
	r.stop(t)
	if *update {
		rec.save(t, "pulled", storeDir, st)
		replayPulled(t, "pulled")
	}
}

// TestDetectLive is detection while collecting, live, with restarts (the
// fleets' verdicts are judged on recorded runs: TestFleetReplay,
// TestPushedFleetReplay): a real process pulled and another pushing with
// pyroscope-go, both leaky runaway-pollers under load (a goroutine leak
// found in seconds), on one collector with a 10 s window. Each comes to
// have its culprit as a suspect; then each is killed and started again,
// and must have its restart counted (the pulled one's by the
// process_start its /metrics gives, the pushing one's by its upload
// chain) and its culprit found again, with points of the new process
// only. Then /metrics lints clean and names every suspect and both
// restarts, and GET /suspects gives the contract's fields.
func TestDetectLive(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs two sample services under load until they are suspects, twice; skipped with -short")
	}
	svc, err := leaks.Lookup("runaway-poller")
	if err != nil {
		t.Fatal(err)
	}
	bin := testbin.Build(t)
	const window = 10 * time.Second
	pulled := &fleetTarget{svc: svc, addr: testbin.FreeAddr(t)}
	pulled.proc = testbin.StartServiceWith(t, bin, svc.Name, false, "--addr", pulled.addr)
	pulled.url = pulled.proc.URL
	reg := prometheus.NewPedanticRegistry()
	r := startCollector(t, Options{
		Discover: StaticTargets{{URL: pulled.url}}, Every: 500 * time.Millisecond, Timeout: 10 * time.Second, Registry: reg,
		Detect: Detection{Window: window},
	}, true)
	push := []string{"--pyroscope", r.url, "--pyroscope-upload-rate", time.Second.String()}
	pushed := &fleetTarget{svc: svc, addr: testbin.FreeAddr(t)}
	pushed.proc = testbin.StartServiceWith(t, bin, svc.Name, false, append([]string{"--addr", pushed.addr}, push...)...)
	pushed.url = pushed.proc.URL
	pushSeries := PushTargetPrefix + "leaklab." + svc.Name + "{service=" + svc.Name + ",variant=leaky}"
	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	loadFleet(ctx, &wg, []*fleetTarget{pulled, pushed})
	defer func() { stopLoad(); wg.Wait() }()

	restarts := func(series string, reasons ...string) float64 {
		n := 0.0
		for _, why := range reasons {
			n += testutil.ToFloat64(r.c.fleet.m.restarts.WithLabelValues(series, why))
		}
		return n
	}
	follow(t, r.c, &fleetVerdicts{
		targets: []*fleetTarget{pulled}, restarted: pulled, what: "the pulled target",
		series:   func(ft *fleetTarget) string { return ft.url },
		restarts: func() float64 { return restarts(pulled.url, "process_start") },
		restart: func() *testbin.Service {
			return testbin.StartServiceWith(t, bin, svc.Name, false, "--addr", pulled.addr)
		},
	}, &fleetVerdicts{
		targets: []*fleetTarget{pushed}, restarted: pushed, what: "the pushing target",
		series:   func(*fleetTarget) string { return pushSeries },
		restarts: func() float64 { return restarts(pushSeries, "session", "upload_gap", "counter_reset", "binary") },
		restart: func() *testbin.Service { // killed with no last push
			return testbin.StartServiceWith(t, bin, svc.Name, false, append([]string{"--addr", pushed.addr}, push...)...)
		},
	})

	body := get(t, r.url+"/metrics")
	if !strings.Contains(body, `leaklab_leak_series_restarts_total{reason="process_start",target="`+pulled.url+`"}`) {
		t.Errorf("the restart of the pulled target was not counted:\n%s", grepLines(body, "leaklab_leak_series_restarts_total"))
	}
	if !strings.Contains(grepLines(body, "leaklab_leak_series_restarts_total"), `target="`+pushSeries+`"`) {
		t.Errorf("the restart of the pushing target was not counted:\n%s", grepLines(body, "leaklab_leak_series_restarts_total"))
	}
	checkSuspectsExposed(t, r, body)
	stopLoad()
	wg.Wait()
	if sum := r.stop(t); sum.PushesRejected != 0 {
		t.Errorf("%d pushes rejected", sum.PushesRejected)
	}
}

// grepLines keeps the lines of text that start with prefix.
func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestProcessIdentity checks what tells one process of a target from the
// next.
func TestProcessIdentity(t *testing.T) {
	t.Parallel()
	text := "# HELP go_build_info x\n# TYPE go_build_info gauge\n" +
		`go_build_info{checksum="",path="github.com/leaklab/leaklab",version="(devel)"} 1` + "\n" +
		"process_start_time_seconds 1.76484e+09\n"
	pr := parseProcessMetrics(strings.NewReader(text))
	if pr.start != 1.76484e9 || pr.module != "github.com/leaklab/leaklab" {
		t.Fatalf("parsed %+v", pr)
	}
	for _, c := range []struct {
		prev, next process
		want       string
	}{
		{process{start: 100}, process{start: 100}, ""},
		{process{start: 100}, process{start: 160}, "process_start"},
		{process{start: 100}, process{start: 100.3}, "process_start"}, // two processes started together
		{process{start: 100}, process{}, ""},
		{process{module: "a"}, process{module: "b"}, "binary"},
		{process{buildID: "x"}, process{buildID: "y"}, "binary"},
		{process{allocs: 1000}, process{allocs: 2000}, ""},
		{process{allocs: 1000}, process{allocs: 999.5}, ""}, // sampled estimates wander a little
		{process{allocs: 1000}, process{allocs: 10}, "counter_reset"},
		{process{}, process{allocs: 10}, ""},
	} {
		if got := restartReason(c.prev, c.next); got != c.want {
			t.Errorf("restartReason(%+v, %+v) = %q, want %q", c.prev, c.next, got, c.want)
		}
	}
}

// goroutineProfile is a goroutine profile with counts[i] goroutines
// blocked in example.com/app.worker<i>.
func goroutineProfile(counts []int64) *profile.Profile {
	p := &profile.Profile{SampleType: []*profile.ValueType{{Type: "goroutine", Unit: "count"}}, PeriodType: &profile.ValueType{Type: "goroutine", Unit: "count"}, Period: 1}
	chanrecv := &profile.Function{ID: 1, Name: "runtime.chanrecv1"}
	p.Function = append(p.Function, chanrecv)
	for i, n := range counts {
		fn := &profile.Function{ID: uint64(i + 2), Name: fmt.Sprintf("example.com/app.worker%d", i)}
		p.Function = append(p.Function, fn)
		loc := &profile.Location{ID: uint64(i + 2), Line: []profile.Line{{Function: chanrecv}, {Function: fn}}}
		p.Location = append(p.Location, loc)
		p.Sample = append(p.Sample, &profile.Sample{Location: []*profile.Location{loc}, Value: []int64{n}})
	}
	return p
}

// TestSuspectSeriesBoundedAndGone feeds one target's detector goroutine
// profiles in which five sites grow: at most MaxSuspectsPerTarget of them
// get series, and once the growth has left the window, the series go.
func TestSuspectSeriesBoundedAndGone(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	f := newFleet(Detection{Window: 2 * time.Minute, MaxSuspectsPerTarget: 3}, nil, profiles.Limits{}, http.DefaultClient, slog.New(slog.DiscardHandler), reg)
	const target = "http://127.0.0.1:1"
	ts := &targetSeries{}
	start := time.Unix(1_800_000_000, 0)
	at := start
	counts := make([]int64, 5)
	round := func() {
		f.feed(target, ts, profiles.TypeGoroutine, at, goroutineProfile(counts), "", process{start: 1}, false)
		f.judge(target, ts, at)
		at = at.Add(10 * time.Second)
	}
	for range 12 { // two minutes of growth, 20 goroutines a round
		for i := range counts {
			counts[i] += 20 + int64(i)
		}
		round()
	}
	if n := testutil.CollectAndCount(f.m.suspect); n != 3 {
		t.Fatalf("%d leaklab_leak_suspect series, want 3 (the cap); suspects: %s", n, describe(f.suspects()))
	}
	if n := testutil.CollectAndCount(f.m.growth); n != 3 {
		t.Errorf("%d leaklab_leak_growth_per_minute series, want 3", n)
	}
	// The steepest three, as the detector ranks them.
	for _, s := range f.suspects() {
		if s.Function != "example.com/app.worker4" && s.Function != "example.com/app.worker3" && s.Function != "example.com/app.worker2" {
			t.Errorf("suspect %s is not among the three steepest", s.Function)
		}
	}
	for range 15 { // flat for longer than the window
		round()
	}
	if n := testutil.CollectAndCount(f.m.suspect); n != 0 {
		t.Errorf("%d suspect series after the growth left the window, want none: %s", n, describe(f.suspects()))
	}
	if n := testutil.CollectAndCount(f.m.growth); n != 0 {
		t.Errorf("%d growth series after the growth left the window, want none", n)
	}
	// A new process starts a series of its own: its first rounds do not
	// continue the old one.
	f.feed(target, ts, profiles.TypeGoroutine, at, goroutineProfile(make([]int64, 5)), "", process{start: 2}, false)
	if got := testutil.ToFloat64(f.m.restarts.WithLabelValues(target, "process_start")); got != 1 {
		t.Errorf("restarts = %v, want 1", got)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v %v", problems, err)
	}
}

// TestDetectBadTargets runs detection beside a target that answers
// garbage, one that stalls, and one that flips between two processes
// every round (another service behind the address): the first two get
// counted failures, the third a new series each time it changes, and none
// of them a verdict.
func TestDetectBadTargets(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs two sample services in their own processes; skipped with -short")
	}
	bin := testbin.Build(t)
	a := testbin.StartServiceWith(t, bin, "abandoned-worker", true)
	b := testbin.StartServiceWith(t, bin, "unbounded-cache", true)
	var rounds atomic.Int64
	flip := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := rounds.Load()
		if r.URL.Path == "/debug/pprof/heap" {
			n = rounds.Add(1) // a capture round starts with the heap profile
		}
		backend := a.URL
		if n%2 == 0 {
			backend = b.URL
		}
		testbin.Forward(w, r, backend)
	}))
	defer flip.Close()
	junk := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html><body>this is a login page</body></html>"))
	}))
	defer junk.Close()
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer stall.Close()

	reg := prometheus.NewPedanticRegistry()
	r := startCollector(t, Options{
		Discover: StaticTargets{{URL: flip.URL}, {URL: junk.URL}, {URL: stall.URL}},
		Every:    300 * time.Millisecond, Timeout: time.Second, Registry: reg,
		Detect: Detection{Window: time.Minute},
	}, false)
	flips := func() float64 {
		return testutil.ToFloat64(r.c.fleet.m.restarts.WithLabelValues(flip.URL, "process_start"))
	}
	defer func() {
		if t.Failed() {
			t.Logf("flips %v, junk failures %v, stall failures %v", flips(), testutil.ToFloat64(r.c.m.failures.WithLabelValues(junk.URL, "heap", "not_profile")), testutil.ToFloat64(r.c.m.failures.WithLabelValues(stall.URL, "heap", "timeout")))
		}
	}()
	testbin.WaitFor(t, 60*time.Second, "four flips and a failure of each bad target", func() bool {
		return flips() >= 4 &&
			testutil.ToFloat64(r.c.m.failures.WithLabelValues(junk.URL, "heap", "not_profile")) >= 1 &&
			testutil.ToFloat64(r.c.m.failures.WithLabelValues(stall.URL, "heap", "timeout")) >= 1
	})
	if sus := r.c.Suspects(); len(sus) > 0 {
		t.Errorf("suspects from bad targets: %s", describe(sus))
	}
	sum := r.stop(t)
	if len(sum.Suspects) != 0 {
		t.Errorf("summary suspects: %s", describe(sum.Suspects))
	}
}

// TestRebuildFromStore stops a collector that found a leak and starts
// another on the same store: the second judges the target's history at
// once (its first suspects name profiles the first one stored), rather
// than waiting for half a window of its own captures. Then the target
// restarts while no collector runs: the third collector skips what the
// store holds of the old process.
func TestRebuildFromStore(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("collects a sample service until it is a suspect; skipped with -short")
	}
	svc, err := leaks.Lookup("runaway-poller")
	if err != nil {
		t.Fatal(err)
	}
	bin := testbin.Build(t)
	addr := testbin.FreeAddr(t)
	proc := testbin.StartServiceWith(t, bin, svc.Name, false, "--addr", addr)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	loadFleet(ctx, &wg, []*fleetTarget{{svc: svc, url: proc.URL}})
	defer func() { cancel(); wg.Wait() }()

	st, err := profiles.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// A window of 12 s (24 rounds; judged from 6 s on): runaway-poller's
	// goroutines pile up a few a second under load, and what the test
	// checks is the rebuild, not the detector's patience.
	opts := func() Options {
		return Options{Discover: StaticTargets{{URL: proc.URL}}, Every: 500 * time.Millisecond, Store: st,
			Registry: prometheus.NewRegistry(), Detect: Detection{Window: 12 * time.Second}}
	}
	culprit := func(r *running) *Suspect {
		for _, s := range r.c.Suspects() {
			if s.Function == svc.Culprit {
				return &s
			}
		}
		return nil
	}
	first := startCollector(t, opts(), false)
	testbin.WaitFor(t, 2*time.Minute, "the culprit as a suspect", func() bool { return culprit(first) != nil })
	first.stop(t)
	stopped := time.Now()

	second := startCollector(t, opts(), false)
	var s *Suspect
	testbin.WaitFor(t, time.Minute, "a judgement of the second collector", func() bool {
		s = culprit(second)
		return s != nil || testutil.ToFloat64(second.c.m.captures.WithLabelValues(proc.URL, profiles.TypeGoroutine)) >= 2
	})
	if s == nil {
		t.Fatalf("the second collector's first judgements found no suspect: it did not rebuild the history (suspects %s)", describe(second.c.Suspects()))
	}
	base := list(t, st, profiles.Filter{Target: proc.URL, Type: profiles.TypeGoroutine, Until: stopped})
	found := false
	for _, m := range base {
		found = found || m.ID == s.BaseID
	}
	if !found {
		t.Errorf("the rebuilt suspect's base %s is not a profile the first collector stored", s.BaseID)
	}
	second.stop(t)

	// The target restarts while no collector runs.
	proc.Kill()
	restarted := time.Now()
	proc = testbin.StartServiceWith(t, bin, svc.Name, false, "--addr", addr)
	third := startCollector(t, opts(), false)
	testbin.WaitFor(t, time.Minute, "two rounds of the third collector", func() bool {
		return testutil.ToFloat64(third.c.m.captures.WithLabelValues(proc.URL, profiles.TypeGoroutine)) >= 2
	})
	for _, s := range third.c.Suspects() {
		if s.Points[0].Time.Before(restarted) {
			t.Errorf("after the restart, a suspect with points of the old process: %s from %s", s.Function, s.Points[0].Time)
		}
	}
	third.stop(t)
}

// TestShardsSplitTargets runs two collectors on one targets file, each
// with its shard: every target is collected by exactly one of them.
func TestShardsSplitTargets(t *testing.T) {
	t.Parallel()
	svc := startService(t, "abandoned-worker", true, leaks.Options{})
	// Twenty addresses of one service, so that both shards get some.
	var urls []string
	for range 20 {
		proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			testbin.Forward(w, r, svc.URL())
		}))
		t.Cleanup(proxy.Close)
		urls = append(urls, proxy.URL)
	}
	file := filepath.Join(t.TempDir(), "targets.json")
	writeTargets(t, file, urls...)
	var shards []*running
	for i := range 2 {
		shards = append(shards, startCollector(t, Options{
			Discover: FileTargets{Path: file}, Every: 500 * time.Millisecond, Timeout: 5 * time.Second, Types: []string{profiles.TypeGoroutine},
			Registry: prometheus.NewRegistry(), Shard: Shard{Index: i, Count: 2},
		}, false))
	}
	testbin.WaitFor(t, time.Minute, "every target captured by a shard", func() bool {
		captured := 0
		for _, r := range shards {
			for _, ts := range r.c.Summary().Targets {
				if ts.Captures > 0 {
					captured++
				}
			}
		}
		return captured >= len(urls)
	})
	sums := []Summary{shards[0].stop(t), shards[1].stop(t)}
	owner := map[string]int{}
	for i, sum := range sums {
		for _, ts := range sum.Targets {
			if prev, ok := owner[ts.Target]; ok {
				t.Errorf("%s collected by shard %d and shard %d", ts.Target, prev, i)
			}
			owner[ts.Target] = i
			if ts.Captures == 0 {
				t.Errorf("shard %d never captured %s: %s", i, ts.Target, ts.LastError)
			}
		}
	}
	if len(owner) != len(urls) {
		t.Errorf("%d of %d targets collected", len(owner), len(urls))
	}
	t.Logf("shard 0: %d targets, shard 1: %d", len(sums[0].Targets), len(sums[1].Targets))
}

func TestParseShard(t *testing.T) {
	t.Parallel()
	for in, ok := range map[string]bool{"0/2": true, "1/2": true, "2/2": false, "-1/2": false, "0/0": false, "a/b": false, "1": false, "0/1": true} {
		if _, err := ParseShard(in); (err == nil) != ok {
			t.Errorf("ParseShard(%q): %v", in, err)
		}
	}
	sh := Shard{Index: 0, Count: 1}
	if !sh.Owns("anything") {
		t.Error("one shard owns everything")
	}
	// The URL's host:port is hashed, as Prometheus hashes __address__.
	for _, addr := range []string{"127.0.0.1:9101", "10.0.0.7:8080", "svc.internal:443"} {
		a, b := Shard{Index: 1, Count: 3}.Owns("http://"+addr), Shard{Index: 1, Count: 3}.Owns(addr)
		if a != b {
			t.Errorf("%s: the URL and the address fall in different shards", addr)
		}
	}
}

// TestShardMatchesPrometheusHashmod gives a real Prometheus thirty
// targets and a hashmod relabelling keeping shard 1 of 3: the targets it
// keeps are the ones Shard{1, 3} owns.
func TestShardMatchesPrometheusHashmod(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("LEAKLAB_CI") == "1" {
			t.Fatal("prometheus is not installed (CI installs the Debian package prometheus)")
		}
		t.Skip("SKIPPING the hashmod comparison: the prometheus binary is not installed (apt-get install prometheus)")
	}
	var addrs []string
	for i := range 30 {
		addrs = append(addrs, fmt.Sprintf("127.0.0.%d:%d", 1+i%7, 9100+i))
	}
	quoted, _ := json.Marshal(addrs)
	dir := t.TempDir()
	config := fmt.Sprintf(`global:
  scrape_interval: 1m
scrape_configs:
  - job_name: fleet
    static_configs:
      - targets: %s
    relabel_configs:
      - source_labels: [__address__]
        modulus: 3
        target_label: __tmp_shard
        action: hashmod
      - source_labels: [__tmp_shard]
        regex: "1"
        action: keep
`, quoted)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := testbin.FreeAddr(t)
	prom := testbin.Start(t, exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr))
	t.Cleanup(func() { prom.Stop(t) })
	disc := PrometheusTargets{URL: "http://" + addr}
	kept := map[string]bool{}
	testbin.WaitFor(t, time.Minute, "Prometheus to list its targets", func() bool {
		ts, err := disc.Targets(context.Background())
		if err != nil || len(ts) == 0 {
			return false
		}
		for _, tg := range ts {
			kept[strings.TrimPrefix(tg.URL, "http://")] = true
		}
		return true
	})
	sh := Shard{Index: 1, Count: 3}
	for _, a := range addrs {
		if sh.Owns("http://"+a) != kept[a] {
			t.Errorf("%s: Prometheus's hashmod keeps it: %v; Shard{1,3}.Owns: %v", a, kept[a], sh.Owns("http://"+a))
		}
	}
	if len(kept) == 0 || len(kept) == len(addrs) {
		t.Errorf("Prometheus kept %d of %d targets: not a split", len(kept), len(addrs))
	}
}

// fleetVerdicts is how the fleet tests (pulled and pushed, live and
// replayed) judge the collector's verdicts as time goes: every leaky
// target must come to have its culprit as a suspect; a fixed twin must
// never stay a suspect for fleetSteady; and once restarted's culprit has
// been found, restarted is killed (as a crash would) and started again,
// and its culprit must be found again, judged after the collector
// counted the new process and with points of the new process only.
type fleetVerdicts struct {
	targets   []*fleetTarget
	restarted *fleetTarget
	what      string                    // the leaky targets, in the failure message
	series    func(*fleetTarget) string // a target's name on the collector
	restarts  func() float64            // the restarts the collector counted of restarted's series
	restart   func() *testbin.Service   // starts restarted again, on its address (live only)
	onRestart func(killed time.Time)    // told when the test killed restarted, when not nil (live only)

	// restartedAt is when the test killed the target; restartSeen when
	// the collector had counted the new process.
	restartedAt, restartSeen time.Time
	found                    map[*fleetTarget]bool
	suspectSince             map[*fleetTarget]time.Time
	longest                  time.Duration // a fixed twin's longest spell as a suspect
}

// check judges the collector's suspects sus at now.
func (f *fleetVerdicts) check(t *testing.T, now time.Time, sus []Suspect) {
	t.Helper()
	if f.found == nil {
		f.found, f.suspectSince = map[*fleetTarget]bool{}, map[*fleetTarget]time.Time{}
	}
	if !f.restartedAt.IsZero() && f.restartSeen.IsZero() && f.restarts() > 0 {
		f.restartSeen = now
	}
	for _, ft := range f.targets {
		mine := suspectsOf(sus, f.series(ft))
		if ft.fixed {
			if len(mine) == 0 {
				delete(f.suspectSince, ft)
				continue
			}
			if f.suspectSince[ft].IsZero() {
				f.suspectSince[ft] = now
				t.Logf("%s: suspect for now: %s", ft.name(), describe(mine))
			}
			f.longest = max(f.longest, now.Sub(f.suspectSince[ft]))
			if now.Sub(f.suspectSince[ft]) > fleetSteady {
				t.Fatalf("%s, a fixed twin, has been a suspect for over %s: %s", ft.name(), fleetSteady, describe(mine))
			}
			continue
		}
		for _, s := range mine {
			if s.Function != ft.svc.Culprit {
				continue
			}
			if ft == f.restarted && !f.restartedAt.IsZero() {
				if f.restartSeen.IsZero() || s.LastJudged.Before(f.restartSeen) {
					continue // judged before the collector saw the new process
				}
				if s.Points[0].Time.Before(f.restartedAt) {
					t.Fatalf("%s: a suspect after the restart has points of the old process: first point %s, restart at %s", ft.name(), s.Points[0].Time, f.restartedAt)
				}
			}
			if !f.found[ft] {
				t.Logf("%s: culprit found: %s", ft.name(), describe(mine))
			}
			f.found[ft] = true
		}
	}
}

// restartedNow notes that restarted was killed at at: its culprit must be
// found anew.
func (f *fleetVerdicts) restartedNow(t *testing.T, at time.Time) {
	t.Helper()
	f.restartedAt = at
	delete(f.found, f.restarted)
	t.Logf("%s restarted", f.restarted.name())
}

// done says whether the restart happened and every leaky target has its
// culprit found (after the restart, for restarted).
func (f *fleetVerdicts) done() bool {
	all := !f.restartedAt.IsZero()
	for _, ft := range f.targets {
		all = all && (ft.fixed || f.found[ft])
	}
	return all
}

// missing lists the leaky targets without their culprit found, with
// their suspects.
func (f *fleetVerdicts) missing(sus []Suspect) []string {
	var out []string
	for _, ft := range f.targets {
		if !ft.fixed && !f.found[ft] {
			out = append(out, ft.name()+" "+describe(suspectsOf(sus, f.series(ft))))
		}
	}
	return out
}

// follow checks a live collector's verdicts of one or more fleets
// every half second for at most four minutes, restarting each fleet's
// restarted target once its culprit is found; it returns when every
// fleet is done.
func follow(t *testing.T, c *Collector, fleets ...*fleetVerdicts) {
	t.Helper()
	const limit = 4 * time.Minute
	deadline := time.Now().Add(limit)
	for {
		now := time.Now()
		sus := c.Suspects()
		all := true
		for _, f := range fleets {
			f.check(t, now, sus)
			if f.found[f.restarted] && f.restartedAt.IsZero() {
				f.restarted.proc.Kill() // as a crash would
				killed := time.Now()
				f.restarted.proc = f.restart()
				f.restartedNow(t, killed)
				if f.onRestart != nil {
					f.onRestart(killed)
				}
			}
			all = all && f.done()
		}
		if all {
			return
		}
		if now.After(deadline) {
			for _, f := range fleets {
				if !f.done() {
					t.Errorf("after %s, %s without their culprit as suspect: %v (restart seen: %t)", limit, f.what, f.missing(sus), !f.restartSeen.IsZero())
				}
			}
			t.FailNow()
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// checkSuspectsExposed checks what a collector shows of its suspects: a
// leaklab_leak_suspect line for each in body (its /metrics), which lints
// clean, each suspect naming the stored profiles to diff, and GET
// /suspects as JSON with the contract's fields.
func checkSuspectsExposed(t *testing.T, r *running, body string) {
	t.Helper()
	for _, s := range r.c.Suspects() {
		want := fmt.Sprintf(`leaklab_leak_suspect{confidence=%q,function=%q,kind=%q,target=%q} 1`, s.Confidence, s.Function, s.Kind, s.Target)
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
		if s.BaseID == "" || s.CurrentID == "" {
			t.Errorf("suspect %s of %s names no stored profiles to diff", s.Function, s.Target)
		}
	}
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "leaklab_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}
	var listed []map[string]any
	if _, err := getSuspectsJSON(t, r.url, &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) == 0 {
		t.Fatal("GET /suspects listed nothing")
	}
	for _, field := range []string{"target", "kind", "function", "confidence", "growth_per_minute", "unit", "first_seen", "last_judged", "evidence", "base_id", "current_id"} {
		if _, ok := listed[0][field]; !ok {
			t.Errorf("GET /suspects: no %q in %v", field, listed[0])
		}
	}
}
