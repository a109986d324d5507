package dashboards

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/leaks"
)

// The integration test scrapes every 1s; Grafana's $__rate_interval is at
// least four scrape intervals, so that is what it stands for here.
const (
	testScrapeInterval = "1s"
	testRateInterval   = "4s"
	testGrowthWindow   = "1m"
	// scrapesBeforeQuerying makes every rate window hold several samples.
	scrapesBeforeQuerying = 6
)

// needBinary finds an external tool the test uses. Missing, it skips
// loudly, except in CI (LEAKLAB_CI=1, set by .ci/run), where it fails.
func needBinary(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("*** %s not found on PATH: this test runs the dashboards against a real Prometheus. "+
		"Install it with 'apt-get install prometheus' (.ci/run does). ***", name)
	if os.Getenv("LEAKLAB_CI") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// TestShippedPrometheusConfig checks the shipped config with promtool.
func TestShippedPrometheusConfig(t *testing.T) {
	promtool := needBinary(t, "promtool")
	out, err := exec.Command(promtool, "check", "config", filepath.Join(StackDir, "prometheus", "prometheus.yml")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
}

// TestDashboardsAgainstRealPrometheus runs the real pipeline: 'leaklab
// dashboards export' writes the tree, 'leaklab run --all' starts every
// service (both variants, one process each) and writes the targets file,
// Prometheus runs the exported config (scrape interval shortened), traffic
// flows, and then every template variable and every panel query of every
// exported dashboard is run through Prometheus's HTTP API with Grafana's
// macros substituted. Any error or empty result fails. Each service's
// /metrics also goes through 'promtool check metrics'.
func TestDashboardsAgainstRealPrometheus(t *testing.T) {
	// Parallel with the other real-Prometheus test: both mostly wait
	// for scrapes and rule evaluations, each with its own processes,
	// ports and directories.
	t.Parallel()
	prometheusBin := needBinary(t, "prometheus")
	promtool := needBinary(t, "promtool")
	bin := testbin.Build(t)
	dir := t.TempDir()
	tree := filepath.Join(dir, "stack")

	if out, err := exec.Command(bin, "dashboards", "export", tree).CombinedOutput(); err != nil {
		t.Fatalf("leaklab dashboards export: %v\n%s", err, out)
	}
	configPath := filepath.Join(tree, "prometheus", "prometheus.yml")
	shortenScrapeInterval(t, configPath)

	targetsFile := filepath.Join(tree, "prometheus", "targets", "leaklab.json")
	services := startAll(t, bin, targetsFile)
	if want := 2 * len(leaks.All()); len(services) != want {
		t.Fatalf("run --all --variants both started %d services, want %d", len(services), want)
	}

	prom := startPrometheus(t, prometheusBin, configPath, filepath.Join(dir, "tsdb"))

	ctx, cancel := context.WithCancel(context.Background())
	var traffic sync.WaitGroup
	for _, s := range services {
		traffic.Add(1)
		go func() {
			defer traffic.Done()
			drive(ctx, s)
		}()
	}
	defer func() {
		cancel()
		traffic.Wait()
	}()

	// Every target up, then enough scrapes of each for the rate windows.
	waitFor(t, 60*time.Second, "all targets scraped "+strconv.Itoa(scrapesBeforeQuerying)+" times", func() (bool, string) {
		res, err := prom.query(fmt.Sprintf(`count(count_over_time(up{job=%q}[5m]) >= %d)`, Job, scrapesBeforeQuerying))
		if err != nil {
			return false, err.Error()
		}
		n := 0
		if len(res) == 1 {
			n, _ = strconv.Atoi(res[0].value())
		}
		return n == len(services), fmt.Sprintf("%d of %d targets", n, len(services))
	})
	waitFor(t, 60*time.Second, "request counters of every service scraped twice", func() (bool, string) {
		res, err := prom.query(fmt.Sprintf(`count(count by (service, variant) (count_over_time(leaklab_http_requests_total{job=%q}[1m]) >= 2))`, Job))
		if err != nil {
			return false, err.Error()
		}
		n := 0
		if len(res) == 1 {
			n, _ = strconv.Atoi(res[0].value())
		}
		return n == len(services), fmt.Sprintf("%d of %d services", n, len(services))
	})

	t.Run("target labels", func(t *testing.T) {
		// honor_labels keeps the services' own service/variant labels
		// instead of renaming them exported_*.
		if res, err := prom.query(`count({exported_service=~".+"} or {exported_variant=~".+"})`); err != nil || len(res) != 0 {
			t.Errorf("series with exported_service/exported_variant exist (%v, %v): the targets file's labels clash", res, err)
		}
		// The go_* series get service and variant from the targets file.
		res, err := prom.query(fmt.Sprintf(`count(go_info{job=%q, service=~".+", variant=~"leaky|fixed"})`, Job))
		if err != nil || len(res) != 1 || res[0].value() != strconv.Itoa(len(services)) {
			t.Errorf("go_info with service and variant labels: %v %v, want %d", res, err, len(services))
		}
	})

	files, err := filepath.Glob(filepath.Join(tree, DashboardsDir, "*.json"))
	if err != nil || len(files) != len(All()) {
		t.Fatalf("exported dashboards: %v %v", files, err)
	}
	exported := map[string]lintDashboard{}
	for _, file := range files {
		var d lintDashboard
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		exported[d.UID] = d
		if d.UID == suspectsUID {
			continue // needs a collector that found leaks: TestLeakAlertsEndToEnd runs its queries
		}
		t.Run(d.UID, func(t *testing.T) { checkDashboardQueries(t, prom, d) })
	}

	// The point of the growth panels: after the same traffic, a leaky
	// goroutine service's "Goroutine growth" stands above its fixed twin's.
	t.Run("goroutine growth separates leaky from fixed", func(t *testing.T) {
		growth := panelValues(t, prom, exported["leaklab-runtime"], "Goroutine growth")
		heap := panelValues(t, prom, exported["leaklab-runtime"], "Live heap growth")
		for _, svc := range leaks.All() {
			leaky, fixed := growth[svc.Name+"/leaky"], growth[svc.Name+"/fixed"]
			t.Logf("%-20s goroutines/min leaky %8.1f fixed %8.1f   live heap B/s leaky %10.0f fixed %10.0f",
				svc.Name, leaky, fixed, heap[svc.Name+"/leaky"], heap[svc.Name+"/fixed"])
			if svc.Kind == leaks.KindGoroutine && !(leaky > 0 && leaky > fixed) {
				t.Errorf("%s: goroutine growth leaky %.1f/min, fixed %.1f/min: the panel does not show the leak", svc.Name, leaky, fixed)
			}
		}
	})

	// What is left reads the services' /metrics alone: the traffic and
	// Prometheus's scrapes stop, instead of taking the CPU the promtools
	// need until the test ends.
	cancel()
	traffic.Wait()
	prom.proc.Stop(t)

	t.Run("promtool check metrics", func(t *testing.T) {
		// A promtool takes 0.1 s of CPU and up to a second to get going
		// on a busy machine: eight at once instead of 38 in a row.
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for _, s := range services {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				body, err := get(s.Metrics)
				if err != nil {
					t.Errorf("%s (%s): %v", s.Name, s.Variant, err)
					return
				}
				cmd := exec.Command(promtool, "check", "metrics")
				cmd.Stdin = bytes.NewReader(body)
				if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
					t.Errorf("%s (%s): promtool check metrics: %v\n%s", s.Name, s.Variant, err, out)
				}
			})
		}
		wg.Wait()
	})
}

