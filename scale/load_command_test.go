package scale

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/opterr"
)

// Bad load options are option errors naming what to fix; a body file too
// large to send with every request is refused.
func TestLoadCommandOptionsErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	// Sparse: its size is what counts, and writing 64 MiB took seconds.
	if err := os.WriteFile(big, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, MaxBodyFile+1); err != nil {
		t.Fatal(err)
	}
	good := LoadCommandOptions{Connections: 1, Duration: time.Second, Timeout: time.Second, Method: "get"}
	if lo, err := good.Options("http://127.0.0.1/"); err != nil || lo.Method != "GET" {
		t.Fatalf("good options: %+v, %v", lo, err)
	}
	for _, tc := range []struct {
		edit func(*LoadCommandOptions)
		want string
	}{
		{func(c *LoadCommandOptions) { c.Connections = 0 }, "-c must be at least 1"},
		{func(c *LoadCommandOptions) { c.Duration = 0 }, "-d must be positive"},
		{func(c *LoadCommandOptions) { c.Timeout = 0 }, "--timeout must be positive"},
		{func(c *LoadCommandOptions) { c.Procs = -1 }, "--procs cannot be negative"},
		{func(c *LoadCommandOptions) { c.Body, c.BodyFile = "a", "b" }, "not both"},
		{func(c *LoadCommandOptions) { c.Headers = []string{"no colon"} }, "want 'Name: value'"},
		{func(c *LoadCommandOptions) { c.BodyFile = filepath.Join(dir, "missing") }, "--body-file"},
		{func(c *LoadCommandOptions) { c.BodyFile = big }, "larger than 64 MiB"},
		// not a regular file: no size to read off, so read past the bound
		{func(c *LoadCommandOptions) { c.BodyFile = "/dev/zero" }, "larger than 64 MiB"},
	} {
		c := good
		tc.edit(&c)
		if _, err := c.Options("http://127.0.0.1/"); !opterr.Is(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want an option error containing %q", c, err, tc.want)
		}
	}
}
