package collect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leaklab/leaklab/internal/filesd"
	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/profiles"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// smallProfile is a valid gzipped heap-like profile with n samples.
func smallProfile(t *testing.T, n int) []byte {
	t.Helper()
	fn := &profile.Function{ID: 1, Name: "main.leak"}
	loc := &profile.Location{ID: 1, Line: []profile.Line{{Function: fn, Line: 7}}}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "inuse_space", Unit: "bytes"}},
		Function:   []*profile.Function{fn},
		Location:   []*profile.Location{loc},
	}
	for i := range n {
		p.Sample = append(p.Sample, &profile.Sample{Location: []*profile.Location{loc}, Value: []int64{int64(i + 1)}})
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestFailureReason feeds failureReason the errors real fetches return,
// from a real service and from loopback servers that misbehave, so the
// reasons follow the profiles package's error types and not its wording.
func TestFailureReason(t *testing.T) {
	t.Parallel()
	svc := startService(t, "abandoned-worker", true, leaks.Options{})
	bomb := testbin.GzipBomb(100 << 20)
	eleven := smallProfile(t, 11)
	mux := http.NewServeMux()
	mux.HandleFunc("/bomb/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) { w.Write(bomb) })
	mux.HandleFunc("/eleven/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) { w.Write(eleven) })
	mux.HandleFunc("/html/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html><body>sign in</body></html>"))
	})
	mux.HandleFunc("/busy/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) {
		// A status line that happens to use the words the collector once
		// matched: still a status failure.
		http.Error(w, "over the limit (a gzip bomb?)", http.StatusTooManyRequests)
	})
	mux.HandleFunc("/hang/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	refused := "http://" + testbin.FreeAddr(t)

	for _, tc := range []struct {
		name   string
		target string
		limits profiles.Limits
		want   string
	}{
		{"gzip bomb", srv.URL + "/bomb", profiles.Limits{MaxDecompressed: DefaultMaxDecompressed}, "too_large"},
		{"bomb under a small decompressed limit", srv.URL + "/bomb", profiles.Limits{MaxDecompressed: 1 << 20}, "too_large"},
		{"real profile over MaxBytes", svc.URL(), profiles.Limits{MaxBytes: 512}, "too_large"},
		{"too many samples", srv.URL + "/eleven", profiles.Limits{MaxSamples: 10}, "too_large"},
		{"html page", srv.URL + "/html", profiles.Limits{}, "not_profile"},
		{"429 saying 'the limit'", srv.URL + "/busy", profiles.Limits{}, "status"},
		{"hangs", srv.URL + "/hang", profiles.Limits{}, "timeout"},
		{"refused", refused, profiles.Limits{}, "unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			timeout := 20 * time.Second
			if tc.want == "timeout" {
				timeout = 300 * time.Millisecond
			}
			_, err := profiles.Fetch(context.Background(), tc.target, profiles.FetchOptions{
				Type: profiles.TypeHeap, Timeout: timeout, Limits: tc.limits, NoServiceName: true,
			})
			if err == nil {
				t.Fatal("the fetch succeeded")
			}
			if got := failureReason(err); got != tc.want {
				t.Errorf("failureReason(%q) = %s, want %s", err, got, tc.want)
			}
			// Wrapped once more, as a caller might, it is still told apart.
			if got := failureReason(fmt.Errorf("round: %w", err)); got != tc.want {
				t.Errorf("wrapped: failureReason = %s, want %s", got, tc.want)
			}
		})
	}
	// The words alone no longer make an error "too large".
	if got := failureReason(errors.New("profile is larger than 10 bytes, the limit")); got != "unreachable" {
		t.Errorf("an untyped error with the words: %s, want unreachable", got)
	}
}

// heldTarget is a real sample service behind a loopback proxy that holds
// the second heap request until unhold is called (and passes the rest
// straight through): a target whose capture is slow at a known moment.
type heldTarget struct {
	url    string
	held   chan struct{} // receives when the second heap request arrives
	unhold func()
	heaps  atomic.Int64 // heap requests that reached the target
}

func startHeldTarget(t *testing.T) *heldTarget {
	t.Helper()
	svc := startService(t, "abandoned-worker", true, leaks.Options{})
	release := make(chan struct{})
	h := &heldTarget{held: make(chan struct{}, 1)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/debug/pprof/heap" && h.heaps.Add(1) == 2 {
			h.held <- struct{}{}
			<-release // not the request's context: the capture returns only when released
		}
		testbin.Forward(w, r, svc.URL())
	}))
	var once sync.Once
	h.unhold = func() { once.Do(func() { close(release) }) }
	t.Cleanup(func() {
		h.unhold() // before Close, which waits for the held handler
		srv.Close()
	})
	h.url = srv.URL
	return h
}

