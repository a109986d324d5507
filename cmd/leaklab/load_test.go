package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/scale"
)

func TestLoadOptionsFromFlags(t *testing.T) {
	const url = "http://127.0.0.1:8080/"
	defaults := loadOptions{connections: 10, duration: 10 * time.Second, timeout: 5 * time.Second, method: "GET"}
	with := func(change func(o *loadOptions)) loadOptions {
		o := defaults
		change(&o)
		return o
	}
	for _, tc := range []struct {
		name string
		in   loadOptions
		want scale.LoadOptions
	}{
		{"defaults: 10s", defaults,
			scale.LoadOptions{URL: url, Method: "GET", Connections: 10, Duration: 10 * time.Second, Timeout: 5 * time.Second}},
		{"-n alone drops the default duration", with(func(o *loadOptions) { o.requests = 500 }),
			scale.LoadOptions{URL: url, Method: "GET", Connections: 10, Requests: 500, Timeout: 5 * time.Second}},
		{"-n and -d both bound", with(func(o *loadOptions) { o.requests, o.duration, o.durationSet = 500, time.Second, true }),
			scale.LoadOptions{URL: url, Method: "GET", Connections: 10, Requests: 500, Duration: time.Second, Timeout: 5 * time.Second}},
		{"open model, method, headers, body", with(func(o *loadOptions) {
			o.rate, o.method, o.body = 250, "post", "{}"
			o.headers = []string{"Content-Type: application/json", "X-A:1", "X-A: 2"}
		}), scale.LoadOptions{URL: url, Method: "POST", Connections: 10, Duration: 10 * time.Second, Timeout: 5 * time.Second, Rate: 250,
			Body: []byte("{}"), Header: http.Header{"Content-Type": {"application/json"}, "X-A": {"1", "2"}}}},
		{"keep-alive off, remote allowed", with(func(o *loadOptions) { o.noKeepAlive, o.allowRemote = true, true }),
			scale.LoadOptions{URL: url, Method: "GET", Connections: 10, Duration: 10 * time.Second, Timeout: 5 * time.Second,
				DisableKeepAlive: true, AllowRemote: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			got, err := loadOptionsFromFlags(&in, url)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestLoadBodyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(path, []byte(`{"from":"file"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	o := loadOptions{connections: 1, duration: time.Second, timeout: time.Second, method: "PUT", bodyFile: path}
	got, err := loadOptionsFromFlags(&o, "http://127.0.0.1/")
	if err != nil || string(got.Body) != `{"from":"file"}` {
		t.Fatalf("body %q, err %v", got.Body, err)
	}
}

func TestLoadUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		errLine string
	}{
		{[]string{"load"}, "load takes one URL"},
		{[]string{"load", "ftp://127.0.0.1/"}, "want http:// or https://"},
		{[]string{"load", "127.0.0.1:8080"}, "invalid URL"},
		{[]string{"load", "http://127.0.0.1:99999/"}, "bad port"},
		{[]string{"load", "http://192.0.2.1/"}, "not a loopback address; loading a remote server must be allowed (allow-remote)"},
		{[]string{"load", "-c", "0", "http://127.0.0.1/"}, "-c must be at least 1"},
		{[]string{"load", "-n", "-1", "http://127.0.0.1/"}, "request count cannot be negative"},
		{[]string{"load", "-d", "0s", "http://127.0.0.1/"}, "-d must be positive"},
		{[]string{"load", "--rate", "-3", "http://127.0.0.1/"}, "rate must be a positive number"},
		{[]string{"load", "-H", "no colon", "http://127.0.0.1/"}, "want 'Name: value'"},
		{[]string{"load", "--body", "a", "--body-file", "b", "http://127.0.0.1/"}, "not both"},
		{[]string{"load", "--body-file", "/no/such/file", "http://127.0.0.1/"}, "--body-file"},
		{[]string{"load", "-n", "ten", "http://127.0.0.1/"}, "invalid argument"},
		{[]string{"load", "--procs", "-1", "http://127.0.0.1/"}, "--procs cannot be negative"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			streams, out, errOut := testStreams()
			if code := run(tc.args, streams); code != exitUsage {
				t.Errorf("exit %d, want %d (stderr %q)", code, exitUsage, errOut)
			}
			if !strings.Contains(errOut.String(), tc.errLine) || strings.Count(strings.TrimSpace(errOut.String()), "\n") != 0 {
				t.Errorf("stderr %q: want one line mentioning %q", errOut, tc.errLine)
			}
			if out.Len() != 0 {
				t.Errorf("wrote a report on bad usage: %q", out)
			}
		})
	}
}

func TestLoadTextReport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "7") {
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	streams, out, errOut := testStreams()
	procs := runtime.GOMAXPROCS(0)
	if code := run([]string{"load", "-n", "50", "-c", "2", "--procs", "1", srv.URL + "/item/{i}"}, streams); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Errorf("GOMAXPROCS left at %d after the run, was %d", got, procs)
	}
	text := out.String()
	// /item/7 and /item/17, 27, 37, 47 are 404s.
	for _, want := range []string{"GET " + srv.URL + "/item/{i}", "2 connections, closed model", "Latency Distribution",
		"99.9%", "50 requests in", "5 errors", "[200] 45, [404] 5", "non_2xx 5", "first non_2xx: HTTP 404", "CPU per request", "Requests/sec:"} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	if errOut.Len() != 0 {
		t.Errorf("stderr is not a terminal, yet got %q", errOut)
	}
}

// loadJSON runs 'leaklab load --output json' in process and decodes its
// report. The load tests do not run in parallel: the generator's CPU per
// request is the process's.
func loadJSON(t *testing.T, args ...string) (map[string]any, string, int) {
	t.Helper()
	out, stderr, code := leaklabIn(t, t.TempDir(), append([]string{"load", "--output", "json"}, args...)...)
	var report map[string]any
	if jerr := json.Unmarshal([]byte(out), &report); jerr != nil {
		t.Fatalf("leaklab load %v printed no JSON report (%v): %s\nstderr: %s", args, jerr, out, stderr)
	}
	return report, stderr, code
}

// The JSON contract from DESIGN.md, against a real sample service driven
// by its catalog endpoint.
func TestLoadJSONContractAgainstSampleService(t *testing.T) {
	svc := testbin.StartService(t, "unbounded-cache", true, "--quiet")
	entry, err := leaks.Lookup("unbounded-cache")
	if err != nil {
		t.Fatal(err)
	}
	ep := entry.Endpoints[0]
	report, stderr, code := loadJSON(t, "-n", "300", "-c", "4", "-m", ep.Method, svc.URL+ep.Path)
	if code != exitOK {
		t.Fatalf("leaklab load: exit %d\n%s", code, stderr)
	}
	num := func(v any) float64 {
		f, ok := v.(float64)
		if !ok {
			t.Fatalf("%v is not a number in %v", v, report)
		}
		return f
	}
	if num(report["requests"]) != 300 || num(report["errors"]) != 0 {
		t.Errorf("requests %v errors %v, want 300 and 0", report["requests"], report["errors"])
	}
	if num(report["duration_seconds"]) <= 0 || num(report["rps"]) <= 0 {
		t.Errorf("duration_seconds %v rps %v", report["duration_seconds"], report["rps"])
	}
	lat, _ := report["latency_seconds"].(map[string]any)
	prev := 0.0
	for _, q := range []string{"p50", "p90", "p99", "p999", "max"} {
		v := num(lat[q])
		if v <= 0 || v < prev {
			t.Errorf("latency_seconds.%s = %v after %v: want positive and not below the lower percentile", q, v, prev)
		}
		prev = v
	}
	if status, _ := report["status"].(map[string]any); len(status) != 1 || num(status["200"]) != 300 {
		t.Errorf("status = %v, want {\"200\": 300}", report["status"])
	}
	if num(report["generator_cpu_seconds_per_request"]) <= 0 {
		t.Errorf("generator_cpu_seconds_per_request = %v", report["generator_cpu_seconds_per_request"])
	}
}

// A dead target is reported, not hung on: the JSON report shows the
// refusals and the exit code says nothing answered.
func TestLoadRefusedTargetExitsNonZeroWithReport(t *testing.T) {
	url := "http://" + testbin.FreeAddr(t) + "/"
	report, stderr, code := loadJSON(t, "-n", "10", "-c", "2", url)
	if code != exitFailure {
		t.Fatalf("exit %d, want %d", code, exitFailure)
	}
	if classes, _ := report["error_classes"].(map[string]any); classes["refused"] != 10.0 {
		t.Errorf("error_classes = %v, want 10 refused", report["error_classes"])
	}
	if !strings.Contains(stderr, "no request got a response (refused 10)") {
		t.Errorf("stderr %q does not say why", stderr)
	}
}

// -d bounds a run even when the server never answers: the run ends
// within the timeout after the bound, and every request is a timeout.
func TestLoadDurationBoundAgainstHungServer(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	streams, out, errOut := testStreams()
	code := run([]string{"load", "--output", "json", "-d", "200ms", "--timeout", "300ms", "-c", "3", srv.URL}, streams)
	if code != exitFailure {
		t.Errorf("exit %d, want %d: nothing answered (stderr %q)", code, exitFailure, errOut)
	}
	var report scale.LoadReport
	if err := json.NewDecoder(io.MultiReader(out)).Decode(&report); err != nil {
		t.Fatal(err)
	}
	if report.Requests != 3 || report.ErrorClasses["timeout"] != 3 {
		t.Errorf("requests %d, errors %v; want the 3 in-flight requests timed out", report.Requests, report.ErrorClasses)
	}
}

// Ctrl-C during a run in which nothing answered still fails: the report of
// what was measured, then one line saying nothing got a response. The real
// binary, interrupted with SIGINT.
func TestLoadInterruptedWithoutResponsesFails(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	cmd := exec.Command(testbin.Build(t), "load", "-d", "1m", "-c", "2", "--output", "json", srv.URL)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-arrived:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("no request arrived; stderr %q", stderr.String())
	}
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitFailure {
		t.Fatalf("exit: %v, want %d (stderr %q)", err, exitFailure, stderr.String())
	}
	var report scale.LoadReport
	if err := json.Unmarshal([]byte(stdout.String()), &report); err != nil || !report.Interrupted || report.Responses != 0 {
		t.Errorf("report %+v (%v), want an interrupted run without responses", report, err)
	}
	if !strings.Contains(stderr.String(), "before any request got a response") {
		t.Errorf("stderr %q does not say why", stderr.String())
	}
}

// The open model's JSON says how well the schedule was kept; the closed
// model's has no schedule.
func TestLoadOpenModelJSONSchedule(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	for _, tc := range []struct {
		args          []string
		wantScheduled int64 // 0: no schedule in the report
	}{
		{[]string{"--rate", "200", "-d", "500ms", "-c", "4"}, 100},
		{[]string{"-n", "20"}, 0},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			streams, out, errOut := testStreams()
			if code := run(append([]string{"load", "--output", "json", srv.URL}, tc.args...), streams); code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var report scale.LoadReport
			if err := json.Unmarshal(out.Bytes(), &report); err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.wantScheduled == 0 && report.Schedule != nil:
				t.Errorf("closed model reports a schedule: %+v", report.Schedule)
			case tc.wantScheduled > 0 && (report.Schedule == nil || report.Schedule.Scheduled != tc.wantScheduled):
				t.Errorf("schedule %+v, want %d scheduled", report.Schedule, tc.wantScheduled)
			case report.Schedule != nil && report.Requests+report.Schedule.Unsent != report.Schedule.Scheduled:
				t.Errorf("requests %d + unsent %d != scheduled %d", report.Requests, report.Schedule.Unsent, report.Schedule.Scheduled)
			}
		})
	}
}

// Progress goes to stderr only when it is a terminal, and is cleared
// before the report.
func TestLoadProgressOnTerminal(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Millisecond)
	}))
	defer srv.Close()
	streams, out, errOut := testStreams()
	streams.ErrIsTerminal = true
	if code := run([]string{"load", "-c", "2", "-d", "1500ms", srv.URL}, streams); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	progress := errOut.String()
	if !strings.Contains(progress, "req/s") || !strings.HasSuffix(progress, "\r\033[K") {
		t.Errorf("stderr %q: want progress lines, then the line cleared", progress)
	}
	if strings.Contains(out.String(), "\r") {
		t.Errorf("progress leaked into the report: %q", out)
	}
}
