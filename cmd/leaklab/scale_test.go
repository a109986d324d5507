package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/testbin"
	"golang.org/x/perf/benchfmt"
)

// Bad command lines are refused before any process starts.
func TestScaleUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"scale"}, "give the target"},
		{[]string{"scale", "extra"}, "scale takes no arguments"},
		{[]string{"scale", "--service", "no-such-service"}, `unknown service "no-such-service"`},
		{[]string{"scale", "--service", "cpu-bound", "--strategies", "single,forking"}, `unknown strategy "forking"`},
		{[]string{"scale", "--service", "cpu-bound", "--strategies", "single,single"}, "given twice"},
		{[]string{"scale", "--service", "cpu-bound", "--runs", "2"}, "runs must be at least 4"},
		{[]string{"scale", "--service", "cpu-bound", "--workers", "0"}, "workers must be at least 1"},
		{[]string{"scale", "--service", "cpu-bound", "-c", "0"}, "-c must be at least 1"},
		{[]string{"scale", "--service", "cpu-bound", "--addr", "0.0.0.0:0"}, "loopback only"},
		{[]string{"scale", "--service", "cpu-bound", "--benchfmt", "/no/such/dir/out.txt"}, "directory /no/such/dir does not exist"},
		{[]string{"scale", "--service", "cpu-bound", "--html", os.TempDir()}, "is a directory"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			streams, out, errOut := testStreams()
			if got := run(tc.args, streams); got != exitUsage {
				t.Errorf("exit %d, want %d; stderr %s", got, exitUsage, errOut)
			}
			line := strings.TrimSpace(errOut.String())
			if !strings.Contains(line, tc.want) || strings.Contains(line, "\n") {
				t.Errorf("stderr %q: want one line containing %q", line, tc.want)
			}
			if out.Len() > 0 {
				t.Errorf("stdout should be empty, got %s", out)
			}
		})
	}
}

// scaleMarkerVar tags the processes an end-to-end test starts.
const scaleMarkerVar = "LEAKLAB_SCALE_TEST_MARKER"

// scaleCmd prepares the real binary with a marker in its environment,
// which every worker inherits.
func scaleCmd(t *testing.T, args ...string) (*exec.Cmd, string) {
	bin := testbin.Build(t)
	marker := fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano())
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), scaleMarkerVar+"="+marker)
	return cmd, marker
}

