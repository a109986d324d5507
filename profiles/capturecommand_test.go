package profiles

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/opterr"
	"github.com/leaklab/leaklab/leaks"
)

// startSample runs a catalog service in this process on a free loopback
// port until the test ends.
func startSample(t *testing.T, name string) *leaks.Server {
	t.Helper()
	svc, err := leaks.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := leaks.Start(context.Background(), svc, leaks.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv
}

func TestCaptureCommandOptions(t *testing.T) {
	t.Parallel()
	srv := startSample(t, "unbounded-cache")
	dir := t.TempDir()
	opened := 0
	open := func() (*Store, error) { opened++; return Open(dir) }

	// One profile into the store: JSON is the one Saved.
	caps, err := CaptureCommandOptions{Target: srv.URL(), Labels: []string{"env=test"}, OpenStore: open}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if caps.One == nil || caps.One.ID == "" || caps.One.Type != TypeHeap || caps.One.Labels["env"] != "test" || caps.Failure() != nil || opened != 1 {
		t.Fatalf("captures %+v, opened %d", caps, opened)
	}
	js, err := json.Marshal(caps)
	if err != nil || !strings.HasPrefix(string(js), "{") || !strings.Contains(string(js), caps.One.ID) {
		t.Errorf("JSON %s (%v): want the one saved profile", js, err)
	}

	// Into a file: the store is not opened.
	out := filepath.Join(dir, "g.pb.gz")
	caps, err = CaptureCommandOptions{Target: srv.URL(), Type: TypeGoroutine, Out: out, OpenStore: open}.Run(context.Background())
	if err != nil || caps.One.File != out || opened != 1 {
		t.Errorf("captures %+v, %v, opened %d", caps, err, opened)
	}

	// Every type: JSON is the list, text one line per type.
	caps, err = CaptureCommandOptions{Target: srv.URL(), Type: TypeAll, Seconds: 1, OpenStore: open}.Run(context.Background())
	if err != nil || caps.One != nil || len(caps.All) < 5 {
		t.Fatalf("captures %+v, %v", caps, err)
	}
	var text bytes.Buffer
	if err := caps.WriteText(&text); err != nil || strings.Count(text.String(), "\n") != len(caps.All) {
		t.Errorf("text %q (%v): want one line per type", &text, err)
	}
	if js, err := json.Marshal(caps); err != nil || !strings.HasPrefix(string(js), "[") {
		t.Errorf("JSON %.40s... (%v): want a list", js, err)
	}

	opened = 0
	for _, tc := range []struct {
		c    CaptureCommandOptions
		want string
	}{
		{CaptureCommandOptions{Target: srv.URL(), Seconds: -1}, "Seconds must not be negative"},
		{CaptureCommandOptions{Target: srv.URL(), Labels: []string{"novalue"}}, `Labels "novalue": want KEY=VALUE`},
		{CaptureCommandOptions{Target: srv.URL(), Type: TypeAll, Out: out}, "Out takes one profile; Type all"},
		{CaptureCommandOptions{Target: srv.URL(), Type: "threads"}, `unknown profile type "threads"`},
	} {
		tc.c.OpenStore = open
		if _, err := tc.c.Run(context.Background()); !opterr.Is(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an option error containing %q", tc.c, err, tc.want)
		}
	}
	if opened != 0 {
		t.Errorf("refused options opened the store %d times", opened)
	}
}
