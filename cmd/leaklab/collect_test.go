package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/profiles"
)

func TestCollectUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args    []string
		code    int
		errLine string
	}{
		{[]string{"collect", "--every", "0"}, exitUsage, "--every must be more than zero"},
		{[]string{"collect", "--concurrency", "0"}, exitUsage, "--concurrency must be at least 1"},
		{[]string{"collect", "--type", "heap,bogus"}, exitUsage, `unknown profile type "bogus"`},
		{[]string{"collect", "--retain", "forever"}, exitUsage, "--retain"},
		{[]string{"collect", "--max-store-size", "lots"}, exitUsage, "--max-store-size"},
		{[]string{"collect", "--forward", "ftp://x"}, exitUsage, `forward "ftp://x": want the Pyroscope base URL`},
		{[]string{"collect", "--timeout", "-1s"}, exitUsage, "must not be negative"},
		{[]string{"collect", "--no-store"}, exitUsage, "--no-store needs --forward"},
		{[]string{"collect", "--targets", "a.json", "--prometheus", "http://127.0.0.1:9090"}, exitUsage, "not both"},
		{[]string{"collect", "--listen", ""}, exitUsage, "nothing to collect"},
		{[]string{"collect", "--listen", "0.0.0.0:0"}, exitUsage, "not a loopback address"},
		{[]string{"collect", "--listen", "nonsense"}, exitUsage, `listen address "nonsense": want host:port`},
		{[]string{"collect", "--targets", "/no/such/targets.json", "--listen", "127.0.0.1:0"}, exitFailure, "targets file: open /no/such/targets.json"},
		{[]string{"collect", "extra"}, exitUsage, "unknown command"},
		{[]string{"collect", "--detect-window", "-1m"}, exitUsage, "--detect-window must not be negative"},
		{[]string{"collect", "--detect-window", "30s", "--every", "15s"}, exitUsage, "must hold at least 5 captures"},
		{[]string{"collect", "--max-suspects-per-target", "0"}, exitUsage, "--max-suspects-per-target must be at least 1"},
		{[]string{"collect", "--shard", "2/2"}, exitUsage, "--shard"},
		{[]string{"collect", "--shard", "half"}, exitUsage, "want INDEX/COUNT"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			_, errOut, got := leaklabIn(t, t.TempDir(), tc.args...)
			if got != tc.code {
				t.Errorf("exit code %d, want %d (stderr: %s)", got, tc.code, errOut)
			}
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "leaklab: ") || !strings.Contains(last, tc.errLine) {
				t.Errorf("stderr %q, want a last line 'leaklab: ...%s...'", errOut, tc.errLine)
			}
		})
	}
}

// TestCollectEndToEnd runs the real binary as the collector (it is stopped
// with SIGTERM), one sample
// service pulled from a targets file and another pushing with its
// --pyroscope flag, then queries the history with 'profiles ls' and
// 'diff', and stops the collector with SIGTERM.
func TestCollectEndToEnd(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	pulled := testbin.StartService(t, "abandoned-worker", false)
	targets := filepath.Join(t.TempDir(), "targets.yaml")
	if err := os.WriteFile(targets, []byte("- targets: ['"+strings.TrimPrefix(pulled.URL, "http://")+"']\n  labels: {env: e2e}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testbin.Build(t), "collect", "--targets", targets, "--every", "500ms",
		"--listen", "127.0.0.1:0", "--output", "json")
	cmd.Env = append(os.Environ(), "LEAKLAB_HOME="+home)
	var started collectStarted
	collector := testbin.StartJSON(t, cmd, &started)
	if started.URL == "" || started.Ingest != started.URL+"/ingest" {
		t.Fatalf("start line %+v: want {url, ingest, metrics, store}", started)
	}

	// The pushing service, uploading every second (pyroscope-go's default
	// is every 15 s).
	testbin.StartService(t, "abandoned-worker", true, "--pyroscope", started.URL, "--pyroscope-upload-rate", "1s")

	st, err := profiles.Open(home)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		heaps, _ := st.List(profiles.Filter{Target: pulled.URL, Type: profiles.TypeHeap})
		pushed, _ := st.List(profiles.Filter{Target: "push://leaklab.abandoned-worker"})
		if len(heaps) >= 2 && len(pushed) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s: %d pulled heap profiles, %d pushed; want 2 and 1\n%s", len(heaps), len(pushed), collector.Stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The history answers the questions the issue asks: list one
	// target's heap profiles, diff the newest against the oldest.
	var listed []profiles.Meta
	if err := json.Unmarshal([]byte(mustLeaklab(t, home, "profiles", "ls", "--target", pulled.URL, "--type", "heap", "--since", "1h", "--output", "json")), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) < 2 {
		t.Fatalf("profiles ls listed %d heap profiles of %s, want >= 2", len(listed), pulled.URL)
	}
	var diff struct {
		SampleType string `json:"sample_type"`
	}
	if err := json.Unmarshal([]byte(mustLeaklab(t, home, "diff", listed[0].ID, listed[len(listed)-1].ID, "--output", "json")), &diff); err != nil || diff.SampleType == "" {
		t.Errorf("diff of two collected profiles: %v %+v", err, diff)
	}
	var pushedLs []profiles.Meta
	if err := json.Unmarshal([]byte(mustLeaklab(t, home, "profiles", "ls", "--service", "abandoned-worker", "--output", "json")), &pushedLs); err != nil {
		t.Fatal(err)
	}
	variants := map[string]bool{}
	for _, m := range pushedLs {
		variants[m.Labels["variant"]] = true
	}
	if !variants["leaky"] || !variants["fixed"] {
		t.Errorf("profiles of service abandoned-worker have variants %v, want the pulled leaky one and the pushing fixed one", variants)
	}

	// The pushed history replays under the name it is stored by: watch
	// --from-store takes push://APP, which is no URL to fetch.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if heaps, _ := st.List(profiles.Filter{Target: "push://leaklab.abandoned-worker", Type: profiles.TypeHeap}); len(heaps) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pushed heap profile after 30s\n%s", collector.Stderr)
		}
	}
	out, errOut, code := leaklabIn(t, home, "watch", "push://leaklab.abandoned-worker", "--from-store", "--since", "1h", "--output", "json")
	var replayed watchJSON
	if err := json.Unmarshal([]byte(out), &replayed); err != nil || (code != 0 && code != 3) ||
		replayed.Target != "push://leaklab.abandoned-worker" || replayed.Snapshots == 0 {
		t.Errorf("watch push://leaklab.abandoned-worker --from-store: exit %d, %v, %s\nstderr: %s", code, err, out, errOut)
	}

	collector.Stop(t)
	rest := []byte(collector.Stdout.String())
	var sum struct {
		Captures int `json:"captures"`
		Pushes   int `json:"pushes"`
		Targets  []struct {
			Target string `json:"target"`
		} `json:"targets"`
	}
	if err := json.Unmarshal(rest, &sum); err != nil || sum.Captures < 4 || sum.Pushes < 1 || len(sum.Targets) != 1 {
		t.Errorf("summary %s: want >= 4 captures, >= 1 push, 1 target (%v)", rest, err)
	}
	for _, name := range storeFiles(t, home) {
		if strings.HasPrefix(name, ".") {
			t.Errorf("collect left a temporary file in the store: %s", name)
		}
	}
}
