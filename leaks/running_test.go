package leaks

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/leaklab/leaklab/internal/opterr"
)

// Run starts the named service, reports where it listens while it
// serves, and stops when its context ends.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var banner bytes.Buffer
	var running Running
	err := Run(ctx, RunOptions{Name: "unbounded-cache", MaxLeak: "32MiB", Options: Options{Addr: "127.0.0.1:0"}}, func(r Running) error {
		defer cancel()
		running = r
		resp, err := http.Get(r.Healthz)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", r.Healthz, resp.Status)
		}
		return r.WriteText(&banner)
	})
	if err != nil {
		t.Fatal(err)
	}
	if running.Name != "unbounded-cache" || running.Variant != Leaky || running.MaxLeakBytes != 32<<20 ||
		!strings.HasPrefix(running.URL, "http://127.0.0.1:") || running.Metrics != running.URL+"/metrics" || len(running.Endpoints) == 0 {
		t.Errorf("running %+v", running)
	}
	for _, want := range []string{"unbounded-cache (leaky) is listening on " + running.URL, "Drive it:", "Watch it:  curl -s " + running.Metrics, "Ctrl-C to stop."} {
		if !strings.Contains(banner.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, &banner)
		}
	}
	js, err := json.Marshal(running)
	if err != nil || strings.Contains(string(js), "service") {
		t.Errorf("JSON %s (%v): want only the documented fields", js, err)
	}
	for _, tc := range []struct {
		opts RunOptions
		want string
	}{
		{RunOptions{Name: "no-such-service", MaxLeak: "1MiB"}, `unknown service "no-such-service"`},
		{RunOptions{Name: "unbounded-cache", MaxLeak: "lots"}, "MaxLeak: "},
		{RunOptions{Name: "unbounded-cache", MaxLeak: "0"}, "MaxLeak must be more than zero"},
		{RunOptions{Name: "unbounded-cache", MaxLeak: "1MiB", Options: Options{Addr: "192.0.2.1:0"}}, "allow it with Public"},
	} {
		err := Run(context.Background(), tc.opts, func(Running) error { t.Error("started with a refused option"); return nil })
		if !opterr.Is(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want an option error containing %q", tc.opts, err, tc.want)
		}
	}
}
