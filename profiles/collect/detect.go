package collect

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leaklab/leaklab/profiles"
	"github.com/leaklab/leaklab/profiles/watch"
	"github.com/prometheus/client_golang/prometheus"
)

// Detection defaults.
const (
	// DefaultDetectWindow is how much of each target's history is judged.
	DefaultDetectWindow = 30 * time.Minute
	// DefaultMaxSuspectsPerTarget bounds the suspect series one target
	// puts on /metrics, so that a broken target cannot blow up
	// Prometheus's cardinality.
	DefaultMaxSuspectsPerTarget = 10
	// probeLimit bounds what is read of a target's /metrics to learn its
	// process start time and main module.
	probeLimit = 4 << 20
	// minSpanShare is how much of the window a series must span before it
	// is judged: a process's first minutes (caches filling, pools
	// growing to their size) are growth that stops, and a series that
	// began with them is judged once it has seen whether it does.
	minSpanShare = 0.5
	// allocResetRatio: a heap profile whose cumulative allocation count is
	// below this share of the previous one comes from another process
	// (sampled estimates wander a little, a new process starts from 0).
	allocResetRatio = 0.999
)

// Detection configures leak detection while collecting: every target's
// heap and goroutine profiles go through watch's Detector.
type Detection struct {
	// Window is the sliding window each target is judged over; zero turns
	// detection off.
	Window time.Duration
	// MaxSuspectsPerTarget is DefaultMaxSuspectsPerTarget when zero.
	MaxSuspectsPerTarget int
	MinHeapGrowth        float64 // bytes per minute; the detector's default when zero
	MinGoroutineGrowth   float64 // goroutines per minute; the detector's default when zero
}

// Suspect is one leak suspect of one target, as GET /suspects lists it.
type Suspect struct {
	Target          string      `json:"target"`
	Service         string      `json:"service,omitempty"`
	Kind            string      `json:"kind"`
	Function        string      `json:"function"`
	Confidence      string      `json:"confidence"`
	GrowthPerMinute float64     `json:"growth_per_minute"`
	Unit            string      `json:"unit"`
	FirstSeen       time.Time   `json:"first_seen"`
	LastJudged      time.Time   `json:"last_judged"`
	Evidence        watch.Trend `json:"evidence"`
	// BaseID and CurrentID are the stored profiles that bound the growth:
	// the first of the window and the last ('leaklab diff BASE CUR').
	BaseID    string   `json:"base_id,omitempty"`
	CurrentID string   `json:"current_id,omitempty"`
	Stack     []string `json:"stack,omitempty"`
	// Points are the site's values over the window, for the trend chart.
	Points []TimedPoint `json:"points,omitempty"`
}

// TimedPoint is one value of a suspect's series.
type TimedPoint struct {
	Time  time.Time `json:"time"`
	Value float64   `json:"value"`
}

// process is what tells one process of a target from the next: its start
// time and main module (from its /metrics, when it exports them), the
// build ID of its executable and its cumulative allocation count (from
// its heap profiles). Zero values are unknown and never compared.
//
// A pushing process says less: pyroscope-go labels its pushes with a
// session ID and each push covers from the end of the one before
// (from, until); a push that does not continue that chain comes from
// another process (or pushes were lost, which starts a new series too).
type process struct {
	start   float64
	module  string
	buildID string
	allocs  float64
	session string    // pyroscope-go's __session_id__
	from    time.Time // a push's period
	until   time.Time
}

// restartReason says why next is not the process prev described, or ""
// when nothing says so.
func restartReason(prev, next process) string {
	switch {
	case prev.start != 0 && next.start != 0 && math.Abs(prev.start-next.start) > 0.005: // clock ticks of 10ms, constant for one process
		return "process_start"
	case prev.session != "" && next.session != "" && prev.session != next.session:
		return "session"
	case prev.module != "" && next.module != "" && prev.module != next.module,
		prev.buildID != "" && next.buildID != "" && prev.buildID != next.buildID:
		return "binary"
	case !prev.until.IsZero() && !next.from.IsZero() && !near(next.from, prev.until) && !near(next.from, prev.from):
		// neither the next period of the pusher's nor another type of the
		// same period
		return "upload_gap"
	case prev.allocs > 0 && next.allocs > 0 && next.allocs < allocResetRatio*prev.allocs:
		return "counter_reset"
	}
	return ""
}

