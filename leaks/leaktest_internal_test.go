package leaks

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/leaklab/leaklab/leaktest"
	"github.com/prometheus/client_golang/prometheus"
)

// The catalog checks itself with leaktest: each heap and goroutine
// service's handler, built in-process and called directly, is one
// operation. Every fixed variant passes; every leaky variant fails with its
// culprit in the failure.
//
// Skipped with -short: while a Check runs, runtime.MemProfileRate is 1,
// and the pprof handlers other tests of this package serve read it, which
// the race detector (run with -short in CI) would report.

func TestLeaktestFixedVariantsPass(t *testing.T) {
	if testing.Short() {
		t.Skip("leaktest dogfood skipped with -short (see the comment above)")
	}
	for _, svc := range leaktestServices() {
		t.Run(svc.Name, func(t *testing.T) {
			t.Parallel()
			opts := leaktestOptions(svc)
			if bound, ok := fixedBounds[svc.Name]; ok {
				opts = append(opts, leaktest.Warmup(bound.warmup), leaktest.MaxRetainedPerOp(bound.maxPerOp))
			}
			leaktest.Check(t, serviceOp(t, svc, true), opts...)
		})
	}
}

func TestLeaktestLeakyVariantsFailWithCulprit(t *testing.T) {
	if testing.Short() {
		t.Skip("leaktest dogfood skipped with -short (see the comment above)")
	}
	for _, svc := range leaktestServices() {
		t.Run(svc.Name, func(t *testing.T) {
			t.Parallel()
			rec := &recordingTB{TB: t}
			// A leak shows in few requests (every leaky variant leaks
			// kilobytes or a goroutine per request), and what leaked stays
			// in this test process until it ends: keep it small.
			// No settling: a failed check re-measures for up to Settle
			// before it fails, waiting for goroutines still finishing,
			// which a leak never passes; here that was about two dozen
			// more collections and profile reads per variant, while
			// the other tests of the package wait for the CPU.
			opts := append(leaktestOptions(svc), leaktest.Ops(min(svc.Drive.Requests, 60)), leaktest.Warmup(min(svc.Drive.Warmup, 20)),
				leaktest.Settle(0))
			leaktest.Check(rec, serviceOp(t, svc, false), opts...)
			msg := rec.failure()
			if msg == "" {
				t.Fatalf("leaktest passed the leaky %s; it logged %q", svc.Name, rec.logs)
			}
			if !strings.Contains(msg, svc.Culprit) {
				t.Errorf("the failure for %s does not name the culprit %s:\n%s", svc.Name, svc.Culprit, msg)
			}
			t.Logf("the failure names %s:\n%s", svc.Culprit, msg)
		})
	}
}

// leaktestServices are the catalog's heap and goroutine services.
func leaktestServices() []*Service {
	var out []*Service
	for _, s := range All() {
		if s.Kind == KindHeap || s.Kind == KindGoroutine {
			out = append(out, s)
		}
	}
	return out
}

// fixedBounds are the fixed variants that keep a bounded window of recent
// items per request. Filling the window is growth, not a leak, so their
// check warms up past the bound (the wallet's dead letters trail its
// requests, as the retry queue sheds them, hence twice its bound). Sliding a window over a slice
// (s = s[1:]; s = append(s, x)) also keeps the items that slid out
// reachable from the backing array until append next reallocates it, a
// sawtooth that looks like growth for up to a few thousand requests;
// maxPerOp is what that sawtooth can reach, still far below the leaky
// variant's growth (hundreds of KiB per request for both).
var fixedBounds = map[string]struct {
	warmup   int
	maxPerOp float64
}{
	"subslice-retention": {recentIDsLimit + 40, 64},     // a 16-byte ID clone per request
	"upload-buffer":      {uploadsKeptOnDisk + 10, 256}, // the upload's name, a substring of its URL
	"wallet-callbacks":   {2 * deadLetterLimit, leaktest.DefaultMaxRetainedPerOp},
}

// leaktestOptions sizes a check from the service's drive: its warm-up
// fills bounded caches, its request count shows the symptom.
func leaktestOptions(svc *Service) []leaktest.Option {
	return []leaktest.Option{
		leaktest.Ops(min(svc.Drive.Requests, 150)),
		leaktest.Warmup(svc.Drive.Warmup),
		leaktest.OwnCode(pkgPath),
	}
}

// serviceOp builds one variant's handler in-process and returns an
// operation that sends it the next request to its first endpoint.
func serviceOp(t *testing.T, svc *Service, fixed bool) func() {
	ctx, cancel := context.WithCancel(context.Background())
	env := &Env{Fixed: fixed, Log: slog.New(slog.DiscardHandler), Metrics: prometheus.NewRegistry(), ctx: ctx}
	env.Budget = newBudget(DefaultMaxLeak, env.Log, env.Metrics)
	h, err := svc.build(env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); env.runClosers() })
	ep := svc.Endpoints[0]
	i := 0
	return func() {
		for range max(1, bursts[svc.Name]) {
			req, err := ep.Request("http://leaktest.invalid", i)
			if err != nil {
				t.Fatal(err)
			}
			i++
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code >= 500 && rec.Code != http.StatusGatewayTimeout && rec.Code != http.StatusServiceUnavailable {
				t.Fatalf("%s %s: %d %s", req.Method, req.URL, rec.Code, rec.Body)
			}
			io.Copy(io.Discard, rec.Body)
		}
	}
}

// bursts are the services whose leak depends on the request rate: the
// unbounded queue only grows while requests come faster than its consumer
// takes them (one per 50 ms), so one operation is a burst of requests
// that outpaces it however slow the machine is.
var bursts = map[string]int{"unbounded-queue": 20}

// recordingTB keeps what Check reports instead of failing the test, so
// the test can check what a failing Check says.
type recordingTB struct {
	testing.TB
	mu     sync.Mutex
	errors []string
	logs   []string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recordingTB) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}

func (r *recordingTB) failure() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.errors, "\n")
}