func markedProcesses(marker string) []int {
	want := []byte(scaleMarkerVar + "=" + marker)
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		if stat, _ := os.ReadFile("/proc/" + e.Name() + "/stat"); bytes.Contains(stat, []byte(") Z ")) {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if bytes.Equal(kv, want) {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// waitMarked polls until the number of marked processes satisfies ok.
func waitMarked(t *testing.T, marker string, within time.Duration, what string, ok func(n int) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		pids := markedProcesses(marker)
		if ok(len(pids)) {
			return
		}
		if time.Now().After(deadline) {
			for _, pid := range pids {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Fatalf("%s: after %s, marked processes are %v", what, within, pids)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestScaleEndToEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bench, page := filepath.Join(dir, "scale.txt"), filepath.Join(dir, "scale.html")
	// io-bound rather than cpu-bound: its requests wait 10 ms instead of
	// burning CPU, so the 16 runs cost about a core less for the same
	// checks (the report's shape, not which strategy wins).
	cmd, marker := scaleCmd(t, "scale", "--service", "io-bound", "--fixed", "--workers", "2",
		"--runs", "4", "-d", "300ms", "--warmup", "100ms", "-c", "16",
		// A new connection per request: with keep-alive, shared-fd's racing
		// accepts can hand all 16 connections to one worker on a busy
		// machine, and this test checks that every worker serves.
		"--no-keepalive",
		"--output", "json", "--benchfmt", bench, "--html", page)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("leaklab scale: %v\n%s", err, &stderr)
	}
	waitMarked(t, marker, 10*time.Second, "after leaklab scale exited", func(n int) bool { return n == 0 })

	var rep struct {
		Results []map[string]any `json:"results"`
		Runs    []map[string]any `json:"runs"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	var strategies []string
	for _, r := range rep.Results {
		for _, field := range []string{"strategy", "workers", "rps_median", "rps_ci_low", "rps_ci_high", "p99_seconds_median",
			"p50_seconds_median", "cpu_seconds_per_request_median", "peak_rss_bytes_max", "restarts"} {
			if _, ok := r[field]; !ok {
				t.Errorf("result %v lacks %q", r["strategy"], field)
			}
		}
		strategies = append(strategies, r["strategy"].(string))
		lo, med, hi := r["rps_ci_low"].(float64), r["rps_median"].(float64), r["rps_ci_high"].(float64)
		if !(0 < lo && lo <= med && med <= hi) {
			t.Errorf("%v: interval %v <= %v <= %v does not hold", r["strategy"], lo, med, hi)
		}
		spread, _ := r["spread"].([]any)
		wantWorkers := 2.0
		if r["strategy"] == "single" {
			wantWorkers = 1
		} else if r["vs_baseline"] == nil {
			t.Errorf("%v has no comparison with single", r["strategy"])
		}
		if r["workers"] != wantWorkers || len(spread) != int(wantWorkers) {
			t.Errorf("%v: workers %v, spread over %d; want %v", r["strategy"], r["workers"], len(spread), wantWorkers)
		}
		for _, w := range spread {
			if w.(map[string]any)["requests"].(float64) <= 0 {
				t.Errorf("%v: a worker served nothing: %v", r["strategy"], spread)
			}
		}
	}
	if !slices.Equal(strategies, []string{"single", "reuseport", "roundrobin", "shared-fd"}) {
		t.Errorf("strategies %v", strategies)
	}
	var order []string
	for _, r := range rep.Runs {
		order = append(order, r["strategy"].(string))
	}
	if len(order) != 16 || order[0] != "single" || order[1] != "reuseport" || order[4] != "single" {
		t.Errorf("runs are not interleaved: %v", order)
	}

	// benchstat's own reader accepts the file, one result per run.
	f, err := os.Open(bench)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := benchfmt.NewReader(f, bench)
	results := 0
	for r.Scan() {
		switch rec := r.Result().(type) {
		case *benchfmt.Result:
			results++
			if _, ok := rec.Value("req/s"); !ok {
				t.Errorf("%s has no req/s", rec.Name)
			}
		case *benchfmt.SyntaxError:
			t.Errorf("benchfmt: %v", rec)
		}
	}
	if results != 16 {
		t.Errorf("%d benchmark results, want 16", results)
	}

	html, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(html), "<svg"); n != 2 || strings.Contains(string(html), "NaN") || strings.Contains(string(html), "<script") {
		t.Errorf("HTML report: %d charts (want 2), NaN or script present", n)
	}
}

// A --cmd target that takes its listener the documented way works under
// every strategy; here the command is leaklab's own worker.
func TestScaleCommandTarget(t *testing.T) {
	t.Parallel()
	bin := testbin.Build(t)
	cmd, marker := scaleCmd(t, "scale", "--cmd", bin+" scale worker io-bound --fixed", "--path", "/profile?user={i}",
		"--workers", "2", "--runs", "4", "-d", "200ms", "--warmup", "50ms", "-c", "8")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("leaklab scale --cmd: %v\n%s", err, &stderr)
	}
	for _, want := range []string{"single", "reuseport", "roundrobin", "shared-fd", "against single", "#1"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	waitMarked(t, marker, 10*time.Second, "after leaklab scale exited", func(n int) bool { return n == 0 })
}

// Killing leaklab outright (SIGKILL: no chance to clean up) still takes
// every worker with it.
func TestScaleKilledLeavesNoWorkers(t *testing.T) {
	t.Parallel()
	cmd, marker := scaleCmd(t, "scale", "--service", "io-bound", "--fixed", "--workers", "2",
		"--strategies", "reuseport", "--runs", "4", "-d", "60s")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// leaklab itself carries the marker too: wait for it plus two workers.
	waitMarked(t, marker, 20*time.Second, "waiting for the workers", func(n int) bool { return n >= 3 })
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	waitMarked(t, marker, 10*time.Second, "after SIGKILL to leaklab", func(n int) bool { return n == 0 })
}

// Bad targets: one line, non-zero exit, nothing left running.
func TestScaleBadTargetsEndToEnd(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"never listens", []string{"--cmd", "sleep 60", "--start-timeout", "1s"}, exitFailure, "LEAKLAB_LISTEN_FD"},
		{"crashes at start", []string{"--cmd", "echo cannot open database >&2; exit 1"}, exitFailure, "cannot open database"},
		{"port in use", []string{"--service", "cpu-bound", "--addr", taken.Addr().String()}, exitFailure, "port is taken"},
		{"unknown service", []string{"--service", "no-such-service"}, exitUsage, "unknown service"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd, marker := scaleCmd(t, append([]string{"scale", "--runs", "4", "-d", "100ms"}, tc.args...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != tc.code {
				t.Fatalf("exit %v, want %d; stderr %s", err, tc.code, &stderr)
			}
			sc := bufio.NewScanner(&stderr)
			var lines []string
			for sc.Scan() {
				lines = append(lines, sc.Text())
			}
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "leaklab: ") || !strings.Contains(lines[0], tc.want) {
				t.Errorf("stderr %q: want one 'leaklab: ' line containing %q", lines, tc.want)
			}
			if len(out) > 0 {
				t.Errorf("stdout should be empty, got %s", out)
			}
			waitMarked(t, marker, 10*time.Second, "after the refusal", func(n int) bool { return n == 0 })
		})
	}
}

// Workers that crash in the middle of runs are restarted and the report
// counts it: here every worker is killed (SIGKILL, by timeout(1)) 2.5s
// after it starts, within each 3s run. (Killed after 1.5s, a worker
// sometimes died before it was ready when the machine was busy: twice on
// 2026-12-03, once in CI's go test ./...)
func TestScaleReportCountsRestarts(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("timeout"); err != nil {
		t.Skip("needs timeout(1) from coreutils")
	}
	bin := testbin.Build(t)
	cmd, marker := scaleCmd(t, "scale", "--cmd", "timeout -s KILL 2.5 "+bin+" scale worker io-bound --fixed",
		"--path", "/profile?user={i}", "--ready-path", "/healthz", "--strategies", "reuseport",
		"--workers", "2", "--runs", "4", "-d", "3s", "--warmup", "50ms", "-c", "4", "--output", "json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("leaklab scale: %v\n%s", err, &stderr)
	}
	waitMarked(t, marker, 10*time.Second, "after leaklab scale exited", func(n int) bool { return n == 0 })
	var rep struct {
		Results []struct {
			Restarts int `json:"restarts"`
		} `json:"results"`
		Runs []struct {
			Restarts int `json:"restarts"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	sum := 0
	for _, r := range rep.Runs {
		sum += r.Restarts
	}
	if len(rep.Results) != 1 || rep.Results[0].Restarts < len(rep.Runs) || rep.Results[0].Restarts != sum {
		t.Errorf("restarts: result %+v, runs %+v; want at least one per run, adding up", rep.Results, rep.Runs)
	}
}