// merge keeps what next does not know from prev.
func (prev process) merge(next process) process {
	if next.start == 0 {
		next.start = prev.start
	}
	if next.module == "" {
		next.module = prev.module
	}
	if next.buildID == "" {
		next.buildID = prev.buildID
	}
	if next.allocs == 0 {
		next.allocs = prev.allocs
	}
	if next.session == "" {
		next.session = prev.session
	}
	if next.until.IsZero() {
		next.from, next.until = prev.from, prev.until
	}
	return next
}

// near says whether two push times are the same instant, as stored
// (time labels keep nanoseconds; a millisecond allows for a client that
// sends less).
func near(a, b time.Time) bool {
	d := a.Sub(b)
	return d < time.Millisecond && d > -time.Millisecond
}

// heapProcess reads a heap profile's share of a process's identity.
func heapProcess(p *profile.Profile) process {
	var pr process
	if len(p.Mapping) > 0 {
		pr.buildID = p.Mapping[0].BuildID
	}
	if i := profiles.SampleTypeIndex(p, "alloc_objects"); i >= 0 {
		for _, s := range p.Sample {
			pr.allocs += float64(s.Value[i])
		}
	}
	return pr
}

// stamp is one stored snapshot of a target's series.
type stamp struct {
	at time.Time
	id string
}

type suspectKey struct{ kind, function string }

// targetSeries is one target's detection state: one process's snapshots
// over the window. Only the target's own goroutine touches it.
type targetSeries struct {
	det       *watch.Detector
	proc      process
	own       watch.OwnCode
	service   string
	start     time.Time // of the series
	stamps    map[string][]stamp
	firstSeen map[suspectKey]time.Time
	loaded    bool // the store's history has been replayed

	// A pushing target's pushes arrive on any request's goroutine: mu
	// serialises them. The pulled targets' own goroutine does not take it.
	mu sync.Mutex
	// allocs turns a pushing target's delta heap profiles into cumulative
	// ones (push_detect.go); reset with every new series.
	allocs *allocTotals
}

// fleet holds every target's detection state and publishes the verdicts
// on /metrics and /suspects.
type fleet struct {
	opts   Detection
	store  *profiles.Store
	limits profiles.Limits
	client *http.Client
	log    *slog.Logger
	m      *detectMetrics

	histMu  sync.Mutex
	history map[string][]profiles.Meta // stored profiles not replayed yet, by target

	mu        sync.Mutex
	series    map[string]*targetSeries
	published map[string][]Suspect // by target, ranked
	// pushed is when each pushing target last pushed, by the collector's
	// clock (now): one that stops for a window is forgotten, as a pulled
	// target that leaves discovery is (sweepPushers).
	pushed    map[string]time.Time
	lastSweep time.Time
	// now is the collector's clock (time.Now); probeTarget asks a pulled
	// target who it is (probe). A recorded fleet is replayed through
	// observe with both set to what the recording says.
	now         func() time.Time
	probeTarget func(ctx context.Context, target string, timeout time.Duration) process
}

func newFleet(opts Detection, store *profiles.Store, limits profiles.Limits, client *http.Client, log *slog.Logger, reg prometheus.Registerer) *fleet {
	if opts.MaxSuspectsPerTarget <= 0 {
		opts.MaxSuspectsPerTarget = DefaultMaxSuspectsPerTarget
	}
	f := &fleet{opts: opts, store: store, limits: limits, client: client, log: log, m: newDetectMetrics(reg),
		series: map[string]*targetSeries{}, published: map[string][]Suspect{}, pushed: map[string]time.Time{}, now: time.Now}
	f.probeTarget = f.probe
	return f
}

// detectTypes are the profile types detection reads.
var detectTypes = map[string]bool{profiles.TypeHeap: true, profiles.TypeGoroutine: true, profiles.TypeGoroutineLeak: true}

