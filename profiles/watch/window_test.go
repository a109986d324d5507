package watch

import (
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// goroutinesAt is a goroutine profile with n goroutines blocked in fn.
func goroutinesAt(fn string, n int64) *profile.Profile {
	f := &profile.Function{ID: 1, Name: fn}
	loc := &profile.Location{ID: 1, Line: []profile.Line{{Function: f}}}
	return &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "goroutine", Unit: "count"}},
		Function:   []*profile.Function{f}, Location: []*profile.Location{loc},
		Sample: []*profile.Sample{{Location: []*profile.Location{loc}, Value: []int64{n}}},
	}
}

// TestDropBefore: growth that has left the window is no longer judged,
// and a site left with nothing but zeros is forgotten.
func TestDropBefore(t *testing.T) {
	t.Parallel()
	start := time.Unix(1_800_000_000, 0)
	d := NewDetector(start, OwnCodeFor("example.com/app"))
	at := start
	for i := range 12 { // a minute of growth
		d.AddGoroutines(at, goroutinesAt("example.com/app.worker", int64(100*i)), "")
		at = at.Add(5 * time.Second)
	}
	if len(d.Suspects()) != 1 {
		t.Fatalf("growth: suspects %+v, want worker", d.Suspects())
	}
	for range 24 { // two flat minutes of another site
		d.AddGoroutines(at, goroutinesAt("example.com/app.idle", 3), "")
		at = at.Add(5 * time.Second)
	}
	d.DropBefore(at.Add(-time.Minute))
	if s := d.Suspects(); len(s) != 0 {
		t.Errorf("after the growth left the window: suspects %+v", s)
	}
	if _, ok := d.gor.sites[siteKey{kind: KindGoroutine, function: "example.com/app.worker"}]; ok {
		t.Error("the worker site, all zeros in the window, is still kept")
	}
	if n, want := len(d.gor.times), 12; n != want {
		t.Errorf("%d snapshot times kept, want the window's %d", n, want)
	}
	for _, st := range d.gor.sites {
		if len(st.points) != len(d.gor.times) {
			t.Errorf("site %s: %d points for %d times", st.key.function, len(st.points), len(d.gor.times))
		}
	}
}
