package collect

import (
	"context"
	"fmt"
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

func TestParseFileSD(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   string
		want string // URL and labels of each target, or the error
	}{
		{"json", `[{"targets": ["127.0.0.1:8080", "127.0.0.1:8081"], "labels": {"env": "dev"}}]`,
			"http://127.0.0.1:8080 map[env:dev instance:127.0.0.1:8080 job:leaklab]; http://127.0.0.1:8081 map[env:dev instance:127.0.0.1:8081 job:leaklab]"},
		{"yaml", "- targets: ['127.0.0.1:8080']\n  labels:\n    job: shop\n",
			"http://127.0.0.1:8080 map[instance:127.0.0.1:8080 job:shop]"},
		{"url and scheme", `[{"targets": ["https://svc.internal:8443/base/", "10.0.0.1:9"], "labels": {"__scheme__": "https", "__meta_x": "y"}}]`,
			"https://svc.internal:8443/base map[instance:svc.internal:8443 job:leaklab]; https://10.0.0.1:9 map[instance:10.0.0.1:9 job:leaklab]"},
		{"duplicates collapse", `[{"targets": ["127.0.0.1:1"]}, {"targets": ["127.0.0.1:1"]}]`,
			"http://127.0.0.1:1 map[instance:127.0.0.1:1 job:leaklab]"},
		{"empty list", `[]`, ""},
		{"empty file", ``, "error: empty"},
		{"not a list", `{"targets": ["a:1"]}`, "error: not file_sd JSON"},
		{"unknown field", `[{"target": ["a:1"]}]`, "error: not file_sd JSON"},
		{"no targets", `[{"labels": {"a": "b"}}]`, "error: entry 1 has no targets"},
		{"bad target", `[{"targets": ["ftp://x:1"]}]`, "error: entry 1: target \"ftp://x:1\" is not host:port"},
		{"bad yaml", "- targets: [\n", "error: not file_sd YAML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts, err := parseFileSD([]byte(tc.in))
			var got []string
			for _, tg := range ts {
				got = append(got, fmt.Sprintf("%s %v", tg.URL, tg.Labels))
			}
			s := strings.Join(got, "; ")
			if err != nil {
				s = "error: " + err.Error()
			}
			if !strings.HasPrefix(s, tc.want) || (tc.want == "" && s != "") {
				t.Errorf("got %s\nwant %s", s, tc.want)
			}
		})
	}
}

