package watch

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/testbin"
)

// A window longer than maxPoints snapshots is judged on every stride-th
// snapshot of it (series.stride), so that judging costs the same however
// long the window. These tests hold that thinned series against the full
// one on random series: the even spacing, then the statistics and the
// verdicts. Thinning recent snapshots less than old ones (halving the
// whole series each time it reaches the bound, as the detector once did)
// judges a long window mostly by its last part, and fails both.

// slidingGoroutines feeds d one goroutine snapshot per value, 15 s apart,
// sliding a window of window snapshots, and returns the values the window
// holds at the end (the full series the thinned one stands for).
func slidingGoroutines(d *Detector, start time.Time, values []float64, window int) []Point {
	var full []Point
	for i, v := range values {
		at := start.Add(time.Duration(i) * 15 * time.Second)
		d.AddGoroutines(at, goroutinesAt("example.com/app.worker", int64(v)), "")
		cut := at.Add(-time.Duration(window) * 15 * time.Second)
		d.DropBefore(cut)
		full = append(full, Point{T: at.Sub(start).Seconds(), V: v})
		for len(full) > 0 && full[0].T < cut.Sub(start).Seconds() {
			full = full[1:]
		}
	}
	return full
}

// TestThinnedWindowEvenlySpaced: a sliding window of four times maxPoints
// snapshots holds at most maxPoints of them, at most a stride apart and
// evenly spaced but for the newest, and both ends of the window.
func TestThinnedWindowEvenlySpaced(t *testing.T) {
	t.Parallel()
	const window = 4 * maxPoints
	for _, fed := range []int{window - 1, window + 1, window + 77, 3*window + 5} {
		start := time.Unix(1_800_000_000, 0)
		d := NewDetector(start, OwnCodeFor("example.com/app"))
		values := make([]float64, fed)
		for i := range values {
			values[i] = float64(1 + i%7)
		}
		full := slidingGoroutines(d, start, values, window)
		st := d.gor.sites[siteKey{kind: KindGoroutine, function: "example.com/app.worker"}]
		pts := st.points
		if len(pts) > maxPoints || len(pts) < maxPoints/2 {
			t.Fatalf("fed %d: %d points held, want %d to %d", fed, len(pts), maxPoints/2, maxPoints)
		}
		if pts[len(pts)-1] != full[len(full)-1] {
			t.Errorf("fed %d: last point %v, want the newest snapshot %v", fed, pts[len(pts)-1], full[len(full)-1])
		}
		gap := pts[1].T - pts[0].T
		if pts[0].T-full[0].T >= gap {
			t.Errorf("fed %d: the first point is %.0f s into the window, a stride is %.0f s", fed, pts[0].T-full[0].T, gap)
		}
		for i := 2; i < len(pts); i++ {
			g := pts[i].T - pts[i-1].T
			if g != gap && !(i == len(pts)-1 && g < gap) {
				t.Fatalf("fed %d: points %d and %d are %.0f s apart, the others %.0f s", fed, i-1, i, g, gap)
			}
		}
		for i, p := range pts {
			if p.T != d.gor.times[i] || len(pts) != len(d.gor.times) {
				t.Fatalf("fed %d: point %d at %.0f s, snapshot time %.0f s (%d points, %d times)", fed, i, p.T, d.gor.times[i], len(pts), len(d.gor.times))
			}
		}
	}
}

// randomWindowSeries is a goroutine count of n snapshots 15 s apart: a
// level with noise, plus one of: nothing, steady growth, growth that stops
// three quarters in, growth that starts three quarters in, a random walk.
func randomWindowSeries(rng *rand.Rand, n int) (values []float64, shape string) {
	level := 20 + float64(rng.IntN(100))
	perMinute := []float64{1, 10, 40, 100}[rng.IntN(4)]
	shapes := []string{"flat", "steady", "stops", "starts", "walk"}
	shape = shapes[rng.IntN(len(shapes))]
	walk := 0.0
	for i := range n {
		minute := float64(i) / 4
		v := level + float64(rng.IntN(11)-5)
		switch shape {
		case "steady":
			v += perMinute * minute
		case "stops":
			v += perMinute * math.Min(minute, 0.75*float64(n)/4)
		case "starts":
			v += perMinute * math.Max(0, minute-0.75*float64(n)/4)
		case "walk":
			walk += float64(rng.IntN(3) - 1)
			v += walk
		}
		values = append(values, math.Max(0, math.Round(v)))
	}
	return values, shape
}

