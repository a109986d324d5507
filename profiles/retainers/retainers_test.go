package retainers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/profiles/retainers"
)

// needPtrace skips a test whose scan the kernel refused, loudly, and
// fails it in CI (LEAKLAB_CI=1), where ptrace must be allowed.
func needPtrace(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, retainers.ErrPtraceDenied) {
		return
	}
	if os.Getenv("LEAKLAB_CI") == "1" {
		t.Fatalf("ptrace is denied in CI: %v", err)
	}
	t.Skipf("SKIPPED: this test needs ptrace, which is denied here: %v", err)
}

// drive sends n requests numbered from first to the service's first
// endpoint, as many at once as the catalog's drive says.
func drive(t *testing.T, s *testbin.Service, first, n int) {
	t.Helper()
	svc, err := leaks.Lookup(s.Name)
	if err != nil {
		t.Fatal(err)
	}
	ep := svc.Endpoints[0]
	next := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range max(1, svc.Drive.Concurrency) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := send(ep, s.URL, i); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for i := first; i < first+n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

func send(ep leaks.Endpoint, base string, i int) error {
	req, err := ep.Request(base, i)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("request %d: %w", i, err)
	}
	io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// scan runs 'leaklab retainers PID --output json' and returns its report.
// The scan runs in its own process, as users run it: a process cannot
// trace its own child while os/exec waits for that child.
func scan(t *testing.T, pid int) *retainers.Report {
	t.Helper()
	var rep retainers.Report
	out, stderr, err := runLeaklab(t, "retainers", strconv.Itoa(pid), "--output", "json", "--no-store", "--top", "0")
	if err != nil {
		if strings.Contains(stderr, "ptrace denied") {
			needPtrace(t, retainers.ErrPtraceDenied)
		}
		t.Fatalf("leaklab retainers %d: %v\n%s", pid, err, stderr)
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("leaklab retainers --output json: %v\n%s", err, out)
	}
	return &rep
}

// runLeaklab runs the leaklab binary to completion.
func runLeaklab(t *testing.T, args ...string) (stdout []byte, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(testbin.Build(t), args...)
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	cmd.Env = append(os.Environ(), "LEAKLAB_HOME="+t.TempDir())
	done := make(chan struct{})
	timer := time.AfterFunc(3*time.Minute, func() { _ = cmd.Process.Kill(); close(done) })
	stdout, err = cmd.Output()
	if !timer.Stop() {
		<-done
		t.Fatalf("leaklab %v did not finish within 3 minutes", args)
	}
	return stdout, errBuf.String(), err
}

// checkRunning fails unless pid is neither traced nor stopped and its
// service answers /healthz, polling for a while: after a kill, the kernel
// and the guard need a moment.
func checkRunning(t *testing.T, pid int, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatalf("target gone: %v", err)
		}
		tracer, state := statusField(status, "TracerPid"), statusField(status, "State")
		last = fmt.Sprintf("TracerPid %s, State %s", tracer, state)
		if tracer == "0" && !strings.HasPrefix(state, "T") && !strings.HasPrefix(state, "t") && healthy(url) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("target PID %d did not come back: %s; /healthz ok: %v", pid, last, healthy(url))
}

