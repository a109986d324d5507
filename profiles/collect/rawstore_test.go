package collect

import (
	"bytes"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/profiles"
)

// storedBytes reads a stored profile's file and checks it is a gzipped
// pprof profile.
func storedBytes(t *testing.T, st *profiles.Store, id string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(st.Dir(), id+".pb.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("stored %s is not gzipped", id)
	}
	if _, err := profile.Parse(bytes.NewReader(b)); err != nil {
		t.Errorf("stored %s does not parse: %v", id, err)
	}
	return b
}

// TestStoresProfilesAsReceived checks the collector stores what it
// fetched and what was pushed byte for byte (no second compression), and
// forwards pulled profiles as fetched too.
func TestStoresProfilesAsReceived(t *testing.T) {
	t.Parallel()
	svc := startService(t, "abandoned-worker", false, leaks.Options{})
	proxy := testbin.NewRecordingProxy(t, svc.URL())
	target := proxy.URL
	checker := &ingestChecker{t: t, got: map[string][][]string{}, labels: map[string]map[string]string{}}
	pyro := httptest.NewServer(checker)
	defer pyro.Close()
	st, err := profiles.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := startCollector(t, Options{
		Discover: StaticTargets{{URL: target}}, Every: 200 * time.Millisecond, Timeout: captureTimeout, Store: st, Forward: pyro.URL,
	}, true)
	heap := realHeapProfile(t)
	push := "name=" + url.QueryEscape("pushed.app{service=pushed}") + fmt.Sprintf("&from=%d&until=%d", time.Now().Add(-10*time.Second).UnixNano(), time.Now().UnixNano())
	if code, msg := (pushRequest{query: push, profile: heap, config: heapConfig}).send(t, r.url); code != 200 {
		t.Fatalf("push: %d %s", code, msg)
	}
	testbin.WaitFor(t, 30*time.Second, "two pulled heap and goroutine profiles stored and forwarded", func() bool {
		return len(list(t, st, profiles.Filter{Target: target, Type: profiles.TypeHeap})) >= 2 &&
			len(list(t, st, profiles.Filter{Target: target, Type: profiles.TypeGoroutine})) >= 2 &&
			checker.count() >= 4
	})
	r.stop(t)

	for _, m := range list(t, st, profiles.Filter{Target: target}) {
		b := storedBytes(t, st, m.ID)
		if !proxy.Served(b) {
			t.Errorf("stored %s (%d bytes) is not byte for byte a body the target served", m.ID, len(b))
		}
		if m.Bytes != int64(len(b)) {
			t.Errorf("%s: meta says %d bytes, the file has %d", m.ID, m.Bytes, len(b))
		}
	}
	pushed := list(t, st, profiles.Filter{Target: PushTargetPrefix + "pushed.app"})
	if len(pushed) != 1 {
		t.Fatalf("%d pushed profiles stored, want 1", len(pushed))
	}
	if b := storedBytes(t, st, pushed[0].ID); !bytes.Equal(b, heap) {
		t.Errorf("the stored push (%d bytes) is not the pushed profile (%d bytes) byte for byte", len(b), len(heap))
	}
	checker.mu.Lock()
	defer checker.mu.Unlock()
	for _, body := range checker.bodies {
		if !proxy.Served(body) && !bytes.Equal(body, heap) {
			t.Errorf("forwarded a %d-byte profile that is neither a served body nor the push", len(body))
		}
	}
}
