package dashboards

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/leaks/exercise"
	"github.com/leaklab/leaklab/scale"
)

const suspectsUID = "leaklab-suspects"

// rulesFile is the shipped alerting rules file.
var rulesFile = filepath.Join(StackDir, "prometheus", "rules", "leaklab-leaks.yml")

// TestAlertingRules runs the rules' unit tests with promtool: the alert
// fires once a suspect has lasted 15 minutes, confidence changes do not
// reset it, and its annotations carry the function and the growth.
func TestAlertingRules(t *testing.T) {
	promtool := needBinary(t, "promtool")
	if out, err := exec.Command(promtool, "check", "rules", rulesFile).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	if out, err := exec.Command(promtool, "test", "rules", filepath.Join("testdata", "leaklab-leaks_test.yml")).CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// alertFor is the test copy's 'for': long enough that a suspect must last
// several judgements, short enough for a test.
const alertFor = "10s"

// TestLeakAlertsEndToEnd runs the real pipeline: sample services (leaky
// and fixed twins, each its own process) under load, a real 'leaklab
// collect' with detection pulling their profiles, and a real Prometheus
// scraping the collector and evaluating the shipped rules (with 'for:'
// shortened). LeakSuspect must fire for every leaky target, naming its
// culprit, and never for a fixed twin. Then the "Leak suspects"
// dashboard's variables and queries are run against that Prometheus.
func TestLeakAlertsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs six services, a collector and Prometheus for about a minute; skipped with -short")
	}
	// Parallel with the other real-Prometheus test: both mostly wait
	// for scrapes and rule evaluations, each with its own processes,
	// ports and directories.
	t.Parallel()
	prometheusBin := needBinary(t, "prometheus")
	bin := testbin.Build(t)
	dir := t.TempDir()

	type service struct {
		svc   *leaks.Service
		fixed bool
		url   string
	}
	var services []*service
	var hosts []string
	for _, name := range []string{"runaway-poller", "abandoned-worker", "unbounded-cache"} {
		svc, err := leaks.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, fixed := range []bool{false, true} {
			s := &service{svc: svc, fixed: fixed, url: testbin.StartServiceWith(t, bin, name, fixed).URL}
			services = append(services, s)
			hosts = append(hosts, strings.TrimPrefix(s.url, "http://"))
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var load sync.WaitGroup
	for _, s := range services {
		load.Go(func() { scale.Load(ctx, exercise.SteadyLoad(s.svc, s.url, 4, 5*time.Minute)) })
	}
	defer func() { cancel(); load.Wait() }()

	targets := filepath.Join(dir, "targets.json")
	sd, _ := json.Marshal([]map[string]any{{"targets": hosts}})
	if err := os.WriteFile(targets, sd, 0o644); err != nil {
		t.Fatal(err)
	}
	var started struct {
		URL string `json:"url"`
	}
	cmd := exec.Command(bin, "collect", "--targets", targets, "--every", "1s", "--detect-window", "20s",
		"--listen", "127.0.0.1:0", "--quiet", "--output", "json")
	cmd.Env = append(os.Environ(), "LEAKLAB_HOME="+filepath.Join(dir, "home"))
	collector := testbin.StartJSON(t, cmd, &started)
	t.Cleanup(func() { collector.Stop(t) })
	collectorAddr := strings.TrimPrefix(started.URL, "http://")

	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	forClause := regexp.MustCompile(`(?m)^(\s+for:) 15m$`)
	if !forClause.Match(rules) {
		t.Fatalf("%s has no 'for: 15m' to shorten", rulesFile)
	}
	rulesCopy := filepath.Join(dir, "leaklab-leaks.yml")
	if err := os.WriteFile(rulesCopy, forClause.ReplaceAll(rules, []byte("$1 "+alertFor)), 0o644); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(`global:
  scrape_interval: %s
  evaluation_interval: %s
rule_files:
  - %s
scrape_configs:
  - job_name: %s
    static_configs:
      - targets: [%q]
`, testScrapeInterval, testScrapeInterval, rulesCopy, CollectJob, collectorAddr)), 0o644); err != nil {
		t.Fatal(err)
	}
	prom := startPrometheus(t, prometheusBin, config, filepath.Join(dir, "tsdb"))

	firing := func(target string) []string {
		res, err := prom.query(fmt.Sprintf(`ALERTS{alertname="LeakSuspect", alertstate="firing", target=%q}`, target))
		if err != nil {
			t.Fatal(err)
		}
		var fns []string
		for _, r := range res {
			fns = append(fns, r.Metric["function"])
		}
		return fns
	}
	waitFor(t, 3*time.Minute, "LeakSuspect firing for every leaky target's culprit", func() (bool, string) {
		var missing []string
		for _, s := range services {
			if s.fixed {
				continue
			}
			fns := firing(s.url)
			found := false
			for _, fn := range fns {
				found = found || fn == s.svc.Culprit
			}
			if !found {
				missing = append(missing, fmt.Sprintf("%s (firing: %v)", s.svc.Name, fns))
			}
		}
		return len(missing) == 0, strings.Join(missing, ", ")
	})
	// Never for a fixed twin, at any time of the run.
	for _, s := range services {
		if !s.fixed {
			continue
		}
		res, err := prom.query(fmt.Sprintf(`max_over_time(ALERTS{alertname="LeakSuspect", alertstate="firing", target=%q}[10m])`, s.url))
		if err != nil {
			t.Fatal(err)
		}
		if len(res) > 0 {
			t.Errorf("LeakSuspect fired for %s (fixed): %v", s.svc.Name, res)
		}
	}

	// The dashboard's queries against what this Prometheus has.
	var d lintDashboard
	for _, db := range All() {
		if db.UID != suspectsUID {
			continue
		}
		data, err := db.JSON()
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatal(err)
		}
	}
	if d.UID != suspectsUID {
		t.Fatalf("no dashboard %s", suspectsUID)
	}
	t.Run(suspectsUID, func(t *testing.T) { checkDashboardQueries(t, prom, d) })
	cancel()
	load.Wait()
}