func healthy(url string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(url + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func statusField(status []byte, name string) string {
	for _, line := range strings.Split(string(status), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func joined(c []string) string { return strings.Join(c, " → ") }

func TestScanNamesTheMapThatHoldsTheLeak(t *testing.T) {
	// Not parallel (it takes seconds): alongside the other scans under
	// -race, its top chain once held 241 of the 300 pages it wants, and
	// without -race, under a load average of 17, 229.
	s := testbin.StartService(t, "unbounded-cache", false)
	pid := s.PID()
	if got, err := retainers.PIDForURL(s.URL); err != nil || got != pid {
		t.Fatalf("PIDForURL(%s) = %d, %v; want %d", s.URL, got, err, pid)
	}
	const pages = 300 // about 32 KiB each
	drive(t, s, 0, pages)
	rep := scan(t, pid)
	checkRunning(t, pid, s.URL)

	if rep.PID != pid || !strings.HasPrefix(rep.GoVersion, "go1.") || rep.PauseSeconds <= 0 {
		t.Errorf("report header: pid %d, go %q, pause %v", rep.PID, rep.GoVersion, rep.PauseSeconds)
	}
	if rep.BytesAttributed <= 0 || uint64(rep.BytesAttributed) > rep.HeapBytes {
		t.Errorf("attributed %d bytes of a %d-byte heap", rep.BytesAttributed, rep.HeapBytes)
	}
	if len(rep.Chains) == 0 {
		t.Fatal("no chains")
	}
	top := rep.Chains[0]
	if !retainers.ChainNames(top.Chain, "leaks.pageCache.entries") {
		t.Errorf("top chain does not go through the cache's entries map:\n%s", joined(top.Chain))
	}
	if top.Objects < pages*9/10 || top.Bytes < pages*9/10*30<<10 {
		t.Errorf("top chain holds %d objects, %d bytes; want nearly all of the %d cached pages", top.Objects, top.Bytes, pages)
	}
	var sum int64
	for _, c := range rep.Chains {
		sum += c.Bytes
	}
	if sum != rep.BytesAttributed {
		t.Errorf("chains add up to %d bytes, report says %d: an object was counted twice or not at all", sum, rep.BytesAttributed)
	}

	p := rep.Profile()
	if err := p.CheckValid(); err != nil {
		t.Fatal(err)
	}
	if len(p.Sample) != len(rep.Chains) || p.SampleType[0].Type != "inuse_space" || p.SampleType[1].Type != "inuse_objects" {
		t.Fatalf("profile: %d samples for %d chains, sample types %v", len(p.Sample), len(rep.Chains), p.SampleType)
	}
	s0 := p.Sample[0]
	if leaf, root := s0.Location[0].Line[0].Function.Name, s0.Location[len(s0.Location)-1].Line[0].Function.Name; leaf != top.Chain[len(top.Chain)-1] || root != top.Chain[0] {
		t.Errorf("profile stack is not the chain reversed: leaf %q root %q, chain %s", leaf, root, joined(top.Chain))
	}
}

// growingQuick are the heap leaks whose growing chain go test ./...
// checks (TestGrowingChainNamesEachHeapLeak): one of each shape of
// retainer, a map of the service's own (unbounded-cache), a third-party
// type's map (label-cardinality, in the Prometheus client), a subslice
// that keeps its backing array (subslice-retention), and a queue whose
// worker drains it while it grows (unbounded-queue: its backlog grows
// only while the drive outpaces the worker's 20 jobs a second, so it is
// not scanned in the long tier beside the whole catalog's watches, where
// a starved drive once left it flat between the two scans). The long
// tier (testbin.LongTier, which CI runs) checks the catalog's other heap
// leaks (TestGrowingChainNamesOtherHeapLeaks). Each leak is two scans,
// about 4 CPU-s in all (a scan reads the target's debug info): all eight
// were most of the package's CPU.
var growingQuick = map[string]bool{"unbounded-cache": true, "label-cardinality": true, "subslice-retention": true, "unbounded-queue": true}

func TestGrowingChainNamesEachHeapLeak(t *testing.T) {
	// Each scan is of a process of its own, and mostly waits (on the
	// service under its drive, on the scan's pause): alongside the others.
	t.Parallel()
	t.Logf("%d of the catalog's heap leaks (%v); the others in the long tier: %s=1 go test ./profiles/retainers -run TestGrowingChainNamesOtherHeapLeaks",
		len(growingQuick), growingQuick, testbin.LongTierVar)
	checkGrowingChains(t, true)
}

// TestGrowingChainNamesOtherHeapLeaks is TestGrowingChainNamesEachHeapLeak
// for the heap leaks of the catalog that go test ./... leaves out.
func TestGrowingChainNamesOtherHeapLeaks(t *testing.T) {
	testbin.NeedLongTier(t, "the growing chains of the heap leaks not in growingQuick")
	t.Parallel()
	checkGrowingChains(t, false)
}

// checkGrowingChains scans each heap leak of the catalog that is (quick)
// or is not in growingQuick after its warm-up and after its drive, and
// wants the chain that grew most to name the catalog's retainer.
func checkGrowingChains(t *testing.T, quick bool) {
	for _, svc := range leaks.All() {
		if svc.Kind != leaks.KindHeap || growingQuick[svc.Name] != quick {
			continue
		}
		t.Run(svc.Name, func(t *testing.T) {
			t.Parallel()
			s := testbin.StartService(t, svc.Name, false)
			pid := s.PID()
			drive(t, s, 0, svc.Drive.Warmup)
			base := scan(t, pid)
			drive(t, s, svc.Drive.Warmup, svc.Drive.Requests)
			cur := scan(t, pid)
			checkRunning(t, pid, s.URL)
			grown := retainers.Growth(base.Chains, cur.Chains)
			if len(grown) == 0 {
				t.Fatal("no chain grew")
			}
			if !retainers.ChainNames(grown[0].Chain, svc.Retainer) {
				t.Errorf("top growing chain (+%d bytes) does not name %q:\n%s", grown[0].DeltaBytes, svc.Retainer, joined(grown[0].Chain))
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	t.Run("not Go", func(t *testing.T) {
		p := testbin.Start(t, exec.Command("sleep", "60"))
		wantRefusal(t, p.PID(), "is not a Go program")
	})
	t.Run("no such process", func(t *testing.T) {
		wantRefusal(t, 1<<30, "no process with PID")
	})
	t.Run("own child", func(t *testing.T) {
		p := testbin.Start(t, exec.Command("sleep", "60"))
		_, err := retainers.Scan(context.Background(), p.PID(), retainers.Options{})
		var r *retainers.Refusal
		if !errors.As(err, &r) || !strings.Contains(err.Error(), "is a child of this process") {
			t.Fatalf("scanning our own child: %v", err)
		}
	})
	t.Run("pause over the limit", func(t *testing.T) {
		t.Parallel()
		s := testbin.StartService(t, "unbounded-cache", false)
		wantRefusal(t, s.PID(), "over --max-pause 1ms", "--max-pause", "1ms")
		checkRunning(t, s.PID(), s.URL)
	})
	t.Run("already traced", func(t *testing.T) {
		t.Parallel()
		bin := testbin.Build(t)
		s := testbin.StartServiceWith(t, bin, "unbounded-cache", false)
		pid := s.PID()
		first := startHeldScan(t, bin, pid) // holds the target as a debugger would
		wantRefusal(t, pid, fmt.Sprintf("is already traced by PID %d", first.PID()))
		first.Kill()
		checkRunning(t, pid, s.URL)
	})
	t.Run("stripped", func(t *testing.T) {
		t.Parallel()
		if testing.Short() {
			t.Skip("builds a stripped service")
		}
		bin := testbin.BuildServiceLdflags(t, "-s -w")
		s := testbin.StartServiceWith(t, bin, "unbounded-cache", false)
		wantRefusal(t, s.PID(), "has no DWARF debug info")
	})
}

// wantRefusal runs 'leaklab retainers PID' and wants exit 1 with one line
// on stderr that contains want.
func wantRefusal(t *testing.T, pid int, want string, extra ...string) {
	t.Helper()
	out, stderr, err := runLeaklab(t, append([]string{"retainers", strconv.Itoa(pid)}, extra...)...)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("leaklab retainers %d: %v, want exit 1; stderr:\n%s", pid, err, stderr)
	}
	if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 || !strings.Contains(lines[0], want) {
		t.Errorf("stderr %q: want one line containing %q", stderr, want)
	}
	if len(out) != 0 {
		t.Errorf("a refusal printed a report: %s", out)
	}
}

func TestSupportedVersions(t *testing.T) {
	for v, want := range map[string]bool{
		"go1.26.8": true, "go1.26": true, "go1.27.3": true, "go1.27rc1": true, "go1.26.1-X:nodwarf5": true,
		"go1.25.4": false, "go1.2": false, "go1.260": false, "go1.28.0": false, "devel go1.27-abc": false,
	} {
		if got := retainers.Supported(v); got != want {
			t.Errorf("Supported(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"foo"}, {"0"}, {"123", "--max-depth", "0"}, {}} {
		_, stderr, err := runLeaklab(t, append([]string{"retainers"}, args...)...)
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("leaklab retainers %v: %v, stderr %q; want exit 2 and one line", args, err, stderr)
		}
	}
}

func TestChainNames(t *testing.T) {
	chain := []string{"leaks.cache", "map[string]*leaks.page", "[value] leaks.page", ".body []uint8"}
	for retainer, want := range map[string]bool{
		"leaks.cache": true, "leaks.page.body": true, "leaks.page.head": false, "leaks.other.body": false, "body": false, "": false,
	} {
		if got := retainers.ChainNames(chain, retainer); got != want {
			t.Errorf("ChainNames(%q) = %v, want %v", retainer, got, want)
		}
	}
}

func TestPIDForURLRejects(t *testing.T) {
	for _, u := range []string{"http://10.1.2.3:8080", "not a url", "http://127.0.0.1:99999", "http://127.0.0.1:1"} {
		if _, err := retainers.PIDForURL(u); err == nil {
			t.Errorf("PIDForURL(%q) found a process", u)
		}
	}
}
