package scale

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/opterr"
)

func TestCompareCommandOptions(t *testing.T) {
	ok := CompareCommandOptions{
		TargetOptions: TargetOptions{Command: "./srv"}, Strategies: "single, reuseport", Workers: 2, ProcsPerWorker: 1,
		Runs: 6, Duration: time.Second, Warmup: time.Second, Connections: 8, Addr: "127.0.0.1:0",
		Benchfmt: filepath.Join(t.TempDir(), "runs.txt"),
	}
	got, err := ok.Options()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Strategies, []Strategy{Single, ReusePort}) || got.Path != "/" || got.Workers != 2 || got.Connections != 8 || got.Duration != time.Second {
		t.Errorf("options %+v", got)
	}
	with := func(change func(c *CompareCommandOptions)) CompareCommandOptions {
		c := ok
		change(&c)
		return c
	}
	for _, tc := range []struct {
		name string
		c    CompareCommandOptions
		want string
	}{
		{"no target", with(func(c *CompareCommandOptions) { c.Command = "" }), "give the target"},
		{"unknown strategy", with(func(c *CompareCommandOptions) { c.Strategies = "single,forking" }), `Strategies: unknown strategy "forking"`},
		{"no strategy", with(func(c *CompareCommandOptions) { c.Strategies = " , " }), "Strategies: no strategy given"},
		{"benchfmt in no directory", with(func(c *CompareCommandOptions) { c.Benchfmt = "/no/such/dir/out.txt" }), "Benchfmt /no/such/dir/out.txt: directory /no/such/dir does not exist"},
		{"html is a directory", with(func(c *CompareCommandOptions) { c.HTML = os.TempDir() }), "HTML " + os.TempDir() + ": is a directory"},
		{"procs per worker", with(func(c *CompareCommandOptions) { c.ProcsPerWorker = 0 }), "ProcsPerWorker must be at least 1"},
		{"connections", with(func(c *CompareCommandOptions) { c.Connections = 0 }), "Connections must be at least 1"},
		{"duration", with(func(c *CompareCommandOptions) { c.Duration = 0 }), "Duration must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.c.Options(); !opterr.Is(err) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want an option error containing %q", err, tc.want)
			}
		})
	}
}
