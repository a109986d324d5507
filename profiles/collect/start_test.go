package collect

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/leaklab/leaklab/internal/opterr"
	"github.com/leaklab/leaklab/profiles"
)

// RunCommand opens the store and the listener, says where it listens
// before the first capture, and runs until its context ends.
func TestRunCommand(t *testing.T) {
	dir := t.TempDir()
	opened := 0
	env := CommandEnv{
		OpenStore: func() (*profiles.Store, error) { opened++; return profiles.Open(dir) },
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	c := CommandOptions{Types: DefaultTypes, Every: DefaultEvery, Concurrency: 1, Refresh: DefaultRefresh,
		Listen: "127.0.0.1:0", Retain: "7d", MaxStore: "1GiB", MaxPush: "16MiB", MaxSuspects: 1}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var started Started
	env.Started = func(s Started) error {
		started = s
		cancel() // the run then stops at once
		return nil
	}
	if _, err := c.RunCommand(ctx, env); err != nil {
		t.Fatal(err)
	}
	store, err := profiles.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if opened != 1 || started.Store != store.Dir() || !strings.HasPrefix(started.URL, "http://127.0.0.1:") ||
		started.Ingest != started.URL+"/ingest" || started.Metrics != started.URL+"/metrics" {
		t.Errorf("opened the store %d times; started %+v", opened, started)
	}

	// A refused option opens nothing.
	opened = 0
	c.Every = 0
	if _, err := c.RunCommand(context.Background(), env); !opterr.Is(err) || opened != 0 {
		t.Errorf("err = %v after opening the store %d times; want an option error first", err, opened)
	}
	// Neither does a non-loopback listen address without Public.
	c.Every, c.Listen = DefaultEvery, "0.0.0.0:0"
	if _, err := c.RunCommand(context.Background(), env); !opterr.Is(err) {
		t.Errorf("err = %v, want an option error for a public listen address", err)
	}
}
