package collect

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/profiles"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// update records the fleets in testdata/fleet anew, each from a live run
// of the long tier's fleet test (which then replays its recording and
// fails unless the replay passes too):
//
//	go test ./profiles/collect -run '^(TestDetectAcrossFleet|TestDetectPushed)$' -update -v
var update = flag.Bool("update", false, "record the fleets in testdata/fleet anew, from live fleet runs")

// A fleet recording is one live run of a fleet test (TestDetectAcrossFleet,
// TestDetectPushed), kept in testdata/fleet/NAME.tar.gz: the heap and
// goroutine profiles its collector stored (what detection reads), as the
// store keeps them, and recording.json, what the store does not say: the
// targets, when the test killed the restarted one, and, for pulled
// targets, what each target's /metrics said of its process (probe).
//
// TestFleetReplay and TestPushedFleetReplay unpack it into a store and
// feed the stored profiles to the collector's own detection
// (fleet.observe, fleet.observePush) in the order they were taken, on a
// clock that is the time each was taken, and judge the verdicts as the
// live test does (fleetVerdicts): the detector's verdicts on a real
// fleet, in a second instead of a minute of waiting.
type fleetRecording struct {
	Window    time.Duration    `json:"window"`
	Targets   []recordedTarget `json:"targets"`
	Restarted string           `json:"restarted"` // its series
	KilledAt  time.Time        `json:"killed_at"`
	Probes    []probeSpan      `json:"probes,omitempty"`

	mu sync.Mutex
}

type recordedTarget struct {
	Series  string `json:"series"` // its name on the collector
	Service string `json:"service"`
	Fixed   bool   `json:"fixed,omitempty"`
}

// probeSpan is what the probes of one target said from From to Until (a
// run of identical answers).
type probeSpan struct {
	Target string    `json:"target"`
	From   time.Time `json:"from"`
	Until  time.Time `json:"until"`
	Start  float64   `json:"start,omitempty"`
	Module string    `json:"module,omitempty"`
}

func fleetArchive(name string) string { return filepath.Join("testdata", "fleet", name+".tar.gz") }

// recordProbes makes c's detection note what every probe answered.
func (rec *fleetRecording) recordProbes(c *Collector) {
	probe := c.fleet.probeTarget
	c.fleet.probeTarget = func(ctx context.Context, target string, timeout time.Duration) process {
		at := time.Now().UTC()
		pr := probe(ctx, target, timeout)
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for i := len(rec.Probes) - 1; i >= 0; i-- {
			if s := &rec.Probes[i]; s.Target == target {
				if s.Start == pr.start && s.Module == pr.module {
					s.Until = at
					return pr
				}
				break
			}
		}
		rec.Probes = append(rec.Probes, probeSpan{Target: target, From: at, Until: at, Start: pr.start, Module: pr.module})
		return pr
	}
}

// probed is what the probe after a round that ended at at answered: the
// first probe of target at or after at.
func (rec *fleetRecording) probed(target string, at time.Time) process {
	var best *probeSpan
	for i := range rec.Probes {
		s := &rec.Probes[i]
		if s.Target == target && !s.Until.Before(at) && (best == nil || s.From.Before(best.From)) {
			best = s
		}
	}
	if best == nil {
		return process{}
	}
	return process{start: best.Start, module: best.Module}
}

