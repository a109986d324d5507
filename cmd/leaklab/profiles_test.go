package main

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/profiles"
)

// TestProfilesLabelFilterEndToEnd captures real profiles with labels,
// then selects them with 'profiles ls --label'
// and 'profiles prune --label'; bad --label syntax is a usage error.
func TestProfilesLabelFilterEndToEnd(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	svc := testbin.StartService(t, "abandoned-worker", true)
	// name → the labels its capture stores
	captures := []struct {
		name   string
		labels []string
	}{
		{"staging-a", []string{"env=staging", "team=a"}},
		{"staging-b", []string{"env=staging", "team=b"}},
		{"prod", []string{"env=prod"}},
	}
	names := map[string]string{} // ID → name
	for _, c := range captures {
		args := []string{"capture", svc.URL, "--type", "goroutine", "--output", "json"}
		for _, l := range c.labels {
			args = append(args, "--label", l)
		}
		var rep struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal([]byte(mustLeaklab(t, home, args...)), &rep); err != nil || rep.ID == "" {
			t.Fatalf("capture %s: %v %+v", c.name, err, rep)
		}
		names[rep.ID] = c.name
	}
	ls := func(t *testing.T, args ...string) string {
		t.Helper()
		var listed []profiles.Listed
		out := mustLeaklab(t, home, append([]string{"profiles", "ls", "--output", "json"}, args...)...)
		if err := json.Unmarshal([]byte(out), &listed); err != nil {
			t.Fatalf("profiles ls %v: %v\n%s", args, err, out)
		}
		var got []string
		for _, e := range listed {
			got = append(got, names[e.ID])
		}
		sort.Strings(got)
		return strings.Join(got, " ")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "prod staging-a staging-b"},
		{[]string{"--label", "env=staging"}, "staging-a staging-b"},
		{[]string{"--label", "env=staging", "--label", "team=b"}, "staging-b"},
		{[]string{"--label", "team="}, "prod"},
		{[]string{"--label", "env=dev"}, ""},
		{[]string{"--label", "env=prod", "--type", "heap"}, ""},
		{[]string{"--label", "env=prod", "--target", svc.URL}, "prod"},
		// --target as capture takes it: without http://, or a profile's URL.
		{[]string{"--target", strings.TrimPrefix(svc.URL, "http://")}, "prod staging-a staging-b"},
		{[]string{"--label", "env=prod", "--target", strings.TrimPrefix(svc.URL, "http://") + "/"}, "prod"},
		{[]string{"--target", svc.URL + "/debug/pprof/goroutine"}, "prod staging-a staging-b"},
		{[]string{"--target", "127.0.0.1:1"}, ""},
		// The variant label is the target's own (from its /metrics).
		{[]string{"--label", "variant=fixed", "--label", "team=a"}, "staging-a"},
	} {
		t.Run("ls "+strings.Join(tc.args, " "), func(t *testing.T) {
			if got := ls(t, tc.args...); got != tc.want {
				t.Errorf("listed %q, want %q", got, tc.want)
			}
		})
	}

	// Text output says when nothing matches.
	if out := mustLeaklab(t, home, "profiles", "ls", "--label", "env=dev"); !strings.Contains(out, "no stored profiles match") {
		t.Errorf("ls with no match printed %q", out)
	}

	for _, tc := range []struct {
		args    []string
		errLine string
	}{
		{[]string{"profiles", "ls", "--label", "env"}, `--label "env": want KEY=VALUE`},
		{[]string{"profiles", "ls", "--label", "=staging"}, `--label "=staging": want KEY=VALUE`},
		{[]string{"profiles", "ls", "--label", "env=staging", "--label", "env=prod"}, "--label env is given twice"},
		{[]string{"profiles", "prune", "--all", "--label", "team"}, `--label "team": want KEY=VALUE`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			stdout, stderr, code := leaklabIn(t, home, tc.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "leaklab: ") || !strings.Contains(lines[0], tc.errLine) {
				t.Errorf("stderr %q: want one line 'leaklab: ...%s...'", stderr, tc.errLine)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}

	// prune takes the same filter: a dry run names only the matching
	// profile, the real prune removes only it.
	var dry []profiles.Listed
	if err := json.Unmarshal([]byte(mustLeaklab(t, home, "profiles", "prune", "--all", "--label", "env=prod", "--dry-run", "--output", "json")), &dry); err != nil {
		t.Fatal(err)
	}
	if len(dry) != 1 || names[dry[0].ID] != "prod" {
		t.Errorf("prune --dry-run --label env=prod would remove %+v, want only the prod capture", dry)
	}
	if got := ls(t); got != "prod staging-a staging-b" {
		t.Errorf("a dry run removed something: %q left", got)
	}
	mustLeaklab(t, home, "profiles", "prune", "--all", "--label", "env=prod")
	if got := ls(t); got != "staging-a staging-b" {
		t.Errorf("after prune --all --label env=prod: %q left, want the staging captures", got)
	}
}