// panelValues evaluates the first query of the panel titled title (all
// jobs and instances, growth window testGrowthWindow) at this instant, by
// service/variant.
func panelValues(t *testing.T, prom *promAPI, d lintDashboard, title string) map[string]float64 {
	t.Helper()
	vars := map[string]string{"job": allValue, "instance": allValue, "growth_window": testGrowthWindow, "__rate_interval": testRateInterval}
	for _, p := range d.Panels {
		if p.Title != title || len(p.Targets) == 0 {
			continue
		}
		expr, err := substitute(p.Targets[0].Expr, vars)
		if err != nil {
			t.Fatal(err)
		}
		res, err := prom.query(expr)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		values := map[string]float64{}
		for _, r := range res {
			v, _ := strconv.ParseFloat(r.value(), 64)
			values[r.Metric["service"]+"/"+r.Metric["variant"]] = v
		}
		return values
	}
	t.Fatalf("%s has no panel %q", d.UID, title)
	return nil
}

// checkDashboardQueries resolves the dashboard's variables the way Grafana
// does (label_values through the series API) and runs every panel query.
func checkDashboardQueries(t *testing.T, prom *promAPI, d lintDashboard) {
	vars := map[string]string{
		"__rate_interval": testRateInterval,
		"__interval":      testScrapeInterval,
		"__range":         "1m",
	}
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			vars[v.Name] = "(datasource)"
		case "interval":
			vars[v.Name] = testGrowthWindow
		case "query":
			query, err := substitute(v.Query, vars)
			if err != nil {
				t.Fatalf("variable %s: %v", v.Name, err)
			}
			values, err := prom.labelValues(query)
			if err != nil {
				t.Fatalf("variable %s: %s: %v", v.Name, query, err)
			}
			if len(values) == 0 {
				t.Fatalf("variable %s: %s has no values", v.Name, query)
			}
			if v.Multi {
				vars[v.Name] = v.AllValue // the dashboards default to All
			} else {
				vars[v.Name] = regexp.QuoteMeta(values[0])
			}
			t.Logf("$%s = %s (%d values)", v.Name, vars[v.Name], len(values))
		default:
			t.Fatalf("variable %s has type %s, which this test cannot resolve", v.Name, v.Type)
		}
	}
	queries := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if tg.Expr == "" {
				continue // a Pyroscope query; checked in TestLint
			}
			queries++
			expr, err := substitute(tg.Expr, vars)
			if err != nil {
				t.Errorf("%q: %v", p.Title, err)
				continue
			}
			series, err := prom.queryRange(expr, time.Minute, time.Second)
			switch {
			case err != nil:
				t.Errorf("%q %s: %s: %v", p.Title, tg.RefID, expr, err)
			case series == 0:
				t.Errorf("%q %s: %s returned no series", p.Title, tg.RefID, expr)
			}
		}
	}
	if queries == 0 {
		t.Error("no PromQL queries found")
	}
	t.Logf("%d panel queries run", queries)
}

