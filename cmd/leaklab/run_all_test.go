package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/leaks"
)

// Bad --all command lines are refused before any service starts.
func TestRunAllUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		errLine string
	}{
		{[]string{"run", "--all", "unbounded-cache"}, "run --all takes no service name"},
		{[]string{"run", "--all", "--variants", "twin"}, "--variants must be leaky, fixed or both"},
		{[]string{"run", "--all", "--fixed", "--variants", "both"}, "disagree"},
		{[]string{"run", "--all", "--addr", "127.0.0.1:9000"}, "with --all use --base-port"},
		{[]string{"run", "--all", "--public"}, "--public is not available with --all"},
		{[]string{"run", "--all", "--base-port", "65530"}, "must lie in 1-65535"},
		{[]string{"run", "--all", "--base-port", "0"}, "must lie in 1-65535"},
		{[]string{"run", "--all", "--max-leak", "lots"}, "max-leak: "},
		{[]string{"run", "--all", "--targets-file", "/no/such/dir/targets.json"}, "directory /no/such/dir does not exist"},
		{[]string{"run", "unbounded-cache", "--variants", "both"}, "--variants works with --all only"},
		{[]string{"run", "unbounded-cache", "--targets-file", "t.json"}, "--targets-file works with --all only"},
		{[]string{"run", "unbounded-cache", "--pyroscope-upload-rate", "5s"}, "--pyroscope-upload-rate takes a positive duration, with --pyroscope"},
		{[]string{"run", "unbounded-cache", "--pyroscope", "http://127.0.0.1:4040", "--pyroscope-upload-rate", "-1s"}, "positive duration"},
	} {
		t.Run(strings.Join(tc.args[1:], " "), func(t *testing.T) {
			streams, out, errOut := testStreams()
			if got := run(tc.args, streams); got != exitUsage {
				t.Errorf("exit code %d, want %d (stderr: %s)", got, exitUsage, errOut)
			}
			if !strings.Contains(errOut.String(), tc.errLine) {
				t.Errorf("stderr %q does not mention %q", errOut, tc.errLine)
			}
			if out.Len() > 0 {
				t.Errorf("printed a report: %s", out)
			}
		})
	}
}

type runAllLine struct {
	Services []struct {
		Name    string `json:"name"`
		Variant string `json:"variant"`
		URL     string `json:"url"`
		PID     int    `json:"pid"`
	} `json:"services"`
	TargetsFile string `json:"targets_file"`
}

// startRunAll runs the real binary with --all and reads its JSON line.
func startRunAll(t *testing.T, extra ...string) (*testbin.Proc, runAllLine) {
	t.Helper()
	n := len(leaks.All())
	base := testbin.FreePortRange(t, n)
	args := append([]string{"run", "--all", "--base-port", strconv.Itoa(base), "--quiet", "--max-leak", "16MiB", "--output", "json"}, extra...)
	var report runAllLine
	p := testbin.StartJSON(t, exec.Command(testbin.Build(t), args...), &report)
	if len(report.Services) != n {
		t.Fatalf("started %d services, want %d", len(report.Services), n)
	}
	for i, s := range report.Services {
		if want := "http://127.0.0.1:" + strconv.Itoa(base+i); s.URL != want {
			t.Errorf("%s listens on %s, want %s (consecutive from --base-port)", s.Name, s.URL, want)
		}
	}
	return p, report
}

// alive reports whether pid runs; a zombie (dead, not yet reaped by
// whoever inherited it) does not count.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses: "123 (leaklab) Z ...".
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

