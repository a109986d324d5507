package collect

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/profiles"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// pushServices push their profiles to the collector instead of being
// pulled: a heap leak and a goroutine leak, leaky and fixed.
var pushServices = []string{"unbounded-cache", "abandoned-worker"}

// TestDetectPushed runs catalog services as real processes pushing with
// pyroscope-go ('leaklab run --pyroscope') to a real collector that pulls
// nothing, under load, and checks that pushing targets are judged as
// pulled ones are: every leaky one comes to have its culprit as a
// suspect, under its push target (application and labels), on
// /suspects and /metrics; a fixed twin is never a suspect for a whole
// window; and the leaky heap service, killed and started again mid-run,
// starts a new series (the restart counted, every suspect after it with
// points of the new process only).
//
// It runs with -update, and records the run TestPushedFleetReplay
// judges: the verdicts are replayed, and TestDetectLive is what is live.
func TestDetectPushed(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs four pushing sample services under load for over a minute; skipped with -short")
	}
	if !*update {
		t.Skip("records the pushing fleet TestPushedFleetReplay judges (testdata/fleet/pushed.tar.gz); runs with -update")
	}
	bin := testbin.Build(t)
	reg := prometheus.NewPedanticRegistry()
	storeDir := t.TempDir()
	st, err := profiles.Open(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	r := startCollector(t, Options{Every: fleetEvery, Registry: reg, Store: st, Detect: Detection{Window: fleetWindow}}, true)
	rec := &fleetRecording{Window: fleetWindow}
	push := []string{"--pyroscope", r.url, "--pyroscope-upload-rate", fleetEvery.String()}

	var targets []*fleetTarget
	series := map[*fleetTarget]string{}
	for _, name := range pushServices {
		svc, err := leaks.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, fixed := range []bool{false, true} {
			ft := &fleetTarget{svc: svc, fixed: fixed, addr: testbin.FreeAddr(t)}
			ft.proc = testbin.StartServiceWith(t, bin, name, fixed, append([]string{"--addr", ft.addr}, push...)...)
			ft.url = ft.proc.URL
			targets = append(targets, ft)
			series[ft] = PushTargetPrefix + "leaklab." + name + "{service=" + name + ",variant=" + string(leaks.VariantOf(fixed)) + "}"
			rec.Targets = append(rec.Targets, recordedTarget{Series: series[ft], Service: name, Fixed: fixed})
		}
	}
	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	loadFleet(ctx, &wg, targets)
	defer func() { stopLoad(); wg.Wait() }()

	restarted := targets[0] // unbounded-cache, leaky
	if restarted.fixed || restarted.svc.Kind != leaks.KindHeap {
		t.Fatal("the restart is meant for a leaky heap service")
	}
	rec.Restarted = series[restarted]
	follow(t, r.c, &fleetVerdicts{
		targets: targets, restarted: restarted, what: "leaky pushing targets",
		series: func(ft *fleetTarget) string { return series[ft] },
		restarts: func() float64 {
			n := 0.0
			for _, why := range []string{"session", "upload_gap", "counter_reset", "binary"} {
				n += testutil.ToFloat64(r.c.fleet.m.restarts.WithLabelValues(series[restarted], why))
			}
			return n
		},
		restart: func() *testbin.Service { // killed with no last push
			return testbin.StartServiceWith(t, bin, restarted.svc.Name, false, append([]string{"--addr", restarted.addr}, push...)...)
		},
		onRestart: func(at time.Time) { rec.KilledAt = at.UTC() },
	})

	body := get(t, r.url+"/metrics")
	t.Logf("restarts counted:\n%s", grepLines(body, "leaklab_leak_series_restarts_total"))
	for _, ft := range targets {
		if ft != restarted && strings.Contains(grepLines(body, "leaklab_leak_series_restarts_total"), `target="`+series[ft]+`"`) {
			t.Errorf("%s never restarted, but:\n%s", ft.name(), grepLines(body, "leaklab_leak_series_restarts_total"))
		}
	}
	for _, s := range r.c.Suspects() {
		if !strings.HasPrefix(s.Target, PushTargetPrefix) {
			t.Errorf("suspect of a target that was never pulled: %+v", s)
		}
		want := `leaklab_leak_suspect{confidence="` + s.Confidence + `",function="` + s.Function + `",kind="` + s.Kind + `",target="` + s.Target + `"} 1`
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
		if s.BaseID == "" || s.CurrentID == "" {
			t.Errorf("suspect %s of %s names no stored profiles to diff", s.Function, s.Target)
		}
	}
	stopLoad()
	wg.Wait()
	if sum := r.stop(t); sum.PushesRejected != 0 {
		t.Errorf("%d pushes rejected", sum.PushesRejected)
	}
	if *update {
		rec.save(t, "pushed", storeDir, st)
		replayPushed(t, "pushed")
	}
}

