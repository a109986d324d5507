package watch_test

import (
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/profiles/watch"
)

// Built with GOEXPERIMENT=goroutineleakprofile, a service serves the
// runtime's goroutineleak profile, and the goroutines it lists are proven
// leaks: the abandoned workers are blocked on a channel nobody can reach.
// Its fixed twin has none.
func TestProvenGoroutineLeaks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a service with GOEXPERIMENT=goroutineleakprofile (recompiles the standard library); skipped with -short")
	}
	t.Parallel()
	checkProvenLeaks(t, testbin.BuildServiceExperiment(t, "goroutineleakprofile"))
}

// Go 1.27 has the goroutineleak profile on by default: a service built
// with it, without any GOEXPERIMENT, gives proven verdicts too. The go
// command fetches the toolchain from the module proxy (GOTOOLCHAIN).
func TestProvenGoroutineLeaksGo127(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a service with Go 1.27 (GOTOOLCHAIN=go1.27.3 fetches it); skipped with -short")
	}
	t.Parallel()
	checkProvenLeaks(t, testbin.BuildServiceToolchain(t, "go1.27.3"))
}

// checkProvenLeaks watches the leaky and the fixed variant at once, each
// in its own process.
func checkProvenLeaks(t *testing.T, bin string) {
	svc, _ := leaks.Lookup("abandoned-worker")
	for _, fixed := range []bool{false, true} {
		t.Run(string(leaks.VariantOf(fixed)), func(t *testing.T) {
			t.Parallel()
			url := testbin.StartServiceWith(t, bin, svc.Name, fixed).URL
			rep := watchUnderLoad(t, svc, url, 0, watch.Options{Every: time.Second, For: 6 * time.Second})
			if !rep.GoroutineLeakProfile {
				t.Fatal("the GOEXPERIMENT build does not serve /debug/pprof/goroutineleak")
			}
			var proven []watch.Suspect
			for _, s := range rep.Suspects {
				if s.Confidence == watch.Proven {
					proven = append(proven, s)
				}
			}
			switch {
			case fixed && len(rep.Suspects) > 0:
				t.Errorf("fixed: suspects %+v", rep.Suspects)
			case !fixed && (len(proven) == 0 || proven[0].Function != svc.Culprit || proven[0].ProvenLeaked == 0):
				t.Errorf("leaky: want %s proven, got %+v", svc.Culprit, rep.Suspects)
			}
		})
	}
}
