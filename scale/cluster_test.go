package scale_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/scale"
)

// markerVar tags every process a test starts, in its environment, so the
// test can find survivors in /proc whoever their parent turned out to be.
const markerVar = "LEAKLAB_SCALE_TEST_MARKER"

var markerSeq atomic.Int64

func newMarker() string {
	return fmt.Sprintf("%d-%d-%d", os.Getpid(), time.Now().UnixNano(), markerSeq.Add(1))
}

// serviceTarget runs a catalog service in each worker with the real
// leaklab binary, tagged with marker.
func serviceTarget(t *testing.T, service, marker string) scale.Target {
	bin := testbin.Build(t)
	return scale.Target{
		Name:          service,
		Argv:          []string{bin, "scale", "worker", service, "--fixed"},
		Env:           []string{markerVar + "=" + marker},
		ReadyPath:     "/healthz",
		ReportsCounts: true,
	}
}

// launch starts a cluster and, at the end of the test, stops it and
// checks that no process is left and the port is free again.
func launch(t *testing.T, opts scale.LaunchOptions, marker string) *scale.Cluster {
	t.Helper()
	c, err := scale.Launch(context.Background(), opts)
	if err != nil {
		t.Fatalf("Launch %s: %v", opts.Strategy, err)
	}
	// The leftover check below must be able to see the workers at all.
	if n := len(survivors(marker)); n != len(c.PIDs()) {
		t.Fatalf("%d processes carry the marker, want the %d workers", n, len(c.PIDs()))
	}
	t.Cleanup(func() {
		addr := c.Addr()
		c.Stop()
		assertNoneLeft(t, marker)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("after Stop, %s is still taken: %v", addr, err)
			return
		}
		ln.Close()
	})
	return c
}

