// Package testbin builds the real leaklab binary for end-to-end tests and
// runs sample services with it, each in its own process so that runtime
// metrics (heap, goroutines) belong to that service alone.
package testbin

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Build compiles cmd/leaklab once per test process and returns its path.
func Build(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "leaklab-testbin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "leaklab")
		cmd := exec.Command("go", "build", "-o", buildPath, "github.com/leaklab/leaklab/cmd/leaklab")
		cmd.Dir = moduleRoot()
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build cmd/leaklab: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

var (
	experimentMu    sync.Mutex
	experimentBuilt = map[string]string{}
)

// BuildExperiment compiles cmd/leaklab with GOEXPERIMENT=exp (once per
// test process), e.g. "goroutineleakprofile" for the runtime's goroutine
// leak profile. The first build recompiles the standard library.
func BuildExperiment(t testing.TB, exp string) string {
	t.Helper()
	experimentMu.Lock()
	defer experimentMu.Unlock()
	if p, ok := experimentBuilt[exp]; ok {
		return p
	}
	dir, err := os.MkdirTemp("", "leaklab-testbin-"+exp+"-")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "leaklab")
	cmd := exec.Command("go", "build", "-o", path, "github.com/leaklab/leaklab/cmd/leaklab")
	cmd.Dir = moduleRoot()
	cmd.Env = append(os.Environ(), "GOEXPERIMENT="+exp)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("GOEXPERIMENT=%s go build cmd/leaklab: %v\n%s", exp, err, out)
	}
	experimentBuilt[exp] = path
	return path
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Service is a sample service running as 'leaklab run' in a child process.
type Service struct {
	Name    string
	URL     string
	Cmd     *exec.Cmd
	Stderr  *SyncBuffer
	Started map[string]any // the JSON line 'leaklab run --output json' printed
}

// StartService runs 'leaklab run NAME --addr 127.0.0.1:0 --output json'
// (plus --fixed and any extra args) and waits until it listens. The
// service is stopped with SIGTERM when the test ends.
func StartService(t testing.TB, name string, fixed bool, extra ...string) *Service {
	t.Helper()
	return StartServiceWith(t, Build(t), name, fixed, extra...)
}

// StartServiceWith is StartService with a given leaklab binary.
func StartServiceWith(t testing.TB, bin, name string, fixed bool, extra ...string) *Service {
	t.Helper()
	args := []string{"run", name, "--addr", "127.0.0.1:0", "--output", "json"}
	if fixed {
		args = append(args, "--fixed")
	}
	args = append(args, extra...)
	cmd := exec.Command(bin, args...)
	stderr := &SyncBuffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &Service{Name: name, Cmd: cmd, Stderr: stderr}
	t.Cleanup(func() { s.Stop(t) })

	lines := make(chan []byte, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- append([]byte(nil), sc.Bytes()...)
		}
		close(lines)
		for sc.Scan() {
		}
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			t.Fatalf("leaklab run %s exited before listening: %s", name, stderr.String())
		}
		if err := json.Unmarshal(line, &s.Started); err != nil {
			t.Fatalf("leaklab run %s printed %q, not JSON: %v", name, line, err)
		}
		s.URL, _ = s.Started["url"].(string)
	case <-time.After(30 * time.Second):
		t.Fatalf("leaklab run %s did not start listening within 30s: %s", name, stderr.String())
	}
	return s
}

// Stop sends SIGTERM and waits; it fails the test if the service does not
// exit cleanly within 10 seconds. Calling it twice is harmless.
func (s *Service) Stop(t testing.TB) {
	t.Helper()
	if s.Cmd.ProcessState != nil {
		return
	}
	_ = s.Cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.Cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("leaklab run %s did not exit cleanly on SIGTERM: %v\n%s", s.Name, err, s.Stderr.String())
		}
	case <-time.After(10 * time.Second):
		_ = s.Cmd.Process.Kill()
		<-done
		t.Errorf("leaklab run %s ignored SIGTERM for 10s\n%s", s.Name, s.Stderr.String())
	}
}

// SyncBuffer is a bytes.Buffer safe for a child's writes and a test's reads.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Kill ends the service abruptly (SIGKILL), as a crash would, and waits
// for it; the cleanup then has nothing left to stop.
func (s *Service) Kill() {
	_ = s.Cmd.Process.Kill()
	_ = s.Cmd.Wait()
}
