package collect

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"sync/atomic"
	"testing"
)

// A target whose first name lookup got no answer (its /metrics and its
// cmdline failed, as under a machine's load when the lookup's 2 s ran
// out) is asked again at its next capture instead of being trusted
// nameless for serviceRefresh: in CI (ci22) a pulled service's profiles
// carried no service name, so 'profiles ls --service' did not list them.
func TestNamelessTargetIsAskedAgain(t *testing.T) {
	t.Parallel()
	var metricsAsked, cmdlineAsked atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", func(w http.ResponseWriter, r *http.Request) {
		if cmdlineAsked.Add(1) == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		pprof.Cmdline(w, r)
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		if metricsAsked.Add(1) == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, `leaklab_info{service="shop",variant="leaky"} 1`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	c := &Collector{}
	tr := &targetRun{fetchCtx: context.Background()}
	target := &Target{URL: srv.URL}
	first, err := c.fetch(tr, target, "goroutine", map[string]string{LabelCollected: "pull"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if first.Service != "" {
		t.Fatalf("first capture named %q with /metrics and cmdline failing", first.Service)
	}
	second, err := c.fetch(tr, target, "goroutine", map[string]string{LabelCollected: "pull"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if second.Service != "shop" || second.Labels["variant"] != "leaky" {
		t.Errorf("second capture: service %q, variant %q; want shop and leaky, asked again", second.Service, second.Labels["variant"])
	}
	// Once named, the name is trusted: the third capture does not ask.
	before := metricsAsked.Load()
	third, err := c.fetch(tr, target, "goroutine", map[string]string{LabelCollected: "pull"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if third.Service != "shop" || third.Labels["variant"] != "leaky" || metricsAsked.Load() != before {
		t.Errorf("third capture: service %q, variant %q, /metrics asked %d more times; want the learned name, not asked", third.Service, third.Labels["variant"], metricsAsked.Load()-before)
	}
}
