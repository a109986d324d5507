package escape

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

func TestReviewFiltersAndReportsProgress(t *testing.T) {
	var said []string
	r, err := Review(context.Background(), ReviewOptions{
		Options:  Options{Dir: fixtureDir, Packages: []string{"./a"}},
		Filter:   Filter{Kinds: []Kind{KindMovedToHeap}},
		Progress: func(what string) { said = append(said, what) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) == 0 {
		t.Fatal("no moved-to-heap finding in fixture package a")
	}
	for _, f := range r.Findings {
		if f.Kind != KindMovedToHeap {
			t.Errorf("the filter let %s through: %s", f.Kind, f.Message)
		}
	}
	if len(said) != 1 || !strings.Contains(said[0], "compiling ./a") {
		t.Errorf("progress %q, want one line about compiling ./a", said)
	}
	if r.Pricing != nil || r.Base != "" || r.NewHeapEscapes() != 0 || r.BuildError() != nil || r.BaseWarning() != "" {
		t.Errorf("a plain review has pricing, a base or failures: %+v", r)
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "findings in") || !strings.Contains(text.String(), r.Findings[0].Message) {
		t.Errorf("text:\n%s", text.String())
	}
}

// A profile that cannot price is refused before the compile: with no go
// command to compile with, the profile's problem is what is reported.
func TestReviewRefusesProfileBeforeCompiling(t *testing.T) {
	p := &profile.Profile{SampleType: []*profile.ValueType{{Type: "inuse_space", Unit: "bytes"}}}
	_, err := Review(context.Background(), ReviewOptions{
		Options: Options{Dir: fixtureDir, Go: filepath.Join(t.TempDir(), "go")},
		Profile: p, ProfileName: "mem.pprof",
	})
	if err == nil || !strings.HasPrefix(err.Error(), "mem.pprof: the profile has no alloc_space") {
		t.Errorf("err = %v, want the profile named and its missing sample types", err)
	}
}

func TestReviewFailureLines(t *testing.T) {
	fail := func(pkgs ...string) []Failure {
		var fs []Failure
		for _, p := range pkgs {
			fs = append(fs, Failure{Package: p, Output: "# " + p + "\n" + p + ".go:1:1: undefined: x\nmore"})
		}
		return fs
	}
	for _, tc := range []struct {
		failures []Failure
		build    string
		base     string
	}{
		{nil, "", ""},
		{fail("m/a"), "m/a did not build: # m/a", "m/a did not build at main, so its escapes were not compared"},
		{fail("m/a", "m/b"), "2 packages did not build (first: m/a: # m/a)", "2 packages did not build at main (m/a, m/b), so their escapes were not compared"},
		{fail("m/a", "m/b", "m/c", "m/d", "m/e"), "5 packages did not build (first: m/a: # m/a)", "5 packages did not build at main (m/a, m/b, m/c and 2 more), so their escapes were not compared"},
	} {
		r := &Reviewed{Base: "main", Failures: tc.failures, BaseFailures: tc.failures}
		got := ""
		if err := r.BuildError(); err != nil {
			got = err.Error()
		}
		if got != tc.build {
			t.Errorf("BuildError = %q, want %q", got, tc.build)
		}
		if got := r.BaseWarning(); got != tc.base {
			t.Errorf("BaseWarning = %q, want %q", got, tc.base)
		}
	}
}
