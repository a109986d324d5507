package watch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/leaks/exercise"
	"github.com/leaklab/leaklab/profiles/retainers"
	"github.com/leaklab/leaklab/profiles/watch"
	"github.com/leaklab/leaklab/scale"
)

// runWatchBinary runs the leaklab binary's watch against url: a scan
// needs a process that is not the target's parent (the test is).
func runWatchBinary(t *testing.T, url string, args ...string) (stdout []byte, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(testbin.Build(t), append([]string{"watch", url}, args...)...)
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	cmd.Env = append(os.Environ(), "LEAKLAB_HOME="+t.TempDir())
	timer := time.AfterFunc(3*time.Minute, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	stdout, err := cmd.Output()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("leaklab watch: %v", err)
	}
	return stdout, errBuf.String(), code
}

// skipWithoutPtrace skips, loudly, a test whose snapshots the kernel
// refused; in CI (LEAKLAB_CI=1), where ptrace must be allowed, it fails.
func skipWithoutPtrace(t *testing.T, off string) {
	t.Helper()
	if !strings.Contains(off, retainers.ErrPtraceDenied.Error()) {
		return
	}
	if os.Getenv("LEAKLAB_CI") == "1" {
		t.Fatalf("ptrace is denied in CI: %s", off)
	}
	t.Skipf("SKIPPED: this test needs ptrace, which is denied here: %s", off)
}

// TestWatchRetainersNamesTheRetainer watches heap-leaking catalog services
// under load with --retainers and wants the culprit's suspect to carry a
// chain that goes through the catalog's retainer, found by allocation
// site (the heap profile's sampled objects), not by the fallback.
//
// The chain rests on the detector finding the culprit in a
// retainersWatchFor watch; as TestWatchCatalog, a watch whose detector
// missed it is run once more in a fresh process, so the test fails on a
// broken attribution, not on one unlucky sample draw.
func TestWatchRetainersNamesTheRetainer(t *testing.T) {
	if testing.Short() {
		t.Skip("watches two services for 16 s each; skipped with -short")
	}
	// in parallel with the package's other tests, not before them
	t.Parallel()
	for _, name := range []string{"unbounded-cache", "session-memorystore"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			svc, err := leaks.Lookup(name)
			if err != nil {
				t.Fatal(err)
			}
			var rep watch.Report
			var culprit *watch.Suspect
			for try := 1; try <= 2 && culprit == nil; try++ {
				rep, culprit = watchWithRetainers(t, svc)
				if culprit == nil {
					t.Logf("watch %d: culprit %s not among the suspects %+v", try, svc.Culprit, rep.Suspects)
				}
			}
			if culprit == nil {
				t.Fatalf("two watches missed the culprit %s", svc.Culprit)
			}
			r := rep.Retainers
			if r == nil || r.Off != "" || len(r.PauseSeconds) != 2 || r.PauseSeconds[0] <= 0 || r.PauseSeconds[1] <= 0 ||
				!strings.Contains(r.FirstID, "retainers") || !strings.Contains(r.LastID, "retainers") || r.PID <= 0 {
				t.Fatalf("retainer snapshots: %+v", r)
			}
			got := culprit.Retainer
			if got == nil {
				t.Fatalf("the culprit's suspect has no retainer chain: %+v", *culprit)
			}
			if !retainers.ChainNames(got.Chain, svc.Retainer) || got.Attribution != watch.AttributionAllocation || got.BytesGrowth <= 0 || got.ObjectsGrowth <= 0 {
				t.Errorf("culprit's chain (%s, %+d bytes, %+d objects) does not name %s:\n%s",
					got.Attribution, got.BytesGrowth, got.ObjectsGrowth, svc.Retainer, strings.Join(got.Chain, " → "))
			}
			t.Logf("pauses %v; held by %+d bytes via %s", r.PauseSeconds, got.BytesGrowth, strings.Join(got.Chain, " → "))
		})
	}
}

// retainersWatchFor is how long watchWithRetainers watches: three 30 s
// watches of each of the two services under the same load, replayed over
// their first 8, 10, 12 ... 30 s, named the culprit from 12 s on, five of
// six from 10 s, none at 8 s (2026-12-03); it was 20 s.
const retainersWatchFor = 16 * time.Second

// watchWithRetainers runs one retainersWatchFor watch with --retainers of
// a fresh process of svc under its steady load, and returns the report
// and the culprit's suspect, if found.
func watchWithRetainers(t *testing.T, svc *leaks.Service) (watch.Report, *watch.Suspect) {
	t.Helper()
	url := testbin.StartService(t, svc.Name, false).URL
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		scale.Load(ctx, exercise.SteadyLoad(svc, url, 4, 2*time.Minute))
	}()
	defer func() { cancel(); <-done }()
	out, stderr, code := runWatchBinary(t, url, "--for", retainersWatchFor.String(), "--every", "2s", "--retainers", "--output", "json")
	var rep watch.Report
	if err := json.Unmarshal(out, &rep); err != nil || (code != 0 && code != 3) {
		t.Fatalf("leaklab watch --retainers: exit %d, %v\nstdout: %s\nstderr: %s", code, err, out, stderr)
	}
	if rep.Retainers != nil {
		skipWithoutPtrace(t, rep.Retainers.Off)
	}
	for i, s := range rep.Suspects {
		if s.Function == svc.Culprit {
			return rep, &rep.Suspects[i]
		}
	}
	return rep, nil
}

// TestWatchRetainersRefused: a snapshot that cannot be taken leaves the
// watch to report, with one line saying why there are no chains.
func TestWatchRetainersRefused(t *testing.T) {
	t.Parallel()
	s := testbin.StartService(t, "unbounded-cache", false)
	t.Run("own child", func(t *testing.T) {
		// this test process is the service's parent, which cannot trace it
		rep, err := watch.Run(context.Background(), s.URL, watch.Options{Every: time.Second, For: 2 * time.Second, Retainers: &watch.RetainerOptions{}})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Snapshots < 2 || rep.Retainers == nil || !strings.Contains(rep.Retainers.Off, "is a child of this process") || len(rep.Retainers.PauseSeconds) != 0 {
			t.Errorf("%d snapshots, retainers %+v", rep.Snapshots, rep.Retainers)
		}
	})
	t.Run("pause over the limit", func(t *testing.T) {
		out, stderr, code := runWatchBinary(t, s.URL, "--for", "2s", "--every", "1s", "--retainers", "--retainers-max-pause", "1ms")
		if code != 0 {
			t.Fatalf("exit %d, want 0 (no suspect)\nstdout: %s\nstderr: %s", code, out, stderr)
		}
		var lines []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "No reference chains: ") {
				lines = append(lines, l)
			}
		}
		if len(lines) != 1 || !strings.Contains(lines[0], "over --retainers-max-pause 1ms") || !strings.Contains(string(out), "Watched "+s.URL) {
			t.Errorf("want the report and one line saying the snapshot was over the pause limit:\n%s", out)
		}
	})
}
