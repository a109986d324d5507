// Package testbin builds the real leaklab binary for end-to-end tests and
// runs sample services with it, each in its own process so that runtime
// metrics (heap, goroutines) belong to that service alone. Start and
// StartJSON run any child process a test needs (the binary, a peer tool),
// keep its output for failure messages and kill it when the test ends.
package testbin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/leaklab/leaklab/internal/childproc"
)

// Build compiles cmd/leaklab once per test process and returns its path.
func Build(t testing.TB) string {
	t.Helper()
	return BuildExperiment(t, "")
}

var (
	buildMu sync.Mutex
	builds  = map[string]builtBinary{} // by GOEXPERIMENT, "" for none
)

type builtBinary struct {
	path string
	err  error
}

// BuildExperiment compiles cmd/leaklab with GOEXPERIMENT=exp (once per
// test process), e.g. "goroutineleakprofile" for the runtime's goroutine
// leak profile. The first build recompiles the standard library.
func BuildExperiment(t testing.TB, exp string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	b, ok := builds[exp]
	if !ok {
		b = build(exp)
		builds[exp] = b // a failed build fails every later test quickly too
	}
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// BuildToolchain compiles cmd/leaklab with another Go toolchain (once per
// test process), e.g. "go1.27.3", which the go command fetches from the
// module proxy (GOTOOLCHAIN) the first time: for tests of what a target
// built with a newer Go serves.
func BuildToolchain(t testing.TB, toolchain string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	key := "toolchain " + toolchain
	b, ok := builds[key]
	if !ok {
		b = buildEnv(key, "GOTOOLCHAIN="+toolchain, "GOEXPERIMENT=")
		builds[key] = b
	}
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

func build(exp string) builtBinary {
	if exp == "" {
		return buildEnv("")
	}
	return buildEnv("GOEXPERIMENT="+exp, "GOEXPERIMENT="+exp)
}

// buildEnv compiles cmd/leaklab with env added to the environment; what
// names the build in errors.
func buildEnv(what string, env ...string) builtBinary {
	dir, err := os.MkdirTemp("", "leaklab-testbin-"+strings.NewReplacer(" ", "-", "=", "-").Replace(what))
	if err != nil {
		return builtBinary{err: err}
	}
	path := filepath.Join(dir, "leaklab")
	var out SyncBuffer
	spec := childproc.Spec{
		Argv:   []string{"go", "build", "-o", path, "github.com/leaklab/leaklab/cmd/leaklab"},
		Dir:    moduleRoot(),
		Stdout: &out, Stderr: &out,
	}
	what = strings.TrimSpace(what + " go build cmd/leaklab")
	if len(env) > 0 {
		spec.Env = append(os.Environ(), env...)
	}
	if err := childproc.Run(context.Background(), spec); err != nil {
		return builtBinary{err: fmt.Errorf("%s: %v\n%s", what, err, out.String())}
	}
	return builtBinary{path: path}
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Service is a sample service running as 'leaklab run' in a child process.
// Its Proc gives the process (Cmd, Stderr, Stop, Kill); Name is the
// service's, not the command line.
type Service struct {
	*Proc
	Name    string
	URL     string
	Started map[string]any // the JSON line 'leaklab run --output json' printed
}

// StartService runs 'leaklab run NAME --addr 127.0.0.1:0 --output json'
// (plus --fixed and any extra args) and waits until it listens. The
// service is stopped with SIGTERM when the test ends, and the test fails
// unless it exits cleanly.
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
	s := &Service{Name: name}
	s.Proc = decodeFirstLine(t, startSpec(t, childproc.Spec{Argv: append([]string{bin}, args...), FirstLine: true}), &s.Started)
	t.Cleanup(func() { s.Stop(t) })
	if s.URL, _ = s.Started["url"].(string); s.URL == "" {
		t.Fatalf("%s printed no url: %v", s.Proc.Name, s.Started)
	}
	return s
}