// loadHistory lists, once, the stored profiles of the window for every
// target, so that each target's state is rebuilt from the store at its
// first round without each listing the whole store.
func (f *fleet) loadHistory(now time.Time) {
	if f.store == nil {
		return
	}
	metas, err := f.store.List(profiles.Filter{Since: now.Add(-f.opts.Window)})
	if err != nil {
		f.log.Warn("cannot read the store's history; detection starts afresh", "err", err)
		return
	}
	h := map[string][]profiles.Meta{}
	for _, m := range metas {
		if detectTypes[m.Type] {
			t := profiles.StoredTarget(m.Target)
			if strings.HasPrefix(m.Target, PushTargetPrefix) {
				t = pushSeries(m)
			}
			h[t] = append(h[t], m)
		}
	}
	f.histMu.Lock()
	f.history = h
	f.histMu.Unlock()
}

func (f *fleet) takeHistory(target string) []profiles.Meta {
	f.histMu.Lock()
	defer f.histMu.Unlock()
	t := target
	if !strings.HasPrefix(target, PushTargetPrefix) {
		t = profiles.StoredTarget(target)
	}
	h := f.history[t]
	delete(f.history, t)
	return h
}

// observe feeds one capture round of target (the profiles it stored, in
// the order taken) to the target's detector and judges it again.
func (f *fleet) observe(ctx context.Context, target string, round []*profiles.Captured, timeout time.Duration) {
	if len(round) == 0 {
		return
	}
	live := f.probeTarget(ctx, target, timeout)
	f.mu.Lock()
	ts := f.series[target]
	f.mu.Unlock()
	if ts == nil {
		ts = &targetSeries{}
		f.replay(target, ts, live)
		f.mu.Lock()
		f.series[target] = ts
		f.mu.Unlock()
	}
	var newest time.Time
	for _, cp := range round {
		if !detectTypes[cp.Type] {
			continue
		}
		p, err := cp.Profile()
		if err != nil {
			f.m.failures.WithLabelValues(target, "parse").Inc()
			continue
		}
		pr := live
		if cp.Type == profiles.TypeHeap {
			hp := heapProcess(p)
			pr.buildID, pr.allocs = hp.buildID, hp.allocs
		}
		at := cp.Time
		if at.IsZero() {
			at = f.now()
		}
		f.feed(target, ts, cp.Type, at, p, cp.ID, pr, false)
		ts.service = cp.Service
		newest = at
	}
	if !newest.IsZero() {
		f.judge(target, ts, newest)
	}
}

// replay rebuilds a target's state from the store's history of the
// window: profiles taken before the live process started belong to an
// earlier one and are skipped; between stored profiles, restarts show in
// the heap profiles alone.
func (f *fleet) replay(target string, ts *targetSeries, live process) {
	hist := f.takeHistory(target)
	var lastLeak *profiles.Meta
	for i := range hist {
		m := hist[i]
		if live.start != 0 && m.Time.Before(time.Unix(0, int64(live.start*1e9))) {
			continue
		}
		if m.Type == profiles.TypeGoroutineLeak {
			lastLeak = &hist[i]
			continue
		}
		c, err := f.store.Load(m.ID, f.limits)
		if err != nil {
			continue // pruned under us
		}
		p, err := c.Profile()
		if err != nil {
			f.m.failures.WithLabelValues(target, "parse").Inc()
			continue
		}
		pr := process{module: live.module}
		if m.Type == profiles.TypeHeap {
			pr = heapProcess(p)
			pr.module = live.module
		}
		f.feed(target, ts, m.Type, m.Time, p, m.ID, pr, false)
		ts.loaded = true
	}
	if lastLeak != nil && ts.det != nil {
		if c, err := f.store.Load(lastLeak.ID, f.limits); err == nil {
			if p, err := c.Profile(); err == nil {
				ts.det.AddGoroutineLeaks(p, lastLeak.ID)
			}
		}
	}
}