var variableRef = regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)

// substitute replaces Grafana variables ($name, ${name}) in s and fails on
// one the dashboard does not define.
func substitute(s string, vars map[string]string) (string, error) {
	var missing []string
	out := variableRef.ReplaceAllStringFunc(s, func(m string) string {
		sub := variableRef.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		v, ok := vars[name]
		if !ok {
			missing = append(missing, name)
			return m
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("undefined variables %v in %s", missing, s)
	}
	return out, nil
}

// shortenScrapeInterval makes the exported config scrape every second, so
// the test needs seconds rather than minutes of data.
func shortenScrapeInterval(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^(\s*(scrape|evaluation)_interval:) \S+$`)
	if n := len(re.FindAll(data, -1)); n != 2 {
		t.Fatalf("expected scrape_interval and evaluation_interval in %s, found %d", path, n)
	}
	data = re.ReplaceAll(data, []byte("$1 "+testScrapeInterval))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// startedService is one entry of 'run --all --output json'.
type startedService struct {
	Name    string `json:"name"`
	Variant string `json:"variant"`
	URL     string `json:"url"`
	Metrics string `json:"metrics"`
}

// startAll runs 'leaklab run --all --variants both' and stops it (checking
// that it exits cleanly on SIGTERM) when the test ends.
func startAll(t *testing.T, bin, targetsFile string) []startedService {
	t.Helper()
	base := testbin.FreePortRange(t, 2*len(leaks.All()))
	var report struct {
		Services    []startedService `json:"services"`
		TargetsFile string           `json:"targets_file"`
	}
	p := testbin.StartJSON(t, exec.Command(bin, "run", "--all", "--variants", "both", "--base-port", strconv.Itoa(base),
		"--targets-file", targetsFile, "--max-leak", "32MiB", "--quiet", "--output", "json"), &report)
	t.Cleanup(func() { p.Stop(t) })
	if report.TargetsFile != targetsFile {
		t.Errorf("targets_file = %q, want %q", report.TargetsFile, targetsFile)
	}
	return report.Services
}

// drive sends a bounded trickle of requests to the service's first
// endpoint until ctx ends: enough for the RED panels to have data. Four a
// second: each rate window (4 s) holds over a dozen requests, and the
// requests were most of the 38 services' CPU at ten a second (cpu-bound
// spends milliseconds on each).
func drive(ctx context.Context, s startedService) {
	svc, err := leaks.Lookup(s.Name)
	if err != nil {
		return
	}
	client := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < 600; i++ {
		req, err := svc.Endpoints[0].Request(s.URL, i)
		if err != nil {
			return
		}
		if resp, err := client.Do(req.WithContext(ctx)); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// promAPI talks to a Prometheus over its HTTP API.
type promAPI struct {
	base string
	proc *testbin.Proc
}

func startPrometheus(t *testing.T, bin, config, storage string) *promAPI {
	t.Helper()
	addr := testbin.FreeAddr(t)
	proc := testbin.Start(t, exec.Command(bin, "--config.file="+config, "--web.listen-address="+addr,
		"--storage.tsdb.path="+storage, "--log.level=warn"))
	t.Cleanup(func() { proc.Stop(t) })
	p := &promAPI{base: "http://" + addr, proc: proc}
	waitFor(t, 30*time.Second, "prometheus ready", func() (bool, string) {
		select {
		case <-proc.Exited():
			t.Fatalf("prometheus exited (%v):\n%s", proc.Err(), proc.Stderr)
		default:
		}
		_, err := get(p.base + "/-/ready")
		return err == nil, fmt.Sprint(err)
	})
	return p
}

type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
}

func (s promSample) value() string {
	if len(s.Value) == 2 {
		v, _ := s.Value[1].(string)
		return v
	}
	return ""
}

func (p *promAPI) call(path string, params url.Values, data any) error {
	body, err := get(p.base + path + "?" + params.Encode())
	var resp struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if jerr := json.Unmarshal(body, &resp); jerr != nil {
		if err != nil {
			return err
		}
		return jerr
	}
	if resp.Status != "success" {
		return fmt.Errorf("prometheus: %s", resp.Error)
	}
	return json.Unmarshal(resp.Data, data)
}

func (p *promAPI) query(q string) ([]promSample, error) {
	var data struct {
		Result []promSample `json:"result"`
	}
	err := p.call("/api/v1/query", url.Values{"query": {q}}, &data)
	return data.Result, err
}

// queryRange runs q as Grafana's time-series panels do and returns how
// many series came back.
func (p *promAPI) queryRange(q string, span, step time.Duration) (int, error) {
	end := time.Now()
	var data struct {
		Result []json.RawMessage `json:"result"`
	}
	err := p.call("/api/v1/query_range", url.Values{
		"query": {q},
		"start": {strconv.FormatInt(end.Add(-span).Unix(), 10)},
		"end":   {strconv.FormatInt(end.Unix(), 10)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	}, &data)
	return len(data.Result), err
}

var labelValuesCall = regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)

// labelValues evaluates a Grafana label_values(selector, label) query the
// way Grafana's Prometheus datasource does, through the series API.
func (p *promAPI) labelValues(q string) ([]string, error) {
	m := labelValuesCall.FindStringSubmatch(q)
	if m == nil {
		return nil, fmt.Errorf("not a label_values(selector, label) query")
	}
	var series []map[string]string
	end := time.Now()
	err := p.call("/api/v1/series", url.Values{
		"match[]": {m[1]},
		"start":   {strconv.FormatInt(end.Add(-5*time.Minute).Unix(), 10)},
		"end":     {strconv.FormatInt(end.Unix(), 10)},
	}, &series)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, s := range series {
		if v := s[m[2]]; v != "" {
			seen[v] = true
		}
	}
	values := make([]string, 0, len(seen))
	for v := range seen {
		values = append(values, v)
	}
	sort.Strings(values)
	return values, nil
}

func get(u string) ([]byte, error) {
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return body, err
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s; last: %s", limit, what, state)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
