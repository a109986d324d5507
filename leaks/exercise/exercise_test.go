package exercise

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMatches(t *testing.T) {
	culprit := "github.com/leaklab/leaklab/leaks.(*pageCache).render"
	for answer, want := range map[string]bool{
		culprit:                     true,
		"leaks.(*pageCache).render": true,
		"(*pageCache).render":       true,
		"pageCache.render":          true,
		" pageCache.render ":        true,
		"render":                    false,
		"pageCache.lookup":          false,
		"(*pageCache).serve":        false,
		"":                          false,
	} {
		if got := Matches(answer, culprit); got != want {
			t.Errorf("Matches(%q) = %v, want %v", answer, got, want)
		}
	}
	if !Matches("validateEmail", "github.com/leaklab/leaklab/leaks.validateEmail") {
		t.Error("a plain function name should match")
	}
}

func TestBookRoundTrip(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	b.Get("unbounded-cache").HintsShown = 2
	if err := b.Save(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := again.Get("unbounded-cache").HintsShown; got != 2 {
		t.Errorf("hints shown = %d after reopening, want 2", got)
	}
	os.WriteFile(filepath.Join(dir, progressFile), []byte("{not json"), 0o644)
	if _, err := Open(dir); err == nil {
		t.Error("a damaged progress file should be reported")
	}
}
