package scale

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/leaklab/leaklab/internal/opterr"
)

// ResolveTarget turns a service or a command into what each worker runs;
// bad combinations are option errors (a usage error on leaklab's command
// line).
func TestResolveTarget(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		opts      TargetOptions
		argv      []string
		path      string
		ready     string
		counts    bool
		usageWant string
	}{
		{name: "service", opts: TargetOptions{Service: "cpu-bound"},
			argv: []string{exe, "scale", "worker", "cpu-bound"}, path: "/tags?doc={i}", ready: "/healthz", counts: true},
		{name: "fixed service, own path", opts: TargetOptions{Service: "io-bound", Fixed: true, Path: "/profile?user=1"},
			argv: []string{exe, "scale", "worker", "io-bound", "--fixed"}, path: "/profile?user=1", ready: "/healthz", counts: true},
		{name: "command", opts: TargetOptions{Command: "./srv -v"},
			argv: []string{"/bin/sh", "-c", "exec ./srv -v"}, path: "/", ready: ""},
		{name: "command with paths", opts: TargetOptions{Command: "./srv", Path: "/api", ReadyPath: "/up"},
			argv: []string{"/bin/sh", "-c", "exec ./srv"}, path: "/api", ready: "/up"},
		{name: "no target", opts: TargetOptions{}, usageWant: "give the target"},
		{name: "both targets", opts: TargetOptions{Service: "cpu-bound", Command: "./srv"}, usageWant: "not both"},
		{name: "fixed command", opts: TargetOptions{Command: "./srv", Fixed: true}, usageWant: "Fixed goes with Service, not Command"},
		{name: "unknown service", opts: TargetOptions{Service: "nope"}, usageWant: `unknown service "nope"`},
		{name: "POST endpoint", opts: TargetOptions{Service: "retry-storm"}, usageWant: "pick a GET path with Path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target, path, err := ResolveTarget(tc.opts)
			if tc.usageWant != "" {
				if !opterr.Is(err) || !strings.Contains(err.Error(), tc.usageWant) {
					t.Fatalf("err = %v, want an option error containing %q", err, tc.usageWant)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(target.Argv, tc.argv) || path != tc.path || target.ReadyPath != tc.ready || target.ReportsCounts != tc.counts {
				t.Errorf("got argv %q path %q ready %q counts %v; want %q %q %q %v",
					target.Argv, path, target.ReadyPath, target.ReportsCounts, tc.argv, tc.path, tc.ready, tc.counts)
			}
		})
	}
}
