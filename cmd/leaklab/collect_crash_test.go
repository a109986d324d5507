package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/profiles"
)

// TestCollectKilledMidJudgementLeavesStoreWhole kills a detecting
// collector outright (SIGKILL: no chance to finish a write or a
// judgement) again and again at random moments while it captures, stores,
// rebuilds its series from the store and judges them every round. After
// each kill every profile the store lists must load, and a collector
// started on that store must rebuild its history from it and find the
// target's leak.
func TestCollectKilledMidJudgementLeavesStoreWhole(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs a leaking service and kills a collector six times; skipped with -short")
	}
	svc, err := leaks.Lookup("abandoned-worker")
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	leaky := testbin.StartService(t, svc.Name, false)
	ctx := t.Context()
	go func() { // a goroutine leak per request, for the detector to find
		for ctx.Err() == nil {
			if resp, err := http.Get(leaky.URL + "/search?q=x"); err == nil {
				resp.Body.Close()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	targets := filepath.Join(t.TempDir(), "targets.json")
	if err := os.WriteFile(targets, []byte(`[{"targets": ["`+strings.TrimPrefix(leaky.URL, "http://")+`"]}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	startCollector := func() (*testbin.Proc, string) {
		cmd := exec.Command(testbin.Build(t), "collect", "--targets", targets, "--every", "300ms",
			"--detect-window", "12s", "--listen", "127.0.0.1:0", "--quiet", "--output", "json")
		cmd.Env = append(os.Environ(), "LEAKLAB_HOME="+home)
		var started collectStarted
		p := testbin.StartJSON(t, cmd, &started)
		return p, started.URL
	}
	st, err := profiles.Open(home)
	if err != nil {
		t.Fatal(err)
	}
	checkStore := func(after string) int {
		t.Helper()
		metas, err := st.List(profiles.Filter{})
		if err != nil {
			t.Fatalf("%s: the store does not list: %v", after, err)
		}
		for _, m := range metas {
			if _, err := st.Load(m.ID, profiles.Limits{}); err != nil {
				t.Fatalf("%s: stored profile %s does not load: %v", after, m.ID, err)
			}
		}
		return len(metas)
	}

	for kill := 1; kill <= 6; kill++ {
		p, _ := startCollector()
		time.Sleep(time.Duration(600+rand.IntN(1200)) * time.Millisecond)
		p.Kill()
		n := checkStore(fmt.Sprintf("after kill %d", kill))
		t.Logf("kill %d: %d profiles in the store", kill, n)
	}
	if n := checkStore("after the kills"); n < 12 {
		t.Fatalf("only %d profiles stored over six runs of a collector every 300ms: the test did not exercise the store", n)
	}

	// A collector on the store the kills left: it rebuilds the window from
	// the store and names the leak.
	p, url := startCollector()
	t.Cleanup(func() { p.Stop(t) })
	testbin.WaitFor(t, time.Minute, "the leak's culprit among the suspects of a collector on the killed collectors' store", func() bool {
		req, _ := http.NewRequest(http.MethodGet, url+"/suspects", nil)
		req.Header.Set("Accept", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var listed []struct {
			Function string `json:"function"`
		}
		if json.NewDecoder(resp.Body).Decode(&listed) != nil {
			return false
		}
		for _, s := range listed {
			if s.Function == svc.Culprit {
				return true
			}
		}
		return false
	})
	checkStore("after the last collector")
}
