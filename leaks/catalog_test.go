package leaks_test

import (
	"strings"
	"testing"

	"github.com/leaklab/leaklab/leaks"
)

// The minimum: at least 15 services covering heap, goroutine and
// slow-path problems, each entry complete enough to be an exercise.
func TestCatalogEntriesAreComplete(t *testing.T) {
	all := leaks.All()
	if len(all) < 15 {
		t.Fatalf("catalog has %d services, want at least 15", len(all))
	}
	kinds := map[leaks.Kind]int{}
	for _, s := range all {
		kinds[s.Kind]++
		if !strings.HasPrefix(s.Culprit, "github.com/leaklab/leaklab/leaks.") {
			t.Errorf("%s: culprit %q is not a fully qualified function in package leaks", s.Name, s.Culprit)
		}
		if n := len(s.Hints); n < 2 || n > 3 {
			t.Errorf("%s: %d hints, want two or three", s.Name, n)
		}
		if s.Summary == "" || s.Explanation == "" || s.Profile == "" || s.Symptom.Metric == "" {
			t.Errorf("%s: summary, explanation, profile and symptom metric are all required", s.Name)
		}
		for _, e := range s.Endpoints {
			if !strings.HasPrefix(e.Path, "/") || e.Doc == "" {
				t.Errorf("%s: endpoint %+v needs an absolute path and a doc", s.Name, e)
			}
		}
		if s.Symptom.Fixed >= s.Symptom.Leaky {
			t.Errorf("%s: symptom threshold for the fixed variant (%v) must be below the leaky one (%v)", s.Name, s.Symptom.Fixed, s.Symptom.Leaky)
		}
		if got, err := leaks.Lookup(s.Name); err != nil || got != s {
			t.Errorf("Lookup(%q) = %v, %v", s.Name, got, err)
		}
	}
	for _, k := range []leaks.Kind{leaks.KindHeap, leaks.KindGoroutine, leaks.KindCPU, leaks.KindLock, leaks.KindAlloc} {
		if kinds[k] == 0 {
			t.Errorf("no service of kind %s", k)
		}
	}
	if kinds[leaks.KindHeap] < 4 || kinds[leaks.KindGoroutine] < 4 {
		t.Errorf("want at least four heap and four goroutine services, have %v", kinds)
	}
	if _, err := leaks.Lookup("no-such-service"); err == nil || !strings.Contains(err.Error(), "leaklab services") {
		t.Errorf("Lookup of an unknown name: %v, want an error pointing at 'leaklab services'", err)
	}
}
