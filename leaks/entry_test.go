package leaks

import (
	"strings"
	"testing"

	"github.com/leaklab/leaklab/internal/opterr"
)

func TestFirstSentence(t *testing.T) {
	for in, want := range map[string]string{
		"Memory grows; then it dies.": "Memory grows",
		"Short.":                      "Short",
		strings.Repeat("word ", 40):   strings.TrimSpace(strings.Repeat("word ", 21)) + "...",
	} {
		if got := firstSentence(in); got != want {
			t.Errorf("firstSentence(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEntryWithholdsTheCulprit(t *testing.T) {
	svc, err := Lookup("unbounded-cache")
	if err != nil {
		t.Fatal(err)
	}
	if e := svc.Entry(false); e.Culprit != "" || e.Explanation != "" || e.Name != svc.Name || len(e.Hints) != len(svc.Hints) {
		t.Errorf("entry without spoilers: %+v", e)
	}
	if e := svc.Entry(true); e.Culprit != svc.Culprit || e.Explanation != svc.Explanation {
		t.Errorf("entry with spoilers: %+v", e)
	}
	var b strings.Builder
	if err := (Entries{svc.Entry(true)}).WriteText(&b); err != nil || !strings.Contains(b.String(), "NAME  ") || !strings.Contains(b.String(), "CULPRIT") {
		t.Errorf("spoiler table: %v\n%s", err, b.String())
	}
}

func TestCatalogEntries(t *testing.T) {
	all, err := CatalogEntries("", false)
	if err != nil || len(all) != len(All()) {
		t.Fatalf("%d entries, %v; want the whole catalog", len(all), err)
	}
	heap, err := CatalogEntries(string(KindHeap), true)
	if err != nil || len(heap) == 0 || len(heap) == len(all) {
		t.Fatalf("%d heap entries of %d, %v", len(heap), len(all), err)
	}
	for _, e := range heap {
		if e.Kind != KindHeap || e.Culprit == "" {
			t.Errorf("entry %+v: want a heap service with its culprit (spoilers)", e)
		}
	}
	if _, err := CatalogEntries("disk", false); !opterr.Is(err) || !strings.Contains(err.Error(), `no service of kind "disk"`) {
		t.Errorf("kind disk: %v, want an option error", err)
	}
}
