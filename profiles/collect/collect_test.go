package collect

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/profiles"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"go.uber.org/goleak"
)

// startService runs a real sample service in this process on a free
// loopback port.
func startService(t *testing.T, name string, fixed bool, opts leaks.Options) *leaks.Server {
	t.Helper()
	svc, err := leaks.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	opts.Addr, opts.Fixed = "127.0.0.1:0", fixed
	srv, err := leaks.Start(context.Background(), svc, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv
}

// running is a collector started in the background by startCollector.
type running struct {
	c      *Collector
	store  *profiles.Store
	url    string // push API and /metrics, when listening
	cancel context.CancelFunc
	done   chan struct{}
	sum    Summary
	err    error
}

// stop ends the run and returns its summary.
func (r *running) stop(t *testing.T) Summary {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the collector did not stop within 30s")
	}
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	return r.sum
}

func startCollector(t *testing.T, opts Options, listen bool) *running {
	t.Helper()
	return startCollectorWith(t, opts, listen, nil)
}

// startCollectorWith is startCollector, calling prepare (when not nil)
// with the collector before it runs.
func startCollectorWith(t *testing.T, opts Options, listen bool, prepare func(*Collector)) *running {
	t.Helper()
	r := &running{done: make(chan struct{})}
	if opts.Store == nil && opts.Forward == "" {
		st, err := profiles.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		opts.Store = st
	}
	r.store = opts.Store
	if listen {
		ln, err := Listen("127.0.0.1:0", false)
		if err != nil {
			t.Fatal(err)
		}
		opts.Listener = ln
		r.url = "http://" + ln.Addr().String()
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	r.c = c
	if prepare != nil {
		prepare(c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		r.sum, r.err = c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

func list(t *testing.T, st *profiles.Store, f profiles.Filter) []profiles.Meta {
	t.Helper()
	ms, err := st.List(f)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestPullStoresHistoryFromRealServices(t *testing.T) {
	// Not parallel: rounds every 300 ms and no failure allowed; the
	// parallel tests, the fleet's load above all, would make captures
	// slow.
	leaky := startService(t, "abandoned-worker", false, leaks.Options{})
	fixed := startService(t, "abandoned-worker", true, leaks.Options{})
	targets := StaticTargets{
		{URL: leaky.URL(), Labels: map[string]string{"job": "demo", "env": "test"}},
		{URL: fixed.URL(), Labels: map[string]string{"job": "demo"}},
	}
	// A capture's timeout defaults to the round (300 ms here); a forced
	// GC under -race on a busy machine took longer now and then (one
	// failed capture in ten, 2026-12-03), and this test is about what is
	// stored, not about timeouts (TestFailureReason is).
	r := startCollector(t, Options{Discover: targets, Every: 300 * time.Millisecond, Timeout: 10 * time.Second}, true)

	// Three rounds from each target: history, not a snapshot.
	testbin.WaitFor(t, 30*time.Second, "three rounds of heap and goroutine from both targets", func() bool {
		for _, tg := range targets {
			for _, typ := range DefaultTypes {
				if len(list(t, r.store, profiles.Filter{Target: tg.URL, Type: typ})) < 3 {
					return false
				}
			}
		}
		return true
	})
	metricsText := get(t, r.url+"/metrics")
	sum := r.stop(t)

	for _, tg := range targets {
		ms := list(t, r.store, profiles.Filter{Target: tg.URL})
		for _, m := range ms {
			if m.Service != "abandoned-worker" || m.Labels["job"] != "demo" || m.Labels[LabelCollected] != "pull" || m.Samples == 0 || m.Bytes == 0 {
				t.Errorf("stored %+v: want service abandoned-worker, job=demo, collected=pull, samples and bytes", m)
			}
		}
		// What was stored loads back as a profile, by ID, as diff does.
		c, err := r.store.Load(ms[len(ms)-1].ID, profiles.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Profile(); err != nil {
			t.Errorf("stored profile does not parse: %v", err)
		}
	}
	// Every capture carries the variant, not only the first (later ones
	// reuse what the first learned).
	for _, m := range list(t, r.store, profiles.Filter{Target: leaky.URL()}) {
		if m.Labels["variant"] != "leaky" {
			t.Errorf("%s: variant label %q, want leaky", m.ID, m.Labels["variant"])
		}
	}
	if sum.Captures < 12 || sum.Failures != 0 || len(sum.Targets) != 2 {
		t.Errorf("summary %+v: want >= 12 captures, no failures, 2 targets", sum)
	}

	for _, want := range []string{
		`leaklab_collect_captures_total{target="` + leaky.URL() + `",type="heap"}`,
		`leaklab_collect_lag_seconds{target="` + fixed.URL() + `"}`,
		`leaklab_collect_bytes_total{target="` + fixed.URL() + `",type="goroutine"}`,
		`leaklab_collect_target_up{target="` + leaky.URL() + `"} 1`,
		"process_resident_memory_bytes",
	} {
		if !strings.Contains(metricsText, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	problems, err := promlint.New(strings.NewReader(metricsText)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

func get(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// getSuspectsJSON asks the collector at base for GET /suspects as JSON,
// decodes the answer into v and returns its Content-Type and the decoding
// error.
func getSuspectsJSON(t *testing.T, base string, v any) (string, error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/suspects", nil)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.Header.Get("Content-Type"), json.NewDecoder(resp.Body).Decode(v)
}

// TestBadTargets runs one good target beside targets that hang, answer
// garbage (HTML, a gzip bomb), never existed, or die: the good one keeps being collected, the bad ones
// are counted by reason, backed off, and nothing of theirs is stored.
func TestBadTargets(t *testing.T) {
	t.Parallel()
	good := startService(t, "abandoned-worker", true, leaks.Options{})
	var hangs, garbage atomic.Int64
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hangs.Add(1)
		<-r.Context().Done()
	}))
	defer hang.Close()
	junk := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		garbage.Add(1)
		w.Write([]byte("<html><body>this is a login page</body></html>"))
	}))
	defer junk.Close()
	gone := "http://" + testbin.FreeAddr(t)

	bombData := testbin.GzipBomb(100 << 20)
	bomb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(bombData)
	}))
	defer bomb.Close()
	// dies answers until it has been captured once, then goes away.
	dies := startService(t, "abandoned-worker", true, leaks.Options{})
	targets := StaticTargets{{URL: good.URL()}, {URL: hang.URL}, {URL: junk.URL}, {URL: gone}, {URL: dies.URL()}, {URL: bomb.URL}}
	reg := prometheus.NewRegistry()
	r := startCollector(t, Options{
		// The timeout leaves room for reading the gzip bomb up to its
		// limit under the race detector on a loaded machine.
		Discover: targets, Every: 200 * time.Millisecond, Timeout: 2 * time.Second, Registry: reg,
	}, false)
	failures := func(target, typ, reason string) float64 {
		return testutil.ToFloat64(r.c.m.failures.WithLabelValues(target, typ, reason))
	}
	testbin.WaitFor(t, 30*time.Second, "a capture of the target about to die", func() bool {
		return len(list(t, r.store, profiles.Filter{Target: dies.URL()})) > 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	dies.Shutdown(ctx)
	cancel()
	testbin.WaitFor(t, 60*time.Second, "a failure of each kind and good captures", func() bool {
		return failures(hang.URL, "heap", "timeout") >= 1 &&
			failures(junk.URL, "heap", "not_profile") >= 1 &&
			failures(junk.URL, "goroutine", "not_profile") >= 1 &&
			failures(gone, "heap", "unreachable") >= 1 &&
			failures(dies.URL(), "heap", "unreachable") >= 1 &&
			failures(bomb.URL, "heap", "too_large") >= 1 &&
			len(list(t, r.store, profiles.Filter{Target: good.URL()})) >= 4
	})
	for _, bad := range []string{hang.URL, junk.URL, gone, dies.URL(), bomb.URL} {
		if got := testutil.ToFloat64(r.c.m.up.WithLabelValues(bad)); got != 0 {
			t.Errorf("target_up{%s} = %v, want 0", bad, got)
		}
	}
	// A timeout or refused connection skips the round's other types: the
	// goroutine profile would fail the same way.
	if n := failures(hang.URL, "goroutine", "timeout"); n != 0 {
		t.Errorf("after a heap timeout the goroutine profile was still tried (%v times)", n)
	}
	sum := r.stop(t)
	for _, m := range list(t, r.store, profiles.Filter{}) {
		if m.Target != good.URL() && m.Target != dies.URL() {
			t.Errorf("stored a profile from bad target %s", m.Target)
		}
	}
	for _, ts := range sum.Targets {
		if ts.Target != good.URL() && (ts.Failures == 0 || ts.LastError == "") {
			t.Errorf("summary of %s: %+v, want failures and the last error", ts.Target, ts)
		}
		if ts.Target == dies.URL() && !strings.Contains(ts.LastError, "connection refused") {
			t.Errorf("the target that died failed with %q, want the connection refused line", ts.LastError)
		}
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	t.Parallel()
	every, maxWait := 10*time.Second, time.Minute
	for _, tc := range []struct {
		fails    int
		low, top time.Duration
	}{
		{1, 8 * time.Second, 12 * time.Second},
		{2, 16 * time.Second, 24 * time.Second},
		{3, 32 * time.Second, 48 * time.Second},
		{10, 48 * time.Second, 72 * time.Second},
	} {
		for range 50 {
			if d := backoff(every, maxWait, tc.fails); d < tc.low || d > tc.top {
				t.Fatalf("backoff after %d failures = %s, want in [%s, %s]", tc.fails, d, tc.low, tc.top)
			}
		}
	}
}

// TestShutdown stops the collector with a capture in flight: a slow
// target's capture finishes within the grace period and is stored; a
// stuck target's is discarded at the end of it, leaving no file at all.
func TestShutdown(t *testing.T) {
	t.Parallel()
	good := startService(t, "abandoned-worker", true, leaks.Options{})
	for _, tc := range []struct {
		name      string
		delay     time.Duration // how long the target takes to answer
		grace     time.Duration
		wantSaved bool
	}{
		{"finishes within grace", 400 * time.Millisecond, 10 * time.Second, true},
		{"discarded after grace", time.Hour, 200 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			started := make(chan struct{}, 100)
			slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !strings.HasPrefix(r.URL.Path, "/debug/pprof/") {
					http.NotFound(w, r)
					return
				}
				started <- struct{}{}
				select {
				case <-time.After(tc.delay):
				case <-r.Context().Done():
					return
				}
				// Proxy the real service's profile, so that what arrives
				// late is a real profile.
				resp, err := http.Get(good.URL() + r.URL.RequestURI())
				if err != nil {
					return
				}
				defer resp.Body.Close()
				io.Copy(w, resp.Body)
			}))
			defer slow.Close()
			r := startCollector(t, Options{
				Discover: StaticTargets{{URL: slow.URL}}, Every: time.Second, Timeout: time.Hour,
				Grace: tc.grace, Types: []string{profiles.TypeHeap},
			}, false)
			// The first capture starts at a random point of the interval;
			// wait until it is in flight, then stop.
			select {
			case <-started:
			case <-time.After(30 * time.Second):
				t.Fatal("no capture started within 30s")
			}
			sum := r.stop(t)
			saved := list(t, r.store, profiles.Filter{})
			if tc.wantSaved && (len(saved) != 1 || sum.Captures != 1) {
				t.Errorf("want the in-flight capture stored, got %d stored, summary %+v", len(saved), sum)
			}
			if !tc.wantSaved {
				if files := testbin.DirNames(t, r.store.Dir()); len(files) != 0 || sum.Discarded != 1 {
					t.Errorf("want nothing in the store and one discarded capture, got files %v, summary %+v", files, sum)
				}
			}
		})
	}
}

func TestRetentionRemovesOnlyCollectedProfiles(t *testing.T) {
	t.Parallel()
	good := startService(t, "abandoned-worker", true, leaks.Options{})
	st, err := profiles.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// A profile captured by hand, long ago: retention must leave it.
	manual, err := profiles.Fetch(context.Background(), good.URL(), profiles.FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	manual.Time = time.Now().Add(-30 * 24 * time.Hour)
	if _, err := st.Save(manual); err != nil {
		t.Fatal(err)
	}
	// Collected profiles: one too old, and enough recent ones to go over
	// the size bound.
	save := func(age time.Duration) profiles.Meta {
		c, err := profiles.Fetch(context.Background(), good.URL(), profiles.FetchOptions{Labels: map[string]string{LabelCollected: "pull"}})
		if err != nil {
			t.Fatal(err)
		}
		c.Time = time.Now().Add(-age)
		m, err := st.Save(c)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	old := save(48 * time.Hour)
	var recent []profiles.Meta
	for i := range 5 {
		recent = append(recent, save(time.Duration(5-i)*time.Minute))
	}
	maxBytes := recent[2].Bytes + recent[3].Bytes + recent[4].Bytes + recent[4].Bytes/2

	reg := prometheus.NewRegistry()
	ret, err := newRetention(st, Retention{MaxAge: 24 * time.Hour, MaxBytes: maxBytes}, newMetrics(reg), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(list(t, st, profiles.Filter{})); n != 7 || ret.prunedCount() != 0 {
		t.Fatalf("preparing retention left %d of 7 profiles and pruned %d: it must remove nothing until run", n, ret.prunedCount())
	}
	ret.enforce(time.Now())
	var ids []string
	for _, m := range list(t, st, profiles.Filter{}) {
		ids = append(ids, m.ID)
	}
	want := []string{manual.ID, recent[2].ID, recent[3].ID, recent[4].ID}
	if strings.Join(ids, " ") != strings.Join(want, " ") {
		t.Errorf("after retention the store holds %v, want %v (manual kept, %s too old, oldest recent over the size)", ids, want, old.ID)
	}
	if ret.prunedCount() != 3 {
		t.Errorf("pruned %d, want 3", ret.prunedCount())
	}
	// Leftover files of removed entries must be gone too.
	for _, f := range testbin.DirNames(t, st.Dir()) {
		if strings.HasPrefix(f, old.ID) || strings.HasPrefix(f, recent[0].ID) {
			t.Errorf("retention left %s behind", filepath.Join(st.Dir(), f))
		}
	}
}

// TestNoGC checks what a heap capture asks the target: a GC first by
// default (in-use numbers current, as 'capture' does), none with NoGC.
func TestNoGC(t *testing.T) {
	t.Parallel()
	svc := startService(t, "abandoned-worker", true, leaks.Options{})
	for _, noGC := range []bool{false, true} {
		t.Run(fmt.Sprint("NoGC=", noGC), func(t *testing.T) {
			queries := make(chan string, 100)
			proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/debug/pprof/heap" {
					queries <- r.URL.RawQuery
				}
				testbin.Forward(w, r, svc.URL())
			}))
			defer proxy.Close()
			r := startCollector(t, Options{Discover: StaticTargets{{URL: proxy.URL}}, Every: 200 * time.Millisecond, NoGC: noGC, Types: []string{profiles.TypeHeap}}, false)
			var q string
			select {
			case q = <-queries:
			case <-time.After(30 * time.Second):
				t.Fatal("no heap capture within 30s")
			}
			r.stop(t)
			if asksGC := strings.Contains(q, "gc=1"); asksGC == noGC {
				t.Errorf("heap request query %q with NoGC=%v", q, noGC)
			}
		})
	}
}