// feed adds one profile to the series, starting a new series first when
// the profile comes from another process than the series' (a restart, a
// crash loop, another binary behind the address).
//
// deltaAllocs says that p is a pushed heap profile whose allocations are
// those since the previous push (godeltaprof's), to be summed up into the
// cumulative ones the detector judges retention by.
func (f *fleet) feed(target string, ts *targetSeries, typ string, at time.Time, p *profile.Profile, id string, pr process, deltaAllocs bool) {
	if ts.det != nil {
		if why := restartReason(ts.proc, pr); why != "" {
			f.m.restarts.WithLabelValues(target, why).Inc()
			f.log.Info("target restarted: starting a new series", "target", target, "evidence", why)
			ts.det = nil
			ts.proc = process{} // what the old process said is no evidence about this one
		}
	}
	if ts.det == nil {
		// The target's own code: its go_build_info, else what its first
		// profile says (as watch reads it), else the default rule.
		ts.own = watch.OwnCode{}
		if pr.module != "" {
			ts.own = watch.OwnCodeFor(pr.module)
			ts.own.Source = profiles.OwnFromBuildInfo
		} else if o, ok := profiles.InferOwnCode(p); ok {
			ts.own = o
		}
		ts.det = watch.DetectorOptions{Own: ts.own, MinHeapGrowth: f.opts.MinHeapGrowth, MinGoroutineGrowth: f.opts.MinGoroutineGrowth}.NewDetector(at)
		ts.start = at
		ts.stamps = map[string][]stamp{}
		ts.firstSeen = map[suspectKey]time.Time{}
		ts.allocs = nil
	}
	ts.proc = ts.proc.merge(pr)
	switch typ {
	case profiles.TypeHeap:
		if deltaAllocs {
			if ts.allocs == nil {
				ts.allocs = newAllocTotals()
			}
			p = ts.allocs.cumulate(p)
		}
		ts.det.AddHeap(at, p, id)
	case profiles.TypeGoroutine:
		ts.det.AddGoroutines(at, p, id)
	case profiles.TypeGoroutineLeak:
		ts.det.AddGoroutineLeaks(p, id)
		return
	}
	ts.stamps[typ] = append(ts.stamps[typ], stamp{at: at, id: id})
}

// judge slides the window to end at now, judges the series and
// publishes the verdict.
func (f *fleet) judge(target string, ts *targetSeries, now time.Time) {
	began := time.Now()
	cut := now.Add(-f.opts.Window)
	ts.det.DropBefore(cut)
	for typ, st := range ts.stamps {
		i := sort.Search(len(st), func(i int) bool { return !st[i].at.Before(cut) })
		ts.stamps[typ] = st[i:]
	}
	if now.Sub(ts.start) < time.Duration(minSpanShare*float64(f.opts.Window)) {
		f.publish(target, nil) // a new series: nothing to say yet
		return
	}
	found := ts.det.Suspects()
	f.m.judgeTime.Observe(time.Since(began).Seconds())

	judged := f.now().UTC()
	seen := map[suspectKey]bool{}
	var out []Suspect
	for _, s := range found {
		k := suspectKey{s.Kind, s.Function}
		if seen[k] {
			continue // another wait state of the same function: one series
		}
		seen[k] = true
		if len(out) == f.opts.MaxSuspectsPerTarget {
			break
		}
		first, ok := ts.firstSeen[k]
		if !ok {
			first = judged
		}
		typ := profiles.TypeHeap
		if s.Kind == watch.KindGoroutine {
			typ = profiles.TypeGoroutine
		}
		out = append(out, Suspect{
			Target: target, Service: ts.service, Kind: s.Kind, Function: s.Function, Confidence: s.Confidence,
			GrowthPerMinute: s.GrowthPerMinute, Unit: s.Unit, FirstSeen: first, LastJudged: judged,
			Evidence: s.Evidence, Stack: s.Stack, Points: timed(ts.start, s.Points),
		})
		if st := ts.stamps[typ]; len(st) > 1 {
			out[len(out)-1].BaseID, out[len(out)-1].CurrentID = st[0].id, st[len(st)-1].id
		}
	}
	for k := range ts.firstSeen {
		if !seen[k] {
			delete(ts.firstSeen, k) // no longer a suspect: seen afresh if it comes back
		}
	}
	for _, s := range out {
		ts.firstSeen[suspectKey{s.Kind, s.Function}] = s.FirstSeen
	}
	f.publish(target, out)
}