// TestThinnedWindowKeepsTrend: over random windows of 4 h at 15 s (960
// snapshots), the trend of the thinned series is the trend of the full
// one: the Theil–Sen slope within 20% of the full series' plus half a
// goroutine a minute (a twentieth of the least growth reported), and the
// same verdict for nearly every site. The median slope of a series with a
// kink (growth that starts or stops within the window) depends on how far
// apart its points are, through the noise of the pairs close together,
// hence 20%; steady growth stays within 1%, flat series and random walks
// within 0.02 a minute.
// Measured (go test ./profiles/watch -run TestThinnedWindowKeepsTrend -v):
// the worst slope used 68% of its allowance, and 2 verdicts of 150 differ,
// one a growth of exactly the threshold (10 a minute), the other a growth
// that starts three quarters in. Halving the whole series each time it
// fills instead, the slope of such a growth came out six times the full
// series' (0.89 against 0.15 a minute).
func TestThinnedWindowKeepsTrend(t *testing.T) {
	t.Parallel()
	const window = 4 * maxPoints
	rng := rand.New(rand.NewPCG(14, 2))
	runs := 150
	switch {
	case testbin.RaceEnabled:
		// One goroutine computing: nothing for the race detector to
		// find, and at its speed 60 windows took 48 s, the longest test
		// of CI's race step. The first 20 windows still run the code.
		runs = 20
	case testing.Short():
		runs = 60
	}
	worst, disagree, suspects := 0.0, 0, 0
	for i := range runs {
		fed := window + 1 + rng.IntN(window)
		values, shape := randomWindowSeries(rng, fed)
		start := time.Unix(1_800_000_000, 0)
		d := NewDetector(start, OwnCodeFor("example.com/app"))
		full := slidingGoroutines(d, start, values, window)
		st := d.gor.sites[siteKey{kind: KindGoroutine, function: "example.com/app.worker"}]
		thinTrend, fullTrend := fitTrend(st.points), fitTrend(full)
		allowed := 0.2*math.Abs(fullTrend.SlopePerMinute) + 0.5
		if diff := math.Abs(thinTrend.SlopePerMinute - fullTrend.SlopePerMinute); diff > allowed {
			t.Fatalf("window %d (%s, fed %d): slope %.3f/min thinned to %d points, %.3f/min over all %d",
				i, shape, fed, thinTrend.SlopePerMinute, len(st.points), fullTrend.SlopePerMinute, len(full))
		} else {
			worst = math.Max(worst, diff/allowed)
		}
		fullSite := &site{key: st.key, points: full}
		_, fullOK := d.verdict(&series{sites: map[siteKey]*site{st.key: fullSite}}, fullSite)
		_, thinOK := d.judge(&d.gor, st)
		if fullOK {
			suspects++
		}
		if fullOK != thinOK {
			disagree++
			t.Logf("window %d (%s): suspect over all %d points %t, over %d thinned %t (p %.2g and %.2g)",
				i, shape, len(full), fullOK, len(st.points), thinOK, fullTrend.P, thinTrend.P)
		}
	}
	t.Logf("%d windows, %d suspects over the full series, %d verdicts differ; the worst slope used %.0f%% of its allowance",
		runs, suspects, disagree, 100*worst)
	if suspects < runs/5 || suspects > runs*4/5 {
		t.Fatalf("%d suspects in %d windows: the random windows do not exercise both verdicts", suspects, runs)
	}
	if disagree > runs/20 {
		t.Fatalf("%d of %d verdicts differ between the thinned series and the full one", disagree, runs)
	}
}
