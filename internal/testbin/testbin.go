// Package testbin builds the real leaklab binary for end-to-end tests and
// runs sample services with it, each in its own process so that runtime
// metrics (heap, goroutines) belong to that service alone. Start and
// StartJSON run any child process a test needs (the binary, a peer tool),
// keep its output for failure messages and kill it when the test ends.
package testbin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/childproc"
)

// The main packages tests build: leaklab itself, and runservice, which
// runs one catalog service as 'leaklab run' does and nothing else.
const (
	leaklabPkg = "github.com/leaklab/leaklab/cmd/leaklab"
	servicePkg = "github.com/leaklab/leaklab/internal/testbin/runservice"
)

// Build compiles cmd/leaklab once per test process and returns its path.
func Build(t testing.TB) string {
	t.Helper()
	return buildOnce(t, "", func() builtBinaryResult { return buildEnv("", leaklabPkg, nil) })
}

var (
	buildMu sync.Mutex
	builds  = map[string]*builtBinary{} // by GOEXPERIMENT ("" for none), toolchain, flags
)

// builtBinary is one build, made once per test process; a test that needs
// another build does not wait for it.
type builtBinary struct {
	once sync.Once
	builtBinaryResult
}

type builtBinaryResult struct {
	path string
	err  error
}

// buildOnce returns the path of the build named key, which build makes
// the first time.
func buildOnce(t testing.TB, key string, build func() builtBinaryResult) string {
	t.Helper()
	buildMu.Lock()
	b, ok := builds[key]
	if !ok {
		b = &builtBinary{}
		builds[key] = b // a failed build fails every later test quickly too
	}
	buildMu.Unlock()
	b.once.Do(func() { b.builtBinaryResult = build() })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// BuildServiceExperiment compiles runservice with GOEXPERIMENT=exp (once
// per test process), e.g. "goroutineleakprofile" for the runtime's
// goroutine leak profile, and returns its path: a binary that
// StartServiceWith runs as it runs leaklab. The first build recompiles
// the standard library. It is runservice rather than cmd/leaklab because
// the tests want the service built that way, not the tool: on a clean
// clone of a new commit, each of these builds of cmd/leaklab compiled the
// module's changed packages and linked a 34 MB binary, 7.5 CPU-s, while
// runservice compiles only when the catalog changes and links 15 MB.
func BuildServiceExperiment(t testing.TB, exp string) string {
	t.Helper()
	key := "service GOEXPERIMENT=" + exp
	return buildOnce(t, key, func() builtBinaryResult {
		return buildEnv(key, servicePkg, pathFree, "GOEXPERIMENT="+exp)
	})
}

// BuildServiceToolchain compiles runservice (see BuildServiceExperiment)
// with another Go toolchain (once per test process), e.g. "go1.27.3",
// which the go command fetches from the module proxy (GOTOOLCHAIN) the
// first time: for tests of what a target built with a newer Go serves.
func BuildServiceToolchain(t testing.TB, toolchain string) string {
	t.Helper()
	key := "service toolchain " + toolchain
	return buildOnce(t, key, func() builtBinaryResult {
		return buildEnv(key, servicePkg, pathFree, "GOTOOLCHAIN="+toolchain, "GOEXPERIMENT=")
	})
}

// pathFree are the go build flags of the builds no test binary shares
// (another GOEXPERIMENT, another toolchain): with -trimpath the
// compiled packages do not depend on where the checkout is, so a clean
// clone finds them in the build cache instead of compiling the whole
// module again (on a two-core machine, 10 s of CPU each; inside the
// tests that need them, which wait). The default build keeps full
// paths: its packages are the ones the test binaries compile anyway.
var pathFree = []string{"-trimpath"}

// BuildServiceLdflags compiles runservice (see BuildServiceExperiment)
// with go build -ldflags=flags (once per test process, shared as Build's),
// e.g. "-s -w" for a service without debug info. Built -trimpath, as the
// other builds no test binary shares: a clean clone whose catalog is
// unchanged finds the binary, where cmd/leaklab linked 34 MB again.
func BuildServiceLdflags(t testing.TB, flags string) string {
	t.Helper()
	key := "service -ldflags=" + flags
	return buildOnce(t, key, func() builtBinaryResult {
		return buildEnv(key, servicePkg, append(slices.Clone(pathFree), "-ldflags="+flags))
	})
}

// buildEnv compiles the main package pkg with go build flags and env
// added to the environment; what names the build in errors. The binary is
// shared by every test process that builds the same code the same way
// (sharedDir): go test runs each package's tests in a process of its own,
// and each used to link its own 34 MB binary (2.5 s of CPU each time, a
// dozen times per go test ./...) into a temporary directory it never
// removed.
func buildEnv(what, pkg string, flags []string, env ...string) builtBinaryResult {
	what = strings.TrimSpace(what + " go build " + path.Base(pkg))
	defer lockBuild(what)()
	if len(env) > 0 {
		env = append(os.Environ(), env...)
	}
	dir, err := sharedDir(what, pkg, flags, env)
	if err != nil {
		return builtBinaryResult{err: err}
	}
	bin := filepath.Join(dir, path.Base(pkg))
	if _, err := os.Stat(bin); err == nil {
		now := time.Now()
		_ = os.Chtimes(dir, now, now) // in use: not pruned
		return builtBinaryResult{path: bin}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return builtBinaryResult{err: err}
	}
	// A build killed midway leaves no partial binary at bin: it links
	// to a name of its own and renames it into place, which is atomic.
	tmp := fmt.Sprintf("%s.%d.tmp", bin, os.Getpid())
	if out, err := goCommand(env, append(append([]string{"build", "-o", tmp}, flags...), pkg)...); err != nil {
		os.Remove(tmp)
		return builtBinaryResult{err: fmt.Errorf("%s: %v\n%s", what, err, out)}
	}
	if err := os.Rename(tmp, bin); err != nil {
		os.Remove(tmp)
		return builtBinaryResult{err: err}
	}
	pruneShared(dir)
	return builtBinaryResult{path: bin}
}

// lockBuild takes a lock, shared by the test processes of this checkout,
// on making the build what, and returns its release. Packages that go
// test runs side by side may need the same build at once: on a clean
// clone, profiles/retainers and profiles/watch both compiled the whole
// module with Go 1.27 at the same time. With the lock, the second waits
// and finds the first's binary. Without a lock file, no lock.
func lockBuild(what string) (unlock func()) {
	root := sharedRoot()
	if os.MkdirAll(root, 0o755) != nil {
		return func() {}
	}
	sum := sha256.Sum256([]byte(moduleRoot() + "\x00" + what))
	f, err := os.OpenFile(filepath.Join(root, "lock-"+hex.EncodeToString(sum[:8])), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return func() {}
	}
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX) != nil {
		f.Close()
		return func() {}
	}
	return func() { f.Close() } // closing the file releases the lock
}