// TestPushIdentity: what tells one pushing process from the next. A
// push continues its process's chain when it starts where the last one
// ended (the next period) or where the last one started (another type of
// the same period); pyroscope-go's session ID changing says so too.
func TestPushIdentity(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_800_000_000, 123456789)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	prev := process{session: "a", from: at(0), until: at(15)}
	for _, c := range []struct {
		next process
		want string
	}{
		{process{session: "a", from: at(15), until: at(30)}, ""},               // the next period
		{process{session: "a", from: at(0), until: at(15)}, ""},                // another type of the same period
		{process{session: "a", from: at(15.0004), until: at(30)}, ""},          // a client that rounds
		{process{session: "a", from: at(21.5), until: at(36.5)}, "upload_gap"}, // a new process, same host
		{process{session: "a", from: at(30), until: at(45)}, "upload_gap"},     // a period lost
		{process{session: "b", from: at(15), until: at(30)}, "session"},
		{process{session: "a"}, ""}, // a push without its period: nothing says
		{process{from: at(22), until: at(37)}, "upload_gap"},
	} {
		if got := restartReason(prev, c.next); got != c.want {
			t.Errorf("restartReason(%+v, %+v) = %q, want %q", prev, c.next, got, c.want)
		}
	}
	// The stored labels say the same: a push's identity survives the store.
	m := profiles.Meta{Type: profiles.TypeHeap, Time: at(30), Labels: pushLabels(profiles.TypeHeap, "a", at(15), map[string]sampleType{"alloc_space": {}})}
	pr, delta := pushProcess(m)
	if !delta || pr.session != "a" || !pr.from.Equal(at(15)) || !pr.until.Equal(at(30)) {
		t.Errorf("stored as %v, read back as %+v (delta %t)", m.Labels, pr, delta)
	}
	m.Labels = pushLabels(profiles.TypeHeap, "a", at(15), map[string]sampleType{"alloc_space": {Cumulative: true}})
	if _, delta := pushProcess(m); delta {
		t.Errorf("a heap profile whose config says alloc_space is cumulative read as deltas: %v", m.Labels)
	}
}

// TestAllocTotals: godeltaprof's per-push allocations become totals per
// stack, and a stack a push leaves out keeps its total.
func TestAllocTotals(t *testing.T) {
	t.Parallel()
	fns := []*profile.Function{{ID: 1, Name: "example.com/app.leak"}, {ID: 2, Name: "example.com/app.churn"}}
	locs := []*profile.Location{{ID: 1, Address: 0x10, Line: []profile.Line{{Function: fns[0]}}}, {ID: 2, Address: 0x20, Line: []profile.Line{{Function: fns[1]}}}}
	push := func(values map[int][2]int64) *profile.Profile { // location index → alloc_space delta, inuse_space
		p := &profile.Profile{SampleType: []*profile.ValueType{{Type: "alloc_objects"}, {Type: "alloc_space"}, {Type: "inuse_objects"}, {Type: "inuse_space"}}, Function: fns, Location: locs}
		for i := range locs {
			if v, ok := values[i]; ok {
				p.Sample = append(p.Sample, &profile.Sample{Location: []*profile.Location{locs[i]}, Value: []int64{v[0] / 1024, v[0], v[1] / 1024, v[1]}})
			}
		}
		return p
	}
	totals := func(p *profile.Profile) map[string]int64 {
		out := map[string]int64{}
		for _, s := range p.Sample {
			out[s.Location[0].Line[0].Function.Name] += s.Value[1]
		}
		return out
	}
	a := newAllocTotals()
	for i, c := range []struct {
		push map[int][2]int64
		want map[string]int64
	}{
		{map[int][2]int64{0: {1 << 20, 1 << 20}, 1: {4 << 20, 0}}, map[string]int64{"example.com/app.leak": 1 << 20, "example.com/app.churn": 4 << 20}},
		{map[int][2]int64{0: {1 << 20, 2 << 20}}, map[string]int64{"example.com/app.leak": 2 << 20, "example.com/app.churn": 4 << 20}}, // churn left out
		{map[int][2]int64{0: {0, 2 << 20}, 1: {4 << 20, 0}}, map[string]int64{"example.com/app.leak": 2 << 20, "example.com/app.churn": 8 << 20}},
	} {
		got := totals(a.cumulate(push(c.push)))
		for fn, want := range c.want {
			if got[fn] != want {
				t.Errorf("push %d: %s allocated %d in total, want %d", i, fn, got[fn], want)
			}
		}
	}
}

