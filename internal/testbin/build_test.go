package testbin

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestBuildIsShared checks that test processes share one binary per build:
// a second build of the same code finds the first's binary instead of
// linking again (by the source key recorded with it), another GOEXPERIMENT
// or -ldflags is another binary, and a shared binary nobody used for a day
// is pruned.
func TestBuildIsShared(t *testing.T) {
	first := buildEnv("", leaklabPkg, nil)
	if first.err != nil {
		t.Fatal(first.err)
	}
	if filepath.Dir(filepath.Dir(first.path)) != sharedRoot() {
		t.Fatalf("binary at %s, want under %s", first.path, sharedRoot())
	}
	before, err := os.Stat(first.path)
	if err != nil {
		t.Fatal(err)
	}
	again := buildEnv("", leaklabPkg, nil) // as another test process would
	if again.err != nil || again.path != first.path {
		t.Fatalf("second build: %v at %s, want the first's %s", again.err, again.path, first.path)
	}
	if after, err := os.Stat(again.path); err != nil || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("the shared binary was linked again (%v)", err)
	}

	// The build's directory is recorded under the checkout's source key,
	// which the go command's settings change.
	key, err := sourceKey(leaklabPkg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if dir, ok := knownSharedDir(key); !ok || dir != filepath.Dir(first.path) {
		t.Errorf("source key %s records %q (%v), want %s", key, dir, ok, filepath.Dir(first.path))
	}
	expKey, err := sourceKey(leaklabPkg, nil, append(os.Environ(), "GOEXPERIMENT=goroutineleakprofile"))
	if err != nil || expKey == key {
		t.Errorf("GOEXPERIMENT=goroutineleakprofile has the default build's source key %s (%v)", expKey, err)
	}
	if svcKey, err := sourceKey(servicePkg, nil, nil); err != nil || svcKey == key {
		t.Errorf("runservice has cmd/leaklab's source key %s (%v)", svcKey, err)
	}
	// With the experiment build's own package and flags (runservice, as
	// BuildServiceExperiment builds it): go list -export compiles what it
	// reports on, and with other flags it would compile once more, for
	// this check alone.
	other, err := sharedDir("", servicePkg, pathFree, append(os.Environ(), "GOEXPERIMENT=goroutineleakprofile"))
	if err != nil {
		t.Fatal(err)
	}
	if other == filepath.Dir(first.path) {
		t.Errorf("GOEXPERIMENT=goroutineleakprofile shares %s with the default build", other)
	}
	stripped, err := sharedDir("", leaklabPkg, []string{"-ldflags=-s -w"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if stripped == filepath.Dir(first.path) {
		t.Errorf("-ldflags=-s -w shares %s with the default build", stripped)
	}

	stale := filepath.Join(sharedRoot(), "stale-for-test")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	long := time.Now().Add(-2 * sharedKeep)
	if err := os.Chtimes(stale, long, long); err != nil {
		t.Fatal(err)
	}
	pruneShared(filepath.Dir(first.path))
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("a shared binary unused for %s was not pruned (%v)", 2*sharedKeep, err)
	}
	if _, err := os.Stat(first.path); err != nil {
		t.Errorf("pruning removed the binary in use: %v", err)
	}
}

// TestBuildLockIsExclusive checks that a build's lock keeps a second
// taker (another test process in practice: the lock is a flock on its own
// open file) waiting until the first releases it.
func TestBuildLockIsExclusive(t *testing.T) {
	what := "lock test " + t.Name()
	unlock := lockBuild(what)
	var order []string
	var mu sync.Mutex
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	got := make(chan struct{})
	go func() {
		defer close(got)
		release := lockBuild(what)
		note("second took the lock")
		release()
	}()
	time.Sleep(100 * time.Millisecond) // the second taker would be in by now
	note("first released the lock")
	unlock()
	<-got
	if len(order) != 2 || order[0] != "first released the lock" {
		t.Errorf("order %q: the second taker did not wait for the first", order)
	}
}