// TestTargetsFileIsReread edits the targets file while the collector runs:
// a target added to it starts being collected, as with Prometheus's
// file_sd, and one removed stops.
func TestTargetsFileIsReread(t *testing.T) {
	t.Parallel()
	a := startService(t, "abandoned-worker", true, leaks.Options{})
	b := startService(t, "abandoned-worker", false, leaks.Options{})
	file := filepath.Join(t.TempDir(), "targets.json")
	write := func(urls ...string) {
		var quoted []string
		for _, u := range urls {
			quoted = append(quoted, `"`+strings.TrimPrefix(u, "http://")+`"`)
		}
		tmp := file + ".tmp"
		if err := os.WriteFile(tmp, []byte(`[{"targets": [`+strings.Join(quoted, ",")+`]}]`), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	write(a.URL())
	r := startCollector(t, Options{
		Discover: FileTargets{Path: file}, Every: 200 * time.Millisecond, Refresh: 200 * time.Millisecond,
		Types: []string{profiles.TypeGoroutine},
	}, false)
	testbin.WaitFor(t, 30*time.Second, "profiles from the first target", func() bool {
		return len(list(t, r.store, profiles.Filter{Target: a.URL()})) > 0
	})
	write(b.URL())
	testbin.WaitFor(t, 30*time.Second, "profiles from the target added to the file", func() bool {
		return len(list(t, r.store, profiles.Filter{Target: b.URL()})) > 0
	})
	// a is gone from the file: once b has had a second round (so any
	// capture of a in flight at the refresh has ended), a's count stops.
	testbin.WaitFor(t, 30*time.Second, "a second round from b", func() bool {
		return len(list(t, r.store, profiles.Filter{Target: b.URL()})) >= 2
	})
	before := len(list(t, r.store, profiles.Filter{Target: a.URL()}))
	testbin.WaitFor(t, 30*time.Second, "three more rounds from b", func() bool {
		return len(list(t, r.store, profiles.Filter{Target: b.URL()})) >= 5
	})
	if after := len(list(t, r.store, profiles.Filter{Target: a.URL()})); after != before {
		t.Errorf("target removed from the file was still collected: %d profiles, then %d", before, after)
	}
	r.stop(t)
}

// TestPrometheusDiscovery runs a real Prometheus scraping two jobs of
// sample services, and collects profiles from the targets it reports for
// one job, with the labels Prometheus gives them.
func TestPrometheusDiscovery(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("LEAKLAB_CI") == "1" {
			t.Fatal("prometheus is not installed (CI installs the Debian package prometheus)")
		}
		t.Skip("SKIPPING the real-Prometheus discovery test: the prometheus binary is not installed (apt-get install prometheus)")
	}
	a := startService(t, "abandoned-worker", false, leaks.Options{})
	b := startService(t, "abandoned-worker", true, leaks.Options{})
	other := startService(t, "abandoned-worker", true, leaks.Options{})
	host := func(s *leaks.Server) string { return s.Addr().String() }

	dir := t.TempDir()
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
scrape_configs:
  - job_name: shop
    static_configs:
      - targets: [%q, %q]
        labels: {env: test}
  - job_name: other
    static_configs:
      - targets: [%q]
`, host(a), host(b), host(other))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := testbin.FreeAddr(t)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	prom := testbin.Start(t, cmd)
	t.Cleanup(func() { prom.Stop(t) })

	disc := PrometheusTargets{URL: "http://" + addr, Jobs: []string{"shop"}}
	var ts []Target
	testbin.WaitFor(t, 60*time.Second, "Prometheus to report the shop job's targets", func() bool {
		ts, err = disc.Targets(context.Background())
		return err == nil && len(ts) == 2
	})
	for _, tg := range ts {
		if tg.Labels["job"] != "shop" || tg.Labels["env"] != "test" || "http://"+tg.Labels["instance"] != tg.URL {
			t.Errorf("discovered %+v: want job shop, env test, instance matching the URL", tg)
		}
	}

	// A capture gets 10 s, not Every (its default bound, 200 ms here):
	// under the race detector beside other packages, CI once waited the
	// whole 30 s below for the first heap profiles (2026-12-04), which a
	// few captures over 200 ms would explain, each failure doubling the
	// target's backoff. This test is about discovery and labels.
	r := startCollector(t, Options{Discover: disc, Every: 200 * time.Millisecond, Timeout: 10 * time.Second, Types: []string{profiles.TypeHeap}}, false)
	testbin.WaitFor(t, 30*time.Second, "heap profiles from both shop targets", func() bool {
		return len(list(t, r.store, profiles.Filter{Target: a.URL()})) > 0 && len(list(t, r.store, profiles.Filter{Target: b.URL()})) > 0
	})
	r.stop(t)
	for _, m := range list(t, r.store, profiles.Filter{}) {
		if m.Target == other.URL() {
			t.Errorf("collected from %s, a target of a job not asked for", m.Target)
		}
		if m.Labels["job"] != "shop" || m.Labels["instance"] == "" {
			t.Errorf("stored %+v without Prometheus's job and instance labels", m)
		}
	}

	// Not Prometheus at all: one clear line.
	_, err = PrometheusTargets{URL: a.URL()}.Targets(context.Background())
	if err == nil || !strings.Contains(err.Error(), "not the Prometheus targets API") {
		t.Errorf("discovery from a non-Prometheus URL: %v", err)
	}
	if t.Failed() {
		t.Logf("prometheus output:\n%s", prom.Stderr.String())
	}
}