// TestRunReturningEarly makes Run fail at once, on the first discovery
// and on the listener: no goroutine it started may outlive it (the
// retention loop used to run on until the context ended). New, which
// only prepares, must leave the store alone; Run sweeps it first.
func TestRunReturningEarly(t *testing.T) {
	// Not parallel: goleak checks every goroutine of the test process.
	good := startService(t, "abandoned-worker", true, leaks.Options{})
	for _, tc := range []struct {
		name     string
		discover Discoverer
		closed   bool // hand Run a listener that is already closed
		want     string
	}{
		{"first discovery fails", FileTargets{Path: filepath.Join(t.TempDir(), "no-such-targets.json")}, false, "no-such-targets.json"},
		{"serving fails", nil, true, "closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := profiles.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			old, err := profiles.Fetch(context.Background(), good.URL(), profiles.FetchOptions{Labels: map[string]string{LabelCollected: "pull"}})
			if err != nil {
				t.Fatal(err)
			}
			old.Time = time.Now().Add(-48 * time.Hour)
			if _, err := st.Save(old); err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			if tc.closed {
				ln.Close()
			}
			ignore := goleak.IgnoreCurrent()
			c, err := New(Options{
				Discover: tc.discover, Store: st, Retention: Retention{MaxAge: 24 * time.Hour},
				Listener: ln, Registry: prometheus.NewRegistry(),
			})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(list(t, st, profiles.Filter{})); n != 1 {
				t.Fatalf("New left %d profiles of 1: it must not prune", n)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel() // only after the check: Run must not need it
			sum, err := c.Run(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run: %v, want an error about %s", err, tc.want)
			}
			goleak.VerifyNone(t, ignore)
			if n := len(list(t, st, profiles.Filter{})); n != 0 || sum.Pruned != 1 {
				t.Errorf("after Run %d profiles left, %d pruned: want the one too old pruned by Run", n, sum.Pruned)
			}
		})
	}
}
