package collect

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/leaks/exercise"
	"github.com/leaklab/leaklab/scale"
	"github.com/prometheus/client_golang/prometheus"
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
func TestDetectAcrossFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("collects twelve sample services under load for over a minute; skipped with -short")
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
	r := startCollector(t, Options{
		Discover: discover, Every: fleetEvery, Timeout: 10 * time.Second, Registry: reg,
		Detect: Detection{Window: fleetWindow},
	}, true)
	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	loadFleet(ctx, &wg, targets)
	defer func() { stopLoad(); wg.Wait() }()

	restarted := targets[0] // unbounded-cache, leaky
	if restarted.fixed || restarted.svc.Kind != leaks.KindHeap {
		t.Fatal("the restart is meant for a leaky heap service")
	}
	var restartedAt time.Time

	// Poll the verdicts: leaky targets must come to have their culprit;
	// a fixed twin must not stay a suspect for fleetSteady.
	found := map[string]bool{}
	suspectSince := map[string]time.Time{}
	deadline := time.Now().Add(4 * time.Minute)
	for {
		sus := r.c.Suspects()
		now := time.Now()
		for _, ft := range targets {
			mine := suspectsOf(sus, ft.url)
			if ft.fixed {
				if len(mine) == 0 {
					delete(suspectSince, ft.url)
					continue
				}
				if suspectSince[ft.url].IsZero() {
					suspectSince[ft.url] = now
					t.Logf("%s: suspect for now: %s", ft.name(), describe(mine))
				}
				if now.Sub(suspectSince[ft.url]) > fleetSteady {
					t.Fatalf("%s, a fixed twin, has been a suspect for over %s: %s", ft.name(), fleetSteady, describe(mine))
				}
				continue
			}
			for _, s := range mine {
				if s.Function != ft.svc.Culprit {
					continue
				}
				if ft == restarted && !restartedAt.IsZero() {
					if s.Points[0].Time.Before(restartedAt) {
						t.Fatalf("%s: a suspect after the restart has points of the old process: first point %s, restart at %s", ft.name(), s.Points[0].Time, restartedAt)
					}
				}
				if !found[ft.url] {
					t.Logf("%s: culprit found: %s", ft.name(), describe(mine))
				}
				found[ft.url] = true
			}
		}
		// Once the restarted target's culprit has been found, restart it
		// and look for the culprit again, in the new process's series.
		if found[restarted.url] && restartedAt.IsZero() {
			restarted.proc.Kill() // as a crash would
			restartedAt = time.Now()
			restarted.proc = testbin.StartServiceWith(t, bin, restarted.svc.Name, false, "--addr", restarted.addr)
			delete(found, restarted.url)
			t.Logf("%s restarted", restarted.name())
		}
		all := !restartedAt.IsZero()
		for _, ft := range targets {
			all = all && (ft.fixed || found[ft.url])
		}
		if all {
			break
		}
		if now.After(deadline) {
			var missing []string
			for _, ft := range targets {
				if !ft.fixed && !found[ft.url] {
					missing = append(missing, ft.name()+" "+describe(suspectsOf(sus, ft.url)))
				}
			}
			t.Fatalf("after %s, leaky targets without their culprit as suspect: %v", 4*time.Minute, missing)
		}
		time.Sleep(500 * time.Millisecond)
	}

	body := get(t, r.url+"/metrics")
	if !strings.Contains(body, `leaklab_leak_series_restarts_total{reason="process_start",target="`+restarted.url+`"}`) {
		t.Errorf("the restart of %s was not counted:\n%s", restarted.name(), grepLines(body, "leaklab_leak_series_restarts_total"))
	}
	for _, ft := range targets {
		if ft != restarted && strings.Contains(body, `leaklab_leak_series_restarts_total{reason="`) && strings.Contains(grepLines(body, "leaklab_leak_series_restarts_total"), `target="`+ft.url+`"`) {
			t.Errorf("%s never restarted, but:\n%s", ft.name(), grepLines(body, "leaklab_leak_series_restarts_total"))
		}
	}

	// The metrics: one leaklab_leak_suspect and one growth series per
	// suspect, and the exposition lints clean.
	sus := r.c.Suspects()
	for _, s := range sus {
		want := fmt.Sprintf(`leaklab_leak_suspect{confidence=%q,function=%q,kind=%q,target=%q} 1`, s.Confidence, s.Function, s.Kind, s.Target)
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
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

	// GET /suspects as JSON: the contract's fields.
	req, _ := http.NewRequest(http.MethodGet, r.url+"/suspects", nil)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var listed []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&listed); err != nil {
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
	stopLoad()
	wg.Wait()
	r.stop(t)
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
