package retainers_test

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/profiles/retainers"
)

// startHeldScan starts 'leaklab retainers PID --hold 1m' and waits until it
// has stopped the target, so the test can end it mid-scan.
func startHeldScan(t *testing.T, bin string, pid int) *testbin.Proc {
	t.Helper()
	p := testbin.Start(t, exec.Command(bin, "retainers", strconv.Itoa(pid), "--hold", "1m", "--no-store"))
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(p.Stderr.String(), "attached;") {
		select {
		case <-p.Exited():
			if strings.Contains(p.Stderr.String(), "ptrace denied") {
				needPtrace(t, retainers.ErrPtraceDenied)
			}
			t.Fatalf("leaklab retainers exited before attaching: %s", p.Stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("leaklab retainers did not attach within a minute: %s", p.Stderr.String())
		}
	}
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	// TracerPid is the tracing thread: one of leaklab's
	tracer := statusField(status, "TracerPid")
	if _, err := os.Stat(fmt.Sprintf("/proc/%d/task/%s", p.PID(), tracer)); tracer == "0" || err != nil {
		t.Fatalf("target's tracer is %s, not a thread of leaklab (%d): the scan is not under way", tracer, p.PID())
	}
	if state := statusField(status, "State"); !strings.HasPrefix(state, "t") {
		t.Fatalf("target state %q while held: not stopped", state)
	}
	return p
}

func TestTargetRunsAfterLeaklabIsKilledMidScan(t *testing.T) {
	t.Parallel()
	bin := testbin.Build(t)
	s := testbin.StartServiceWith(t, bin, "unbounded-cache", false)
	pid := s.PID()
	p := startHeldScan(t, bin, pid)
	p.Kill() // SIGKILL
	checkRunning(t, pid, s.URL)
	// and it can be scanned again
	if rep := scan(t, pid); len(rep.Chains) == 0 {
		t.Error("no chains after the killed scan")
	}
}

func TestTargetRunsAfterInterrupt(t *testing.T) {
	t.Parallel()
	bin := testbin.Build(t)
	s := testbin.StartServiceWith(t, bin, "unbounded-cache", false)
	pid := s.PID()
	p := startHeldScan(t, bin, pid)
	if err := syscall.Kill(p.PID(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(30 * time.Second); err == nil {
		t.Errorf("interrupted scan exited 0")
	}
	checkRunning(t, pid, s.URL)
}

// TestScanGo127Target scans a service built with Go 1.27, the other
// supported release; the toolchain is fetched by the go command.
func TestScanGo127Target(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds a service with another Go release")
	}
	const toolchain = "go1.27.3"
	needToolchain(t, toolchain)
	bin := testbin.BuildServiceToolchain(t, toolchain)
	s := testbin.StartServiceWith(t, bin, "unbounded-cache", false)
	pid := s.PID()
	drive(t, s, 0, 200)
	rep := scan(t, pid)
	checkRunning(t, pid, s.URL)
	if !strings.HasPrefix(rep.GoVersion, toolchain) {
		t.Errorf("target Go %s, want %s", rep.GoVersion, toolchain)
	}
	if len(rep.Chains) == 0 || !strings.Contains(joined(rep.Chains[0].Chain), ".entries map[string]") {
		t.Errorf("top chain on %s does not go through the cache's map: %v", toolchain, rep.Chains[:min(1, len(rep.Chains))])
	}
}