// writeTargets replaces a file_sd file at once (a reader never sees it
// half-written) with the given targets.
func writeTargets(t *testing.T, path string, urls ...string) {
	t.Helper()
	var groups []filesd.Group
	if len(urls) > 0 {
		groups = []filesd.Group{{Targets: urls}}
	}
	if err := filesd.WriteFile(path, groups); err != nil {
		t.Fatal(err)
	}
}

// seriesOf names the series in reg labelled with the target.
func seriesOf(t *testing.T, reg *prometheus.Registry, target string) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "target" && l.GetValue() == target {
					out = append(out, mf.GetName())
				}
			}
		}
	}
	return out
}

func waitHeld(t *testing.T, h *heldTarget) {
	t.Helper()
	select {
	case <-h.held:
	case <-time.After(30 * time.Second):
		t.Fatal("the second capture of the target did not start within 30s")
	}
}

// TestVanishedTargetSeriesStayGone drops a target from the targets file
// while a capture of it is held: its series must go, and must not come
// back when the held capture is answered.
func TestVanishedTargetSeriesStayGone(t *testing.T) {
	t.Parallel()
	h := startHeldTarget(t)
	file := filepath.Join(t.TempDir(), "targets.json")
	writeTargets(t, file, h.url)
	reg := prometheus.NewRegistry()
	r := startCollector(t, Options{
		Discover: FileTargets{Path: file}, Every: 100 * time.Millisecond, Refresh: 100 * time.Millisecond,
		Timeout: time.Hour, Types: []string{profiles.TypeHeap}, Registry: reg,
	}, false)
	waitHeld(t, h)
	// The first round was stored and counted before the second began.
	if s := seriesOf(t, reg, h.url); len(s) == 0 {
		t.Fatal("no series for the target after its first capture")
	}

	writeTargets(t, file)
	testbin.WaitFor(t, 30*time.Second, "the target's series to go", func() bool {
		return len(seriesOf(t, reg, h.url)) == 0
	})
	// Answer the held capture, then stop: Run returns only once every
	// loop has, so whatever the held capture would do is done.
	h.unhold()
	r.stop(t)
	if s := seriesOf(t, reg, h.url); len(s) != 0 {
		t.Errorf("series of the vanished target came back: %v", s)
	}
	if got := list(t, r.store, profiles.Filter{Target: h.url}); len(got) != 1 {
		t.Errorf("stored %d profiles of the target, want only the first (the one in flight when it vanished is dropped)", len(got))
	}
}

// inFlight is a real transport that records how many requests it had
// in flight at once.
type inFlight struct {
	rt        http.RoundTripper
	now, peak atomic.Int64
}

func (f *inFlight) RoundTrip(r *http.Request) (*http.Response, error) {
	n := f.now.Add(1)
	defer f.now.Add(-1)
	for p := f.peak.Load(); n > p && !f.peak.CompareAndSwap(p, n); p = f.peak.Load() {
	}
	return f.rt.RoundTrip(r)
}

// TestReturningTargetHasOneLoop drops a target while a capture of it is
// held and brings it back at the next refresh: its new loop must not
// start before the old one has ended (two loops would capture it at
// once), and its series must come back.
func TestReturningTargetHasOneLoop(t *testing.T) {
	t.Parallel()
	h := startHeldTarget(t)
	file := filepath.Join(t.TempDir(), "targets.json")
	writeTargets(t, file, h.url)
	tr := &http.Transport{Proxy: nil}
	defer tr.CloseIdleConnections()
	flight := &inFlight{rt: tr}
	reg := prometheus.NewRegistry()
	r := startCollector(t, Options{
		Discover: FileTargets{Path: file}, Every: 100 * time.Millisecond, Refresh: 100 * time.Millisecond,
		Timeout: time.Hour, Types: []string{profiles.TypeHeap}, Registry: reg,
		Client: &http.Client{Transport: flight},
	}, false)
	waitHeld(t, h)
	writeTargets(t, file)
	testbin.WaitFor(t, 30*time.Second, "the target to leave", func() bool {
		return testutil.ToFloat64(r.c.m.targets) == 0
	})
	writeTargets(t, file, h.url)
	testbin.WaitFor(t, 30*time.Second, "a capture by the target's new loop", func() bool {
		return h.heaps.Load() >= 3 && len(list(t, r.store, profiles.Filter{Target: h.url})) >= 2
	})
	if p := flight.peak.Load(); p != 1 {
		t.Errorf("%d requests to the one target in flight at once, want 1 (the old loop was still capturing)", p)
	}
	r.stop(t)
}