// sharedDir is where the binary of this build lives: under the temporary
// directory, named by the build ID that the go command gives package main
// when compiled with env (it changes with any source file of the module
// or a dependency, GOEXPERIMENT, the toolchain), and by the link's own
// inputs the build ID does not cover (GOFLAGS, flags). The name found
// for a source key (buildkey.go) is recorded, so that later test
// processes need not ask go list.
func sharedDir(what, pkg string, flags, env []string) (string, error) {
	key, keyErr := sourceKey(pkg, flags, env)
	if keyErr == nil {
		if dir, ok := knownSharedDir(key); ok {
			return dir, nil
		}
	}
	dir, err := listSharedDir(what, pkg, flags, env)
	if err == nil && keyErr == nil {
		recordSharedDir(key, dir)
	}
	return dir, err
}

// listSharedDir names the build's directory by the build ID go list gives.
func listSharedDir(what, pkg string, flags, env []string) (string, error) {
	// go list -export compiles what it reports on, so it gets the build's
	// flags too: otherwise it would compile the module a second way.
	out, err := goCommand(env, append(append([]string{"list", "-export", "-f", "{{.BuildID}}"}, flags...), pkg)...)
	if err != nil {
		return "", fmt.Errorf("%s: go list: %v\n%s", what, err, out)
	}
	goflags := os.Getenv("GOFLAGS")
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GOFLAGS="); ok {
			goflags = v
		}
	}
	sum := sha256.Sum256([]byte(strings.Join(append([]string{strings.TrimSpace(out), goflags}, flags...), "\x00")))
	return filepath.Join(sharedRoot(), hex.EncodeToString(sum[:12])), nil
}

// sharedRoot holds the shared binaries, one directory each, and the
// builds' lock files.
func sharedRoot() string { return filepath.Join(os.TempDir(), "leaklab-testbin") }

// goCommand runs the go command in the module's root.
func goCommand(env []string, args ...string) (string, error) {
	var out SyncBuffer
	err := childproc.Run(context.Background(), childproc.Spec{
		Argv: append([]string{"go"}, args...), Dir: moduleRoot(), Env: env, Stdout: &out, Stderr: &out,
	})
	return out.String(), err
}

// sharedKeep is how long a shared binary no test used stays.
const sharedKeep = 24 * time.Hour

// pruneShared removes the shared binaries other than keep that no test
// process has used for sharedKeep (a running service keeps running: its
// executable is unlinked, not gone) and lock files as old, and the
// per-process directories older tests left in the temporary directory.
func pruneShared(keep string) {
	old := time.Now().Add(-sharedKeep)
	entries, _ := os.ReadDir(sharedRoot())
	for _, e := range entries {
		dir := filepath.Join(sharedRoot(), e.Name())
		if info, err := e.Info(); err == nil && dir != keep && info.ModTime().Before(old) {
			os.RemoveAll(dir)
		}
	}
	legacy, _ := filepath.Glob(filepath.Join(os.TempDir(), "leaklab-testbin-*"))
	for _, dir := range legacy {
		if info, err := os.Stat(dir); err == nil && info.ModTime().Before(old) {
			os.RemoveAll(dir)
		}
	}
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