// survivors lists the processes whose environment carries marker.
func survivors(marker string) []int {
	want := []byte(markerVar + "=" + marker)
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		stat, _ := os.ReadFile("/proc/" + e.Name() + "/stat")
		if bytes.Contains(stat, []byte(") Z ")) {
			continue // a zombie holds nothing; its parent reaps it
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if bytes.Equal(kv, want) {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// assertNoneLeft polls /proc until no process carries marker; processes
// being killed may take a moment to go.
func assertNoneLeft(t *testing.T, marker string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := survivors(marker)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			var desc []string
			for _, pid := range left {
				cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				desc = append(desc, fmt.Sprintf("%d %q", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
				syscall.Kill(pid, syscall.SIGKILL) // do not leave them to the next test
			}
			t.Fatalf("processes left behind: %s", strings.Join(desc, "; "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// driveUntilSpread sends batches of requests, a new connection for each,
// until every worker has served some or the deadline passes, and returns
// the last snapshot.
func driveUntilSpread(t *testing.T, c *scale.Cluster, path string) []scale.WorkerSnapshot {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := scale.Load(context.Background(), scale.LoadOptions{
			URL: c.URL() + path, Connections: 8, Requests: 200, DisableKeepAlive: true,
			// Whether every worker serves, not how fast: under the race
			// detector, four clusters at once and the round-robin master
			// in this process, 4 of 200 requests once took over the
			// default 5 s (CI, 2026-12-04).
			Timeout: 30 * time.Second,
		})
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		if res.Errors > 0 {
			t.Fatalf("%s: %d of %d requests failed: %v", c.Strategy(), res.Errors, res.Requests, res.ErrorExamples)
		}
		snap := c.Snapshot()
		served := 0
		for _, w := range snap {
			if !w.CountsKnown {
				t.Fatalf("%s: worker %d (pid %d) did not report its counts", c.Strategy(), w.Index, w.PID)
			}
			if w.Counts.Requests > 0 {
				served++
			}
		}
		if served == len(snap) {
			return snap
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: after 30s only %d of %d workers served requests: %+v", c.Strategy(), served, len(snap), snap)
		}
	}
}

// Every strategy serves requests, and every multi-process strategy
// spreads them over all of its workers.
func TestStrategiesServeAndSpread(t *testing.T) {
	t.Parallel() // every cluster has its own port, and its marker
	for _, s := range scale.AllStrategies {
		t.Run(string(s), func(t *testing.T) {
			t.Parallel()
			marker := newMarker()
			c := launch(t, scale.LaunchOptions{Target: serviceTarget(t, "cpu-bound", marker), Strategy: s, Workers: 2}, marker)
			snap := driveUntilSpread(t, c, "/tags?doc={i}")
			want := 2
			if s == scale.Single {
				want = 1
			}
			if len(snap) != want {
				t.Fatalf("%d worker processes, want %d", len(snap), want)
			}
			pids := map[int]bool{}
			var cpu time.Duration
			for _, w := range snap {
				pids[w.PID] = true
				cpu += w.CPU
				if w.Counts.PID != w.PID {
					t.Errorf("worker %d: master knows pid %d, the worker says %d", w.Index, w.PID, w.Counts.PID)
				}
				if w.PeakRSS <= 0 {
					t.Errorf("worker %d: peak RSS %d from /proc, want it positive", w.Index, w.PeakRSS)
				}
				if s == scale.RoundRobin && w.Handed < w.Counts.Connections {
					t.Errorf("worker %d accepted %d connections but the master handed it %d", w.Index, w.Counts.Connections, w.Handed)
				}
			}
			if len(pids) != want {
				t.Errorf("workers share processes: %v", pids)
			}
			// /proc counts CPU in 10ms ticks, so only the sum over hundreds
			// of requests is sure to be positive.
			if cpu <= 0 {
				t.Errorf("the workers' CPU time from /proc is %v after serving requests", cpu)
			}
			if got := c.Restarts(); got != 0 {
				t.Errorf("%d restarts in a healthy cluster", got)
			}
			checkMasterCPU(t, c)
		})
	}
}

// checkMasterCPU: the round-robin master's thread has a CPU time of its
// own once it has accepted enough connections (/proc counts 10 ms ticks);
// the other strategies have no master.
func checkMasterCPU(t *testing.T, c *scale.Cluster) {
	t.Helper()
	if c.Strategy() != scale.RoundRobin {
		if got := c.MasterCPU(); got != 0 {
			t.Errorf("%s has no master, yet MasterCPU is %v", c.Strategy(), got)
		}
		return
	}
	deadline := time.Now().Add(30 * time.Second)
	for c.MasterCPU() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the round-robin master's thread shows no CPU time after 30s of new connections")
		}
		if _, err := scale.Load(context.Background(), scale.LoadOptions{URL: c.URL() + "/tags?doc={i}", Connections: 8, Requests: 500, DisableKeepAlive: true}); err != nil {
			t.Fatal(err)
		}
	}
}

// A worker killed under a multi-process strategy is restarted, counted,
// and serves again.
func TestCrashedWorkerIsRestarted(t *testing.T) {
	t.Parallel()
	for _, s := range []scale.Strategy{scale.ReusePort, scale.RoundRobin, scale.SharedFD} {
		t.Run(string(s), func(t *testing.T) {
			t.Parallel()
			marker := newMarker()
			c := launch(t, scale.LaunchOptions{Target: serviceTarget(t, "cpu-bound", marker), Strategy: s, Workers: 2}, marker)
			victim := c.PIDs()[1]
			if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(15 * time.Second)
			for {
				pids := c.PIDs()
				if c.Restarts() == 1 && pids[1] != 0 && pids[1] != victim {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after 15s: restarts %d, pids %v (killed %d)", c.Restarts(), pids, victim)
				}
				time.Sleep(20 * time.Millisecond)
			}
			snap := driveUntilSpread(t, c, "/tags?doc={i}")
			if snap[1].PID == victim {
				t.Fatalf("slot 1 still reports the killed pid %d", victim)
			}
			if got := c.Restarts(); got != 1 {
				t.Errorf("restarts = %d, want 1", got)
			}
		})
	}
}

// A worker that keeps crashing right after each start is given up after
// five quick crashes, as Node's cluster users script it to be, and the
// cluster says so instead of leaving the slot silently empty.
func TestCrashLoopingWorkerIsGivenUp(t *testing.T) {
	t.Parallel()
	marker := newMarker()
	c := launch(t, scale.LaunchOptions{Target: serviceTarget(t, "cpu-bound", marker), Strategy: scale.ReusePort, Workers: 2}, marker)
	deadline := time.Now().Add(30 * time.Second)
	killed := map[int]bool{}
	for c.GaveUp() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: %d kills, restarts %d, given up %d", len(killed), c.Restarts(), c.GaveUp())
		}
		if pid := c.PIDs()[1]; pid != 0 && !killed[pid] {
			killed[pid] = true
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(5 * time.Millisecond)
	}
	restarts := c.Restarts()
	// A worker that lived past the crash-loop window before its kill (the
	// first, or one a starved machine let live) starts the count again:
	// five kills at least, and every kill but the last restarted.
	if len(killed) < 5 || restarts != len(killed)-1 {
		t.Errorf("%d kills, %d restarts before giving up; want at least 5 kills and one restart fewer", len(killed), restarts)
	}
	time.Sleep(300 * time.Millisecond) // three restart delays: none may come
	if pid := c.PIDs()[1]; pid != 0 || c.Restarts() != restarts {
		t.Errorf("slot 1 restarted after it was given up: pid %d, restarts %d", pid, c.Restarts())
	}
	if c.PIDs()[0] == 0 {
		t.Error("the healthy worker is gone too")
	}
}

// The launch errors a user can meet: each is one clear error and leaves
// no process running.
func TestLaunchRefusals(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() }) // the subtests run after this function returns
	bin := testbin.Build(t)
	cases := []struct {
		name     string
		strategy scale.Strategy
		argv     []string
		addr     string
		want     string
	}{
		{"never listens", scale.SharedFD, []string{"/bin/sh", "-c", "exec sleep 60"}, "", "did not answer"},
		{"never listens under reuseport", scale.ReusePort, []string{"/bin/sh", "-c", "exec sleep 60"}, "", "did not all listen"},
		{"exits at once", scale.RoundRobin, []string{"/bin/sh", "-c", "echo no such server >&2; exit 3"}, "", "no such server"},
		{"unknown service", scale.Single, []string{bin, "scale", "worker", "no-such-service"}, "", "unknown service"},
		{"port in use", scale.Single, []string{bin, "scale", "worker", "cpu-bound"}, taken.Addr().String(), "port is taken"},
		{"port in use under reuseport", scale.ReusePort, []string{bin, "scale", "worker", "cpu-bound"}, taken.Addr().String(), "port is taken"},
		{"public address", scale.Single, []string{bin, "scale", "worker", "cpu-bound"}, "0.0.0.0:0", "loopback only"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each waits for its own start timeout; markers keep their processes apart
			marker := newMarker()
			c, err := scale.Launch(context.Background(), scale.LaunchOptions{
				Target:   scale.Target{Name: "target", Argv: tc.argv, Env: []string{markerVar + "=" + marker}},
				Strategy: tc.strategy, Workers: 2, Addr: tc.addr, StartTimeout: 2 * time.Second,
			})
			if err == nil {
				c.Stop()
				t.Fatalf("Launch succeeded; want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q: want one line containing %q", err, tc.want)
			}
			assertNoneLeft(t, marker)
		})
	}
}
