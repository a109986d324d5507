package collect

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leaklab/leaklab/profiles"
)

// Labels a pushed profile is stored with, besides the pusher's own, so
// that detection can tell its processes apart, then and after a restart
// of the collector. Prometheus's convention: a name that starts with two
// underscores is not one of the series' labels.
const (
	// labelSession is pyroscope-go's profiling session ID, kept as sent.
	labelSession = "__session_id__"
	// labelPushFrom is the start of the period the push covers (its
	// until is the profile's time), RFC 3339 with nanoseconds.
	labelPushFrom = "__from__"
	// labelDeltaAllocs is "true" on a heap profile whose alloc_space and
	// alloc_objects count what was allocated since the pusher's previous
	// push (godeltaprof's), not since the process started.
	labelDeltaAllocs = "__delta_allocs__"
)

// pushLabels returns the detection labels of one push.
func pushLabels(typ string, session string, from time.Time, types map[string]sampleType) map[string]string {
	l := map[string]string{}
	if session != "" {
		l[labelSession] = session
	}
	if !from.IsZero() {
		l[labelPushFrom] = from.UTC().Format(time.RFC3339Nano)
	}
	// pyroscope-go says alloc_space is not cumulative: its values are
	// per push. Without a config the profile is the runtime's own, whose
	// allocations count from the process's start.
	if st, ok := types["alloc_space"]; ok && typ == profiles.TypeHeap && !st.Cumulative {
		l[labelDeltaAllocs] = "true"
	}
	return l
}

// pushProcess reads what a stored pushed profile says of its process,
// and whether its allocations are deltas.
func pushProcess(m profiles.Meta) (process, bool) {
	pr := process{session: m.Labels[labelSession], until: m.Time}
	if v := m.Labels[labelPushFrom]; v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			pr.from = t
		}
	}
	return pr, m.Type == profiles.TypeHeap && m.Labels[labelDeltaAllocs] == "true"
}

// pushSeries names the target a pushed profile is judged under: its
// stored target, push://APP, with the pusher's labels, as
// push://APP{k=v,...} (sorted). The labels are what tells one pushing
// instance from another under one application name (the sample
// services' leaky and fixed twins differ by their variant). Not part of
// it: the labels of one process or one push (__session_id__ and the
// like), those the collector adds (app, collected), and those
// pyroscope-go adds of its own (otel.scope.name differs between its heap
// pushes and its goroutine pushes; process.runtime.version between two
// builds of one service).
func pushSeries(m profiles.Meta) string {
	var kv []string
	for k, v := range m.Labels {
		if strings.HasPrefix(k, "__") || k == "app" || k == LabelCollected ||
			strings.HasPrefix(k, "otel.") || strings.HasPrefix(k, "process.") {
			continue
		}
		kv = append(kv, k+"="+v)
	}
	if len(kv) == 0 {
		return m.Target
	}
	sort.Strings(kv)
	return m.Target + "{" + strings.Join(kv, ",") + "}"
}

// maxPushTargets bounds the pushing targets judged at once (pushes of
// another label set are stored but not judged, and counted as detection
// failures "too_many_push_targets"): pulled targets are as many as
// discovery lists, but pushers name themselves, and a pusher that sent
// new labels with every push would otherwise grow the collector's memory
// by a detector each time. A target silent for a window frees its place.
const maxPushTargets = 2000

// observePush feeds one pushed profile, as stored, to its target's
// detector (the target is pushSeries's) and judges the target again: a pushing service is judged as a pulled one is, by
// the same code, once per push instead of once per round.
func (f *fleet) observePush(cp *profiles.Captured) {
	if !detectTypes[cp.Type] {
		return
	}
	target := pushSeries(cp.Meta)
	// Never wait for ts.mu holding f.mu: judging, under ts.mu, publishes
	// under f.mu.
	f.mu.Lock()
	f.sweepPushers()
	ts := f.series[target]
	fresh := ts == nil
	if fresh && len(f.pushed) >= maxPushTargets {
		f.mu.Unlock()
		// Counted under the application, not the label set: a pusher that
		// sends new labels with every push must not grow /metrics either.
		f.m.failures.WithLabelValues(cp.Target, "too_many_push_targets").Inc()
		return
	}
	f.pushed[target] = f.now()
	if fresh {
		ts = &targetSeries{}
		ts.mu.Lock() // nobody else can hold it yet
		f.series[target] = ts
	}
	f.mu.Unlock()
	if !fresh {
		ts.mu.Lock()
	}
	defer ts.mu.Unlock()
	if fresh {
		f.replayPushes(target, ts)
	}
	f.feedPush(target, ts, cp.Meta, cp)
	if ts.det != nil {
		f.judge(target, ts, cp.Time)
	}
}

