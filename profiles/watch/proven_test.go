package watch_test

import (
	"context"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/leaks/exercise"
	"github.com/leaklab/leaklab/profiles/watch"
	"github.com/leaklab/leaklab/scale"
)

// Built with GOEXPERIMENT=goroutineleakprofile, a service serves the
// runtime's goroutineleak profile, and the goroutines it lists are proven
// leaks: the abandoned workers are blocked on a channel nobody can reach.
// Its fixed twin has none.
func TestProvenGoroutineLeaks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds leaklab with GOEXPERIMENT=goroutineleakprofile (recompiles the standard library); skipped with -short")
	}
	t.Parallel()
	bin := testbin.BuildExperiment(t, "goroutineleakprofile")
	svc, _ := leaks.Lookup("abandoned-worker")
	for _, fixed := range []bool{false, true} {
		url := testbin.StartServiceWith(t, bin, svc.Name, fixed).URL
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			scale.Load(ctx, exercise.SteadyLoad(svc, url, 4, time.Minute))
		}()
		rep, err := watch.Run(context.Background(), url, watch.Options{Every: time.Second, For: 6 * time.Second})
		cancel()
		<-done
		if err != nil {
			t.Fatal(err)
		}
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
	}
}