func timed(start time.Time, pts []watch.Point) []TimedPoint {
	out := make([]TimedPoint, len(pts))
	for i, p := range pts {
		out[i] = TimedPoint{Time: start.Add(time.Duration(p.T * float64(time.Second))).UTC(), Value: p.V}
	}
	return out
}

// publish replaces target's suspects on /suspects and /metrics; series of
// sites no longer suspect disappear, the others are only updated, so a
// scrape never misses a suspect that stays one.
func (f *fleet) publish(target string, out []Suspect) {
	f.mu.Lock()
	defer f.mu.Unlock()
	want := map[[3]string]bool{}
	for _, s := range out {
		want[[3]string{s.Kind, s.Function, s.Confidence}] = true
	}
	for _, old := range f.published[target] {
		if !want[[3]string{old.Kind, old.Function, old.Confidence}] {
			f.m.suspect.DeleteLabelValues(target, old.Kind, old.Function, old.Confidence)
		}
		gone := true
		for _, s := range out {
			gone = gone && !(s.Kind == old.Kind && s.Function == old.Function && s.Unit == old.Unit)
		}
		if gone {
			f.m.growth.DeleteLabelValues(target, old.Kind, old.Function, old.Unit)
		}
	}
	for _, s := range out {
		f.m.suspect.WithLabelValues(target, s.Kind, s.Function, s.Confidence).Set(1)
		f.m.growth.WithLabelValues(target, s.Kind, s.Function, s.Unit).Set(s.GrowthPerMinute)
	}
	if len(out) == 0 {
		delete(f.published, target)
	} else {
		f.published[target] = out
	}
}

// forget drops a target that left discovery.
func (f *fleet) forget(target string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgetLocked(target)
}

func (f *fleet) forgetLocked(target string) {
	delete(f.series, target)
	delete(f.published, target)
	l := prometheus.Labels{"target": target}
	f.m.suspect.DeletePartialMatch(l)
	f.m.growth.DeletePartialMatch(l)
	f.m.restarts.DeletePartialMatch(l)
	f.m.failures.DeletePartialMatch(l)
}

// Suspects returns every target's current suspects, by target, then as
// the detector ranks them.
func (f *fleet) suspects() []Suspect {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []Suspect{}
	targets := make([]string, 0, len(f.published))
	for t := range f.published {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	for _, t := range targets {
		out = append(out, f.published[t]...)
	}
	return out
}

// Suspects returns the leak suspects across the fleet as last judged; an
// empty slice when detection is off or nothing is suspect.
func (c *Collector) Suspects() []Suspect {
	if c.fleet == nil {
		return []Suspect{}
	}
	return c.fleet.suspects()
}

type detectMetrics struct {
	suspect   *prometheus.GaugeVec   // target, kind, function, confidence
	growth    *prometheus.GaugeVec   // target, kind, function, unit
	judgeTime prometheus.Histogram   // all targets
	restarts  *prometheus.CounterVec // target, reason
	failures  *prometheus.CounterVec // target, reason
}

func newDetectMetrics(reg prometheus.Registerer) *detectMetrics {
	m := &detectMetrics{
		suspect: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "leaklab_leak_suspect", Help: "1 while a site of the target is a leak suspect; the series disappears when it no longer is.",
		}, []string{"target", "kind", "function", "confidence"}),
		growth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "leaklab_leak_growth_per_minute", Help: "A leak suspect's growth over the detection window (Theil-Sen slope), in unit per minute.",
		}, []string{"target", "kind", "function", "unit"}),
		judgeTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "leaklab_leak_detection_seconds", Help: "Time to judge one target's window after a capture round.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9),
		}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leaklab_leak_series_restarts_total", Help: "Detection series started afresh because the target is another process than before, by evidence (process_start, binary, counter_reset; for pushing targets session, upload_gap).",
		}, []string{"target", "reason"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leaklab_leak_detection_failures_total", Help: "Captured profiles detection could not read, by reason.",
		}, []string{"target", "reason"}),
	}
	reg.MustRegister(m.suspect, m.growth, m.judgeTime, m.restarts, m.failures)
	return m
}

func (d Detection) check() error {
	if d.Window < 0 || d.MaxSuspectsPerTarget < 0 {
		return fmt.Errorf("the detection window and the suspects per target must not be negative")
	}
	return nil
}