// waitGone polls until every pid has exited (or become a zombie reaped by
// its parent's exit).
func waitGone(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for _, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Errorf("service process %d still runs", pid)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// run --all --fixed: every service in its own process, each answering on
// its own port, the targets file naming them all, and a clean stop of all
// of them on SIGTERM.
func TestRunAllStartsEveryServiceAndStopsThem(t *testing.T) {
	targets := filepath.Join(t.TempDir(), "targets.json")
	p, report := startRunAll(t, "--fixed", "--targets-file", targets)

	pids := map[int]bool{}
	var pidList []int
	for _, s := range report.Services {
		if s.Variant != "fixed" {
			t.Errorf("%s: variant %s with --fixed", s.Name, s.Variant)
		}
		if pids[s.PID] || s.PID == p.PID() {
			t.Errorf("%s shares process %d: each service needs its own for its runtime metrics", s.Name, s.PID)
		}
		pids[s.PID] = true
		pidList = append(pidList, s.PID)
		resp, err := http.Get(s.URL + "/healthz")
		if err != nil {
			t.Errorf("%s: %v", s.Name, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s /healthz: %s", s.Name, resp.Status)
		}
	}

	data, err := os.ReadFile(targets)
	if err != nil {
		t.Fatal(err)
	}
	var groups []struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	if err := json.Unmarshal(data, &groups); err != nil {
		t.Fatalf("targets file is not file_sd JSON: %v\n%s", err, data)
	}
	if len(groups) != len(report.Services) {
		t.Fatalf("targets file has %d groups, want %d", len(groups), len(report.Services))
	}
	for i, g := range groups {
		s := report.Services[i]
		if len(g.Targets) != 1 || "http://"+g.Targets[0] != s.URL || g.Labels["service"] != s.Name || g.Labels["variant"] != "fixed" {
			t.Errorf("targets entry %v does not match %s at %s", g, s.Name, s.URL)
		}
	}

	p.Stop(t)
	waitGone(t, pidList)
	// Stopped, it leaves Prometheus an empty target list.
	if data, err := os.ReadFile(targets); err != nil || strings.TrimSpace(string(data)) != "[]" {
		t.Errorf("targets file after the stop: %q, %v; want []", data, err)
	}
}

// A service that dies takes the others down with it and makes run --all
// fail with a message naming it, rather than run on half-empty.
func TestRunAllStopsWhenAServiceDies(t *testing.T) {
	t.Parallel()
	p, report := startRunAll(t)
	victim := report.Services[3]
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := p.Wait(30 * time.Second)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitFailure {
		t.Fatalf("run --all after a service died: %v, want exit %d\n%s", err, exitFailure, p.Stderr)
	}
	if msg := p.Stderr.String(); !strings.Contains(msg, victim.Name+" (leaky)") || !strings.Contains(msg, "stopped unexpectedly") {
		t.Errorf("stderr does not say which service stopped: %s", msg)
	}
	var pids []int
	for _, s := range report.Services {
		pids = append(pids, s.PID)
	}
	waitGone(t, pids)
}

// A SIGKILLed run --all cannot stop its services itself: they die with it
// (Pdeathsig), so none is left running.
func TestRunAllServicesDieWithIt(t *testing.T) {
	p, report := startRunAll(t)
	// Surviving services would hold its output pipes open; Kill waits for
	// those at most 10s after run --all exits, then waitGone
	// names the survivors.
	p.Kill()
	var pids []int
	for _, s := range report.Services {
		pids = append(pids, s.PID)
	}
	waitGone(t, pids)
}

// A --max-leak that every service would refuse is refused once, before
// any service starts: one line and exit 2, as for 'run NAME'. Through the
// real binary, since run --all in this process would start the test
// binary as its services.
func TestRunAllRefusesZeroMaxLeak(t *testing.T) {
	for _, size := range []string{"0", "0MiB"} {
		t.Run(size, func(t *testing.T) {
			base := testbin.FreePortRange(t, len(leaks.All()))
			cmd := exec.Command(testbin.Build(t), "run", "--all", "--base-port", strconv.Itoa(base), "--max-leak", size)
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != exitUsage {
				t.Fatalf("run --all --max-leak %s: %v, want exit %d\n%s", size, err, exitUsage, errOut.String())
			}
			if got, want := errOut.String(), "leaklab: --max-leak must be more than zero\n"; got != want {
				t.Errorf("stderr %q, want the one line %q", got, want)
			}
			if out.Len() > 0 {
				t.Errorf("printed a report: %s", out.String())
			}
		})
	}
}
