package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leaklab/leaklab/profiles"
)

var update = flag.Bool("update", false, "rewrite the golden text reports under testdata/golden")

// The text reports whose input is fixed, compared with golden files;
// 'go test ./cmd/leaklab -run TestGoldenReports -update' rewrites them
// after a deliberate change. Reports of live services (capture, watch,
// load, scale, collect) vary from run to run and are checked by the end
// to end tests instead, except watch --from-store on a recorded watch.
func TestGoldenReports(t *testing.T) {
	t.Parallel()
	const testdata = "../../profiles/testdata/"
	// saveFixture stores the current heap fixture in home; its ID, which
	// has a random part, is ID in the args and the report.
	saveFixture := func(t *testing.T, home string) string {
		store, err := profiles.Open(home)
		if err != nil {
			t.Fatal(err)
		}
		c, err := profiles.ReadFile(testdata+"heap-current.pb.gz", profiles.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		m, err := store.Save(c)
		if err != nil {
			t.Fatal(err)
		}
		return m.ID
	}
	for _, tc := range []struct {
		name  string
		args  []string
		store bool // the heap fixture is stored first, as ID
		// watch is a recorded watch of profiles/watch/testdata/watches,
		// copied in as the store; its target is TARGET in the args and the
		// report.
		watch string
	}{
		{"services", []string{"services"}, false, ""},
		{"services-unbounded-cache", []string{"services", "unbounded-cache"}, false, ""},
		{"diff-heap", []string{"diff", testdata + "heap-base.pb.gz", testdata + "heap-current.pb.gz"}, false, ""},
		{"diff-heap-by-line", []string{"diff", testdata + "heap-base.pb.gz", testdata + "heap-current.pb.gz", "--by", "line", "--top", "5"}, false, ""},
		{"diff-heap-by-stack", []string{"diff", testdata + "heap-base.pb.gz", testdata + "heap-current.pb.gz", "--by", "stack", "--top", "3"}, false, ""},
		{"escape-lesson", []string{"escape", "-C", lessonDir}, false, ""},
		{"exercise-list", []string{"exercise", "list"}, false, ""},
		{"exercise-hint", []string{"exercise", "hint", "unbounded-cache"}, false, ""},
		{"exercise-solution", []string{"exercise", "solution", "unbounded-cache"}, false, ""},
		{"exercise-check-not-a-leak", []string{"exercise", "check", "cpu-bound", "--answer", "noSuchFunction"}, false, ""},
		{"dashboards-export", []string{"dashboards", "export", "DIR"}, false, ""},
		{"profiles-ls", []string{"profiles", "ls"}, true, ""},
		{"profiles-show", []string{"profiles", "show", "ID", "--top", "3"}, true, ""},
		{"watch-from-store", []string{"watch", "TARGET", "--from-store"}, false, "heapleak"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			home := t.TempDir()
			dir := filepath.Join(t.TempDir(), "export")
			id, target := "(none)", "(none)"
			if tc.store {
				id = saveFixture(t, home)
			}
			if tc.watch != "" {
				target = copyRecordedWatch(t, tc.watch, home)
			}
			args := make([]string, len(tc.args))
			for i, a := range tc.args {
				args[i] = strings.NewReplacer("DIR", dir, "ID", id, "TARGET", target).Replace(a)
			}
			out, errOut, code := leaklabIn(t, home, args...)
			want := exitOK
			if tc.watch != "" {
				want = exitFound // the recorded watch is of a leak
			}
			if code != want {
				t.Fatalf("leaklab %s: exit %d, want %d\n%s", strings.Join(tc.args, " "), code, want, errOut)
			}
			got := strings.NewReplacer(dir, "DIR", id, "ID", target, "TARGET").Replace(out)
			golden := filepath.Join("testdata", "golden", tc.name+".txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			wantOut, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (write it with -update)", err)
			}
			if got != string(wantOut) {
				t.Errorf("leaklab %s differs from %s (rewrite it with -update if the change is meant):\n%s", strings.Join(tc.args, " "), golden, lineDiff(string(wantOut), got))
			}
		})
	}
}

// lineDiff names the first line where got departs from want, with both.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:", i+1) + "\n  want: " + wl + "\n  got:  " + gl
		}
	}
	return "(same lines)"
}

// copyRecordedWatch copies the recorded watch name (a profile store, see
// profiles/watch's recorded_test.go) into home and returns its target.
func copyRecordedWatch(t *testing.T, name, home string) string {
	t.Helper()
	if err := os.CopyFS(home, os.DirFS(filepath.Join("..", "..", "profiles", "watch", "testdata", "watches", name))); err != nil {
		t.Fatal(err)
	}
	store, err := profiles.Open(home)
	if err != nil {
		t.Fatal(err)
	}
	metas, err := store.List(profiles.Filter{})
	if err != nil || len(metas) == 0 {
		t.Fatalf("recorded watch %s: no profiles (%v)", name, err)
	}
	return metas[0].Target
}