// sweepPushers forgets, with f.mu held, the pushing targets that have
// not pushed for a window: a service that stopped pushing (scaled down,
// renamed, decommissioned) leaves /suspects and /metrics, and its alert
// resolves, instead of staying a suspect for ever. It looks at most four
// times a window, when a push arrives: a silent target goes within a
// window and a quarter of its last push.
func (f *fleet) sweepPushers() {
	now := f.now()
	if now.Sub(f.lastSweep) < f.opts.Window/4 {
		return
	}
	f.lastSweep = now
	for target, last := range f.pushed {
		if now.Sub(last) > f.opts.Window {
			delete(f.pushed, target)
			f.forgetLocked(target)
			f.log.Info("pushing target silent for a window: forgotten", "target", target, "last_push", last)
		}
	}
}

// replayPushes rebuilds a pushing target's state from the store's
// history of the window, as replay does for a pulled one; the pushes'
// own labels tell its processes apart.
func (f *fleet) replayPushes(target string, ts *targetSeries) {
	for _, m := range f.takeHistory(target) {
		c, err := f.store.Load(m.ID, f.limits)
		if err != nil {
			continue // pruned under us
		}
		f.feedPush(target, ts, m, c)
		ts.loaded = true
	}
}

// feedPush adds one pushed profile to the target's series. A profile of
// an earlier period than the series' newest, or older than the series'
// newest of its type (pushes can cross on the way), is counted and left
// out: a series only moves forward.
func (f *fleet) feedPush(target string, ts *targetSeries, m profiles.Meta, c *profiles.Captured) {
	p, err := c.Profile()
	if err != nil {
		f.m.failures.WithLabelValues(target, "parse").Inc()
		return
	}
	pr, delta := pushProcess(m)
	if m.Type == profiles.TypeHeap {
		hp := heapProcess(p)
		pr.buildID = hp.buildID
		if !delta {
			pr.allocs = hp.allocs // a count since the start: a fall is a new process
		}
	}
	// pyroscope-go uploads with several connections: a push of one period
	// can arrive after one of the next, which is no new process.
	late := ts.det != nil && !pr.until.IsZero() && pr.until.Before(ts.proc.until)
	if st := ts.stamps[m.Type]; ts.det != nil && len(st) > 0 && !m.Time.After(st[len(st)-1].at) && restartReason(ts.proc, pr) == "" {
		late = true
	}
	if late {
		f.m.failures.WithLabelValues(target, "out_of_order").Inc()
		return
	}
	f.feed(target, ts, m.Type, m.Time, p, m.ID, pr, delta)
	ts.service = m.Service
}

// allocTotals sums a pushing process's delta heap profiles into
// cumulative ones: per stack (and object size), what it allocated since
// its first push. The detector judges a heap site by how much of what it
// allocated it kept, which needs the totals, and godeltaprof sends only
// what was allocated since its previous push. Like the runtime's own heap
// profile, it keeps every stack the process ever allocated at.
type allocTotals struct {
	byStack map[string]*allocTotal
	push    int
}

type allocTotal struct {
	objects, bytes int64
	sample         *profile.Sample // the stack's last sample, to list it when a push leaves it out
	push           int             // the last push that had the stack
}

func newAllocTotals() *allocTotals { return &allocTotals{byStack: map[string]*allocTotal{}} }

// cumulate rewrites p's alloc_objects and alloc_space into totals since
// the process's first push, in place, and lists the stacks p leaves out
// (nothing allocated since the last push, nothing in use) with their
// totals, so that a site's or a function's total never falls. The samples
// added point at locations of earlier profiles: p is for the detector,
// which reads function names, not for writing out.
func (a *allocTotals) cumulate(p *profile.Profile) *profile.Profile {
	objs, space := profiles.SampleTypeIndex(p, "alloc_objects"), profiles.SampleTypeIndex(p, "alloc_space")
	if objs < 0 || space < 0 {
		return p
	}
	a.push++
	for _, s := range p.Sample {
		k := stackKey(s)
		t := a.byStack[k]
		if t == nil {
			t = &allocTotal{}
			a.byStack[k] = t
		}
		t.objects += s.Value[objs]
		t.bytes += s.Value[space]
		s.Value[objs], s.Value[space] = t.objects, t.bytes
		t.sample, t.push = s, a.push
	}
	for _, t := range a.byStack {
		if t.push == a.push {
			continue
		}
		v := make([]int64, len(p.SampleType)) // in use: nothing, or the push would have listed it
		v[objs], v[space] = t.objects, t.bytes
		p.Sample = append(p.Sample, &profile.Sample{Location: t.sample.Location, Value: v, NumLabel: t.sample.NumLabel})
	}
	return p
}

// stackKey names a sample's stack and object size: by addresses, which
// one process keeps, else by functions and lines.
func stackKey(s *profile.Sample) string {
	var b strings.Builder
	for _, loc := range s.Location {
		if loc.Address != 0 {
			b.WriteString(strconv.FormatUint(loc.Address, 16))
		} else {
			for _, l := range loc.Line {
				if l.Function != nil {
					b.WriteString(l.Function.Name)
				}
				b.WriteByte(':')
				b.WriteString(strconv.FormatInt(l.Line, 10))
				b.WriteByte(';')
			}
		}
		b.WriteByte('|')
	}
	for _, size := range s.NumLabel["bytes"] {
		b.WriteString(strconv.FormatInt(size, 10))
	}
	return b.String()
}
