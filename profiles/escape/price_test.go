package escape

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

// lessonProfile runs two of the lesson benchmarks with every allocation
// sampled and returns the real allocs profile they wrote.
func lessonProfile(t *testing.T) *profile.Profile {
	t.Helper()
	out := filepath.Join(t.TempDir(), "mem.pprof")
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", "Pointer_|Fmt_", "-benchtime", "2000x",
		"-memprofile", out, "-memprofilerate", "1", "-o", filepath.Join(t.TempDir(), "escapes.test"), ".")
	cmd.Dir = "../../leaks/escapes"
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go test -memprofile: %v\n%s", err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPriceWithRealProfile(t *testing.T) {
	p := lessonProfile(t)
	r := analyzeFixture(t, Options{Dir: "../../leaks/escapes", Packages: []string{"."}})
	pricing, err := Price(r, p)
	if err != nil {
		t.Fatal(err)
	}
	cost := func(fn, msg string) *Cost {
		t.Helper()
		got := find(r.Findings, fn, msg)
		if len(got) != 1 {
			t.Fatalf("want one %q in %s, got %d", msg, fn, len(got))
		}
		return got[0].Cost
	}
	// 2000 benchmark iterations each allocate one 16-byte Point, and box
	// one int, 8 bytes, which the runtime's tiny allocator packs two to a
	// 16-byte block: the profile sees a block, not each box.
	for _, tt := range []struct {
		fn, msg  string
		minBytes int64
	}{
		{"NewPointPtr", "moved to heap: p", 2000 * 16},
		{"LabelSprintf", "id escapes to heap", 2000 * 8},
	} {
		c := cost(tt.fn, tt.msg)
		if c == nil || c.AllocBytes < tt.minBytes {
			t.Errorf("%s %q: cost %+v, want at least %d bytes", tt.fn, tt.msg, c, tt.minBytes)
		}
	}
	// Escapes the benchmarks did not run cost nothing and are not ranked.
	if c := cost("MakeCounter", "moved to heap: n"); c != nil {
		t.Errorf("MakeCounter was not run, but has cost %+v", c)
	}
	if len(pricing.Ranked) < 2 || pricing.Ranked[0].Cost.AllocBytes < pricing.Ranked[len(pricing.Ranked)-1].Cost.AllocBytes {
		t.Errorf("ranking %+v is not by bytes, largest first", pricing.Ranked)
	}
	if pricing.MatchedBytes <= 0 || pricing.MatchedBytes > pricing.TotalBytes {
		t.Errorf("matched %d of %d bytes", pricing.MatchedBytes, pricing.TotalBytes)
	}
}

func TestPriceRejectsOtherProfiles(t *testing.T) {
	p := &profile.Profile{SampleType: []*profile.ValueType{{Type: "goroutine", Unit: "count"}}}
	_, err := Price(&Report{}, p)
	if err == nil || !strings.Contains(err.Error(), "heap or allocs") {
		t.Fatalf("err = %v, want one asking for a heap or allocs profile", err)
	}
}

func TestSiteKey(t *testing.T) {
	// A profile from a -trimpath build names files by import path; the
	// analysis by absolute path. Both must meet.
	a := siteKey("/home/me/src/leaklab/leaks/escapes/escapes.go", 31)
	b := siteKey("github.com/leaklab/leaklab/leaks/escapes/escapes.go", 31)
	if a != b {
		t.Errorf("%q != %q", a, b)
	}
	if siteKey("/x/leaks/escapes/escapes.go", 31) == siteKey("/x/leaks/other/escapes.go", 31) {
		t.Error("files in different directories must not meet")
	}
}

func TestLessonsExplained(t *testing.T) {
	r := analyzeFixture(t, Options{Dir: "../../leaks/escapes", Packages: []string{"."}})
	tests := []struct {
		leaky, msg, hint string
		kind             Kind
		fixed            string
	}{
		{"NewPointPtr", "moved to heap: p", "return the value", KindMovedToHeap, "NewPointValue"},
		{"AppendBoxed", "p escapes to heap", "boxed", KindEscapes, "AppendTyped"},
		{"MakeCounter", "moved to heap: n", "closure", KindMovedToHeap, "(*Counter).Next"},
		{"SumOfSquaresDynamic", "make([]int, n) does not escape", "run time", KindDoesNotEscape, "SumOfSquaresFixed"},
		{"LabelSprintf", "id escapes to heap", "fmt", KindEscapes, "AppendLabel"},
		{"SquareViaPointer", "moved to heap: result", "goroutine", KindMovedToHeap, "(*Squarer).Square"},
	}
	for _, tt := range tests {
		t.Run(tt.leaky, func(t *testing.T) {
			got := find(r.Findings, tt.leaky, tt.msg)
			if len(got) != 1 || got[0].Kind != tt.kind || !strings.Contains(got[0].Hint, tt.hint) {
				t.Fatalf("want one %s %q with a hint about %q, got %+v", tt.kind, tt.msg, tt.hint, got)
			}
			// The fixed twin has no heap allocation of its own; append's
			// growth path, which only runs when the caller's buffer is
			// full, is the one escape it may keep.
			for _, f := range r.Findings {
				if f.Function == tt.fixed && f.Kind.Heap() && f.Message != "append escapes to heap" {
					t.Errorf("fixed %s: %s %q", tt.fixed, f.Kind, f.Message)
				}
			}
		})
	}
}
