package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/leaks"
)

// The services JSON contract from DESIGN.md.
func TestServicesJSONContract(t *testing.T) {
	t.Parallel()
	for _, spoilers := range []bool{false, true} {
		args := []string{"services", "--output", "json"}
		if spoilers {
			args = append(args, "--spoilers")
		}
		out := mustLeaklab(t, t.TempDir(), args...)
		var entries []map[string]any
		if err := json.Unmarshal([]byte(out), &entries); err != nil {
			t.Fatalf("not a JSON array: %v\n%s", err, out)
		}
		if len(entries) != len(leaks.All()) {
			t.Errorf("%d entries, want %d", len(entries), len(leaks.All()))
		}
		for _, e := range entries {
			for _, field := range []string{"name", "kind", "summary", "hints"} {
				if _, ok := e[field]; !ok {
					t.Errorf("entry %v lacks %q", e["name"], field)
				}
			}
			if hints, _ := e["hints"].([]any); len(hints) < 2 {
				t.Errorf("%v: hints = %v", e["name"], e["hints"])
			}
			_, hasCulprit := e["culprit"]
			if hasCulprit != spoilers {
				t.Errorf("%v: culprit present = %v with --spoilers = %v", e["name"], hasCulprit, spoilers)
			}
			if _, hasRetainer := e["retainer"]; hasRetainer != (spoilers && e["kind"] == string(leaks.KindHeap)) {
				t.Errorf("%v (%v): retainer present = %v with --spoilers = %v", e["name"], e["kind"], hasRetainer, spoilers)
			}
		}
	}
}

// The exit code and last line of the real process when its port is taken.
func TestRunTakenPort(t *testing.T) {
	t.Parallel()
	bin := testbin.Build(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := exec.Command(bin, "run", "unbounded-cache", "--addr", ln.Addr().String())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("want exit 1, got %v (stderr %s)", err, &stderr)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	last := lines[len(lines)-1]
	if !strings.Contains(last, "port is taken") || !strings.Contains(last, ln.Addr().String()) {
		t.Errorf("error line %q should say the port %s is taken", last, ln.Addr())
	}
}

// The text banner tells a newcomer where everything is, and SIGTERM stops
// the service cleanly with exit 0.
func TestRunBannerAndCleanShutdown(t *testing.T) {
	t.Parallel()
	bin := testbin.Build(t)
	cmd := exec.Command(bin, "run", "abandoned-worker", "--addr", "127.0.0.1:0", "--fixed")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testbin.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	banner := make(chan string, 1)
	go func() {
		var b strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "Ctrl-C to stop") {
				banner <- b.String()
			}
		}
	}()
	var text string
	select {
	case text = <-banner:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("no banner; stderr: %s", stderr.String())
	}
	for _, want := range []string{"abandoned-worker (fixed) is listening on http://127.0.0.1:", "/search?q=item-{i}", "/metrics", "/debug/pprof/", "go_sched_goroutines_goroutines"} {
		if !strings.Contains(text, want) {
			t.Errorf("banner lacks %q:\n%s", want, text)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v; stderr: %s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "msg=stopped") {
		t.Errorf("log does not say the service stopped:\n%s", stderr.String())
	}
}