// TestPushReplayFromStore: a collector that starts with a pushing
// target's history in its store rebuilds the target's series from it at
// the target's first push, when that push continues the stored upload
// chain; when it does not (the pusher restarted while no collector ran),
// the history is another process's and is not judged with the new one.
func TestPushReplayFromStore(t *testing.T) {
	t.Parallel()
	const every = 5 * time.Second
	const app = "leaklab.example"
	target := PushTargetPrefix + app + "{variant=leaky}"
	for _, continues := range []bool{true, false} {
		st, err := profiles.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().Truncate(time.Millisecond).Add(123456 * time.Nanosecond)
		pushAt := func(i int, count int64) *profiles.Captured {
			from := now.Add(time.Duration(i-1) * every)
			meta := profiles.Meta{Target: PushTargetPrefix + app, Type: profiles.TypeGoroutine, Time: from.Add(every).UTC(),
				Labels: pushLabels(profiles.TypeGoroutine, "a", from, nil)}
			meta.Labels["variant"], meta.Labels["app"], meta.Labels[LabelCollected] = "leaky", app, "push"
			return profiles.NewCaptured(meta, goroutineProfile([]int64{count, 3}))
		}
		for i := -12; i < 0; i++ { // a minute of growth, stored
			if _, err := st.Save(pushAt(i, int64(100*(i+13)))); err != nil {
				t.Fatal(err)
			}
		}
		reg := prometheus.NewPedanticRegistry()
		f := newFleet(Detection{Window: time.Minute}, st, profiles.Limits{}, nil, slog.New(slog.DiscardHandler), reg)
		f.loadHistory(now.Add(time.Second))
		live := pushAt(0, 1300)
		if !continues {
			live = pushAt(1, 1300) // its period does not start where the stored one ended
		}
		f.observePush(live)
		sus := suspectsOf(f.suspects(), target)
		restarts := testutil.ToFloat64(f.m.restarts.WithLabelValues(target, "upload_gap"))
		if continues && (len(sus) != 1 || sus[0].Function != "example.com/app.worker0" || restarts != 0) {
			t.Errorf("continuing the stored chain: suspects %s, %v restarts; want worker0 from the rebuilt history, no restart", describe(sus), restarts)
		}
		if !continues && (len(sus) != 0 || restarts != 1) {
			t.Errorf("after a gap in the chain: suspects %s, %v restarts; want none and one restart", describe(sus), restarts)
		}
	}
}

// TestSilentPusherForgotten: a pushing target that stops pushing leaves
// /suspects and /metrics within a window and a quarter; one that keeps
// pushing stays.
func TestSilentPusherForgotten(t *testing.T) {
	t.Parallel()
	const every = 5 * time.Second
	reg := prometheus.NewPedanticRegistry()
	f := newFleet(Detection{Window: time.Minute}, nil, profiles.Limits{}, nil, slog.New(slog.DiscardHandler), reg)
	clock := time.Unix(1_800_000_000, 0)
	f.now = func() time.Time { return clock }
	push := func(app string, i int, count int64) {
		from := clock.Add(-every)
		meta := profiles.Meta{Target: PushTargetPrefix + app, Type: profiles.TypeGoroutine, Time: clock,
			Labels: pushLabels(profiles.TypeGoroutine, "s", from, nil)}
		f.observePush(profiles.NewCaptured(meta, goroutineProfile([]int64{count})))
	}
	for i := range 13 { // a minute of growth at both
		push("a", i, int64(100*i))
		push("b", i, int64(100*i))
		clock = clock.Add(every)
	}
	if len(suspectsOf(f.suspects(), PushTargetPrefix+"a")) != 1 || len(suspectsOf(f.suspects(), PushTargetPrefix+"b")) != 1 {
		t.Fatalf("after a minute of growth: suspects %s", describe(f.suspects()))
	}
	for i := 13; i < 13+20; i++ { // b keeps pushing, a is silent for 1.6 windows
		push("b", i, 1300)
		clock = clock.Add(every)
	}
	if s := suspectsOf(f.suspects(), PushTargetPrefix+"a"); len(s) != 0 {
		t.Errorf("a, silent for over a window, is still a suspect: %s", describe(s))
	}
	if n := testutil.CollectAndCount(f.m.suspect); n != 0 {
		t.Errorf("%d suspect series left on /metrics, want none (b has been flat for a window)", n)
	}
	if _, ok := f.series[PushTargetPrefix+"a"]; ok {
		t.Error("a's series is still kept")
	}
	if _, ok := f.series[PushTargetPrefix+"b"]; !ok {
		t.Error("b, still pushing, was forgotten")
	}
}

