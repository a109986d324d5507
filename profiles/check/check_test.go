package check

import (
	"context"
	"errors"
	"github.com/leaklab/leaklab/internal/opterr"
	"strings"
	"testing"

	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/profiles"
)

func TestParseDrive(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want Drive
	}{
		{"GET /product?id={i}", Drive{"GET", "/product?id={i}"}},
		{"  post   /login?user=u{i} ", Drive{"POST", "/login?user=u{i}"}},
		{"DELETE /", Drive{"DELETE", "/"}},
	} {
		got, err := ParseDrive(tc.spec)
		if err != nil || got != tc.want {
			t.Errorf("ParseDrive(%q) = %+v, %v; want %+v", tc.spec, got, err, tc.want)
		}
	}
	for _, spec := range []string{"", "GET", "/product", "GET product", "GET / extra", "G3T /", "GET /%zz"} {
		_, err := ParseDrive(spec)
		var de *DriveError
		if !errors.As(err, &de) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "e.g. 'GET /product?id={i}'") {
			t.Errorf("ParseDrive(%q) = %v, want a one-line DriveError with an example", spec, err)
		}
	}
}

// startService runs a catalog service as its own process ('leaklab run'
// on 127.0.0.1:0): the check must see the service's heap, not the test's.
func startService(t *testing.T, name string, fixed bool) (string, *leaks.Service) {
	t.Helper()
	svc, err := leaks.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return testbin.StartService(t, name, fixed, "--quiet").URL, svc
}

func runCheck(t *testing.T, name string, fixed bool) (*Report, *leaks.Service) {
	t.Helper()
	url, svc := startService(t, name, fixed)
	ep := svc.Endpoints[0]
	drive := Drive{Method: ep.Method, Path: ep.Path}
	rep, err := Run(context.Background(), Options{
		Target: url, Drive: drive, Requests: 100, Rounds: 3, Warmup: svc.Drive.Warmup, Rate: 300,
		Own: profiles.OwnCodeFor("github.com/leaklab/leaklab"),
	})
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	WriteText(&text, rep)
	t.Logf("%s %s:\n%s", leaks.VariantOf(fixed), name, text.String())
	return rep, svc
}

// Leaky heap and goroutine services fail with their culprit named; their
// fixed twins pass.
func TestRunLeakyFailsFixedPasses(t *testing.T) {
	if testing.Short() {
		t.Skip("drives four services for a few seconds each")
	}
	for _, tc := range []struct {
		name  string
		sites func(*Report) []Site
	}{
		{"unbounded-cache", func(r *Report) []Site { return r.HeapSites }},
		{"abandoned-worker", func(r *Report) []Site { return r.GoroutineSites }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, svc := runCheck(t, tc.name, false)
			if rep.Passed {
				t.Fatalf("the leaky %s passed", tc.name)
			}
			if sites := tc.sites(rep); len(sites) == 0 || sites[0].Function != svc.Culprit {
				t.Errorf("top growing site %+v, want %s", sites, svc.Culprit)
			}
			if rep.Source != "metrics" {
				t.Errorf("totals from %q; the sample services export the runtime's metrics", rep.Source)
			}
			if fixed, _ := runCheck(t, tc.name, true); !fixed.Passed {
				t.Errorf("the fixed %s failed: heap %+v goroutines %+v", tc.name, fixed.Heap, fixed.Goroutines)
			}
		})
	}
}

// A target that does not serve pprof is refused before any load.
func TestRunRefusesTargetWithoutPprof(t *testing.T) {
	url, _ := startService(t, "unbounded-cache", true)
	_, err := Run(context.Background(), Options{Target: url + "/nothing-here", Drive: Drive{"GET", "/"}})
	var te *TargetError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "404") {
		t.Errorf("Run on a path without pprof: %v, want a TargetError saying 404", err)
	}
	_, err = Run(context.Background(), Options{Target: "ftp://x", Drive: Drive{"GET", "/"}})
	if !opterr.Is(err) {
		t.Errorf("Run on ftp://x: %v, want an option error", err)
	}
}

func TestMetricValue(t *testing.T) {
	for line, want := range map[string]float64{
		"go_gc_heap_live_bytes 1.2345e+06":       1234500,
		"go_gc_heap_live_bytes 42 1700000000000": 42,
		"go_sched_goroutines_goroutines 17":      17,
	} {
		name := strings.Fields(line)[0]
		if v, ok := profiles.MetricValue(line, name); !ok || v != want {
			t.Errorf("profiles.MetricValue(%q) = %v, %v; want %v", line, v, ok, want)
		}
	}
	if _, ok := profiles.MetricValue(`go_gc_heap_live_bytes_total 3`, "go_gc_heap_live_bytes"); ok {
		t.Error("a longer metric name matched")
	}
}