// save writes the recording and the detection types' profiles of store
// (opened on from) to testdata/fleet/name.tar.gz, replacing it. The
// profiles are archived uncompressed, each target's of one type after
// one another, and the archive compressed once: a target's successive
// profiles differ little, and compressed together they take a fifth of
// what the store's files do.
func (rec *fleetRecording) save(t *testing.T, name, from string, store *profiles.Store) {
	t.Helper()
	metas, err := store.List(profiles.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var keep []profiles.Meta
	for _, m := range metas {
		if detectTypes[m.Type] {
			keep = append(keep, m)
		}
	}
	sort.SliceStable(keep, func(i, j int) bool {
		a, b := keep[i], keep[j]
		if a.Target != b.Target {
			return a.Target < b.Target
		}
		if a.Labels["variant"] != b.Labels["variant"] {
			return a.Labels["variant"] < b.Labels["variant"]
		}
		return a.Type < b.Type
	})
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	add := func(name string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	rec.mu.Lock()
	data, err := json.MarshalIndent(rec, "", "  ")
	rec.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	add("recording.json", append(data, '\n'))
	for _, m := range keep {
		meta, err := os.ReadFile(filepath.Join(from, "profiles", m.ID+".json"))
		if err != nil {
			t.Fatal(err)
		}
		add("profiles/"+m.ID+".json", meta)
		gz, err := os.ReadFile(filepath.Join(from, "profiles", m.ID+".pb.gz"))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		add("profiles/"+m.ID+".pb", raw)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join("testdata", "fleet"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fleetArchive(name), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %d profiles in %s (%d bytes)", len(keep), fleetArchive(name), buf.Len())
}

// openRecording unpacks testdata/fleet/name.tar.gz into a profile store
// of its own and returns the recording, the store, its targets (url is
// the series) and the restarted one.
func openRecording(t *testing.T, name string) (*fleetRecording, *profiles.Store, []*fleetTarget, *fleetTarget) {
	t.Helper()
	f, err := os.Open(fleetArchive(name))
	if err != nil {
		t.Fatalf("%v (record it with: go test ./profiles/collect -run '^(TestDetectAcrossFleet|TestDetectPushed)$' -update)", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "profiles"), 0o755); err != nil {
		t.Fatal(err)
	}
	rec := &fleetRecording{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case h.Name == "recording.json":
			if err := json.Unmarshal(data, rec); err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(h.Name, "profiles/") && strings.HasSuffix(h.Name, ".json") && !strings.ContainsAny(strings.TrimPrefix(h.Name, "profiles/"), `/\`):
			writeFile(t, filepath.Join(dir, h.Name), data)
		case strings.HasPrefix(h.Name, "profiles/") && strings.HasSuffix(h.Name, ".pb") && !strings.ContainsAny(strings.TrimPrefix(h.Name, "profiles/"), `/\`):
			var gz bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
			zw.Write(data)
			zw.Close()
			writeFile(t, filepath.Join(dir, h.Name+".gz"), gz.Bytes())
		default:
			t.Fatalf("%s: unexpected %s", fleetArchive(name), h.Name)
		}
	}
	st, err := profiles.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var targets []*fleetTarget
	var restarted *fleetTarget
	for _, rt := range rec.Targets {
		svc, err := leaks.Lookup(rt.Service)
		if err != nil {
			t.Fatal(err)
		}
		ft := &fleetTarget{svc: svc, fixed: rt.Fixed, url: rt.Series}
		targets = append(targets, ft)
		if rt.Series == rec.Restarted {
			restarted = ft
		}
	}
	if restarted == nil || restarted.fixed || rec.KilledAt.IsZero() || rec.Window <= 0 {
		t.Fatalf("%s: the recording names no leaky restarted target, kill time or window", fleetArchive(name))
	}
	return rec, st, targets, restarted
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// replayFleet judges the recorded fleet name: feed is called with every
// stored profile in time order and returns the time the collector
// judged at (when it did); the verdicts are checked after each.
func replayFleet(t *testing.T, name string, v *fleetVerdicts, rec *fleetRecording, st *profiles.Store, f *fleet, feed func(m profiles.Meta, c *profiles.Captured) (time.Time, bool)) {
	t.Helper()
	metas, err := st.List(profiles.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	judged := 0
	for _, m := range metas {
		c, err := st.Load(m.ID, profiles.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		at, ok := feed(m, c)
		if !ok {
			continue
		}
		judged++
		if v.restartedAt.IsZero() && at.After(rec.KilledAt) {
			if !v.found[v.restarted] {
				t.Fatalf("%s: its culprit was not found before the recorded restart at %s: %s", v.restarted.name(), rec.KilledAt, describe(suspectsOf(f.suspects(), v.series(v.restarted))))
			}
			v.restartedNow(t, rec.KilledAt)
		}
		v.check(t, at, f.suspects())
	}
	if !v.done() {
		t.Fatalf("after %d replayed profiles (%d judgements), %s without their culprit as suspect: %v (restart seen: %t)", len(metas), judged, v.what, v.missing(f.suspects()), !v.restartSeen.IsZero())
	}
	// Only restarted restarted.
	for _, ft := range v.targets {
		for _, why := range []string{"process_start", "binary", "counter_reset", "session", "upload_gap"} {
			if n := testutil.ToFloat64(f.m.restarts.WithLabelValues(v.series(ft), why)); n > 0 && ft != v.restarted {
				t.Errorf("%s never restarted, but %v restarts were counted (%s)", ft.name(), n, why)
			}
		}
	}
	// Every suspect is on /metrics, and names stored profiles to diff.
	for _, s := range f.suspects() {
		if got := testutil.ToFloat64(f.m.suspect.WithLabelValues(s.Target, s.Kind, s.Function, s.Confidence)); got != 1 {
			t.Errorf("suspect %s of %s: leaklab_leak_suspect is %v", s.Function, s.Target, got)
		}
		for _, id := range []string{s.BaseID, s.CurrentID} {
			if _, err := st.Resolve(id); id == "" || err != nil {
				t.Errorf("suspect %s of %s names %q, not a stored profile: %v", s.Function, s.Target, id, err)
			}
		}
	}
	t.Logf("%s: %d profiles replayed over %s, %d judgements, %d suspects at the end; the longest a fixed twin was a suspect: %s",
		name, len(metas), metas[len(metas)-1].Time.Sub(metas[0].Time).Round(time.Second), judged, len(f.suspects()), v.longest.Round(time.Second))
}

// replayFleetOf is a collector's detection, without a collector, for
// the recording rec: its clock is the returned time, set by the replay.
func replayFleetOf(t *testing.T, rec *fleetRecording) (*fleet, *time.Time) {
	f := newFleet(Detection{Window: rec.Window}, nil, profiles.Limits{}, nil, slog.New(slog.DiscardHandler), prometheus.NewPedanticRegistry())
	clock := new(time.Time)
	f.now = func() time.Time { return *clock }
	f.probeTarget = func(context.Context, string, time.Duration) process {
		t.Fatal("a replayed fleet probed a target")
		return process{}
	}
	return f, clock
}

// replayPulled judges the recorded pulled fleet name: each target's
// capture rounds (a heap profile, then a goroutine profile) go through
// fleet.observe at the time the round ended, with what the target's
// probe answered after it.
func replayPulled(t *testing.T, name string) {
	t.Helper()
	rec, st, targets, restarted := openRecording(t, name)
	f, clock := replayFleetOf(t, rec)
	f.probeTarget = func(_ context.Context, target string, _ time.Duration) process { return rec.probed(target, *clock) }
	byStored := map[string]string{}
	for _, ft := range targets {
		byStored[profiles.StoredTarget(ft.url)] = ft.url
	}
	v := &fleetVerdicts{
		targets: targets, restarted: restarted, what: "leaky targets (replayed)",
		series: func(ft *fleetTarget) string { return ft.url },
		restarts: func() float64 {
			return testutil.ToFloat64(f.m.restarts.WithLabelValues(restarted.url, "process_start"))
		},
	}
	// A round is a target's heap profile and the goroutine profile after
	// it; it is judged when its last profile is listed.
	metas, err := st.List(profiles.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]string{} // a round's last profile ID → its target
	open := map[string]string{} // a target's round so far: its last profile ID
	for _, m := range metas {
		target, ok := byStored[m.Target]
		if !ok {
			t.Fatalf("stored profile %s of %s, not a recorded target", m.ID, m.Target)
		}
		if m.Type == profiles.TypeHeap {
			if id := open[target]; id != "" {
				last[id] = target // a round without its goroutine profile
			}
		}
		open[target] = m.ID
		if m.Type == profiles.TypeGoroutine {
			last[m.ID] = target
			delete(open, target)
		}
	}
	for id, target := range open {
		last[id] = target
	}
	rounds := map[string][]*profiles.Captured{}
	replayFleet(t, name, v, rec, st, f, func(m profiles.Meta, c *profiles.Captured) (time.Time, bool) {
		target := byStored[m.Target]
		rounds[target] = append(rounds[target], c)
		if last[m.ID] == "" {
			return time.Time{}, false
		}
		round := rounds[target]
		delete(rounds, target)
		*clock = m.Time
		f.observe(context.Background(), target, round, time.Second)
		return m.Time, true
	})
}

// replayPushed judges the recorded pushing fleet name: every push goes
// through fleet.observePush, at the time it was stored.
func replayPushed(t *testing.T, name string) {
	t.Helper()
	rec, st, targets, restarted := openRecording(t, name)
	f, clock := replayFleetOf(t, rec)
	v := &fleetVerdicts{
		targets: targets, restarted: restarted, what: "leaky pushing targets (replayed)",
		series: func(ft *fleetTarget) string { return ft.url },
		restarts: func() float64 {
			n := 0.0
			for _, why := range []string{"session", "upload_gap", "counter_reset", "binary"} {
				n += testutil.ToFloat64(f.m.restarts.WithLabelValues(restarted.url, why))
			}
			return n
		},
	}
	replayFleet(t, name, v, rec, st, f, func(m profiles.Meta, c *profiles.Captured) (time.Time, bool) {
		*clock = m.Time
		f.observePush(c)
		return m.Time, true
	})
}

// TestFleetReplay judges a recorded run of TestDetectAcrossFleet (six
// catalog services, leaky and fixed, pulled every 2 s under load, the
// leaky unbounded-cache killed and restarted once its leak was found) as
// the live test does: every leaky target's culprit found, no fixed twin
// a suspect for a whole window, the restart counted and the culprit found
// again with points of the new process only.
func TestFleetReplay(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("replays a minute of a fleet's profiles through detection (seconds, over a minute under -race); skipped with -short")
	}
	replayPulled(t, "pulled")
}

// TestPushedFleetReplay judges a recorded run of TestDetectPushed (two
// catalog services, leaky and fixed, pushing with pyroscope-go every 2 s
// under load, the leaky one killed and restarted) as the live test does.
func TestPushedFleetReplay(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("replays a minute of a fleet's profiles through detection (seconds, over a minute under -race); skipped with -short")
	}
	replayPushed(t, "pushed")
}