// TestPushesCrossing: pyroscope-go uploads over several connections.
// Pushes of one period cross freely (each type starts where the period
// does). A push delayed past the next period's looks like a gap in the
// chain, and starts a new series (history lost, never a verdict); when it
// arrives, it is older than the series and is left out and counted, not
// fed backwards or taken for yet another process.
func TestPushesCrossing(t *testing.T) {
	t.Parallel()
	const every = 5 * time.Second
	reg := prometheus.NewPedanticRegistry()
	f := newFleet(Detection{Window: time.Minute}, nil, profiles.Limits{}, nil, slog.New(slog.DiscardHandler), reg)
	start := time.Unix(1_800_000_000, 0)
	push := func(typ string, period int) {
		from := start.Add(time.Duration(period) * every)
		meta := profiles.Meta{Target: PushTargetPrefix + "a", Type: typ, Time: from.Add(every), Labels: pushLabels(typ, "s", from, nil)}
		f.observePush(profiles.NewCaptured(meta, goroutineProfile([]int64{int64(10 * period)})))
	}
	target := PushTargetPrefix + "a"
	gaps := func() float64 { return testutil.ToFloat64(f.m.restarts.WithLabelValues(target, "upload_gap")) }
	late := func() float64 { return testutil.ToFloat64(f.m.failures.WithLabelValues(target, "out_of_order")) }
	for period := range 3 {
		push(profiles.TypeGoroutine, period)
		push(profiles.TypeGoroutineLeak, period) // another type of the same period
	}
	if gaps() != 0 || late() != 0 {
		t.Fatalf("pushes in order: %v gaps, %v late", gaps(), late())
	}
	push(profiles.TypeGoroutine, 4) // overtakes period 3
	push(profiles.TypeGoroutine, 3)
	push(profiles.TypeGoroutine, 5)
	if gaps() != 1 || late() != 1 {
		t.Errorf("period 4 before period 3: %v gaps, %v late; want 1 and 1", gaps(), late())
	}
	if ts := f.series[target]; ts == nil || len(ts.stamps[profiles.TypeGoroutine]) != 2 {
		t.Errorf("series %+v: want the new series' periods 4 and 5", ts)
	}
}

// TestPushTargetsBounded: a pusher that names itself anew with every push
// (a new label value each time) gets at most maxPushTargets detectors;
// the pushes past that are counted under the application, and a target
// that was already judged keeps being judged.
func TestPushTargetsBounded(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	f := newFleet(Detection{Window: time.Minute}, nil, profiles.Limits{}, nil, slog.New(slog.DiscardHandler), reg)
	now := time.Unix(1_800_000_000, 0)
	f.now = func() time.Time { return now }
	push := func(instance string) {
		labels := pushLabels(profiles.TypeGoroutine, "s", now.Add(-time.Second), nil)
		labels["instance"] = instance
		meta := profiles.Meta{Target: PushTargetPrefix + "a", Type: profiles.TypeGoroutine, Time: now, Labels: labels}
		f.observePush(profiles.NewCaptured(meta, goroutineProfile([]int64{1})))
	}
	for i := range maxPushTargets + 50 {
		push(fmt.Sprint(i))
	}
	if n := len(f.series); n != maxPushTargets {
		t.Errorf("%d pushing targets judged, want at most %d", n, maxPushTargets)
	}
	if got := testutil.ToFloat64(f.m.failures.WithLabelValues(PushTargetPrefix+"a", "too_many_push_targets")); got != 50 {
		t.Errorf("%v pushes counted as too_many_push_targets, want 50", got)
	}
	before := len(f.series[PushTargetPrefix+"a{instance=0}"].stamps[profiles.TypeGoroutine])
	now = now.Add(time.Second)
	push("0") // judged before the cap was reached: still judged
	if after := len(f.series[PushTargetPrefix+"a{instance=0}"].stamps[profiles.TypeGoroutine]); after != before+1 {
		t.Errorf("a judged target's push was not fed: %d stamps, then %d", before, after)
	}
}
