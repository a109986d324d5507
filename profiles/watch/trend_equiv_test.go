package watch

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

// The trend statistics were computed pair by pair (Mann–Kendall's S over
// every pair, Theil–Sen's median by sorting every pairwise slope) and
// every site got them on every judgement. They are now computed faster
// (a Fenwick tree, a selection) and only for the sites mayGrow lets
// through. These tests hold the new against the old on random series.

// pairwiseTheilSen is theilSen as it was: sort every slope.
func pairwiseTheilSen(pts []Point) float64 {
	var slopes []float64
	for i := range pts {
		for j := i + 1; j < len(pts); j++ {
			if dt := pts[j].T - pts[i].T; dt > 0 {
				slopes = append(slopes, (pts[j].V-pts[i].V)/dt)
			}
		}
	}
	if len(slopes) == 0 {
		return 0
	}
	sort.Float64s(slopes)
	m := len(slopes) / 2
	if len(slopes)%2 == 1 {
		return slopes[m]
	}
	return (slopes[m-1] + slopes[m]) / 2
}

// pairwiseMannKendallP is mannKendallP as it was: compare every pair.
func pairwiseMannKendallP(pts []Point) (int, float64) {
	n := len(pts)
	if n < 3 {
		return 0, 1
	}
	s := 0
	for i := range n {
		for j := i + 1; j < n; j++ {
			switch {
			case pts[j].V > pts[i].V:
				s++
			case pts[j].V < pts[i].V:
				s--
			}
		}
	}
	ties := map[float64]int{}
	for _, p := range pts {
		ties[p.V]++
	}
	variance := float64(n*(n-1)*(2*n+5)) / 18
	for _, t := range ties {
		if t > 1 {
			variance -= float64(t*(t-1)*(2*t+5)) / 18
		}
	}
	if variance <= 0 || s <= 0 {
		return s, 1
	}
	z := (float64(s) - 1) / math.Sqrt(variance)
	return s, 0.5 * math.Erfc(z/math.Sqrt2)
}

// randomSeries is a series of n points of one of the shapes a site's
// series takes: flat, few distinct values (sampled heap estimates tie
// often), noise, a climb, steps, a random walk; times 15 s apart, now and
// then two at the same time (theilSen skips those pairs).
func randomSeries(rng *rand.Rand, n int) []Point {
	pts := make([]Point, n)
	level, t := float64(rng.IntN(50)), 0.0
	shape := rng.IntN(6)
	for i := range pts {
		if rng.IntN(20) != 0 {
			t += 15
		}
		v := level
		switch shape {
		case 1:
			v = float64(rng.IntN(4)) * sampleBytes
		case 2:
			v = level + rng.NormFloat64()*10
		case 3:
			v = level + float64(i)*rng.Float64()*3 + float64(rng.IntN(3))
		case 4:
			v = level + float64(i/(1+rng.IntN(8)))
		case 5:
			level += float64(rng.IntN(3) - 1)
			v = level
		}
		pts[i] = Point{T: t, V: v}
	}
	return pts
}

func TestTrendStatisticsMatchPairwise(t *testing.T) {
	// Parallel: seven seconds of computing, which the package's live
	// watches (waiting on the clock) need not wait for.
	t.Parallel()
	rng := rand.New(rand.NewPCG(14, 240))
	series := 1500
	if testing.Short() {
		series = 300
	}
	for i := range series {
		n := 1 + rng.IntN(241)
		pts := randomSeries(rng, n)
		if got, want := theilSen(pts), pairwiseTheilSen(pts); got != want {
			t.Fatalf("series %d (%d points): theilSen = %v, pairwise %v", i, n, got, want)
		}
		wantS, wantP := pairwiseMannKendallP(pts)
		if n >= 3 {
			if s, _ := mannKendallS(pts); s != wantS {
				t.Fatalf("series %d (%d points): S = %d, pairwise %d", i, n, s, wantS)
			}
		}
		// the tie correction is summed in another order (the old one in map
		// order, which varies from run to run): equal but for rounding
		if got := mannKendallP(pts); math.Abs(got-wantP) > 1e-12*math.Max(wantP, 1e-300) {
			t.Fatalf("series %d (%d points): Mann–Kendall p = %v, pairwise %v", i, n, got, wantP)
		}
	}
}

// simulatedHeapSite is a heap site of n snapshots 15 s apart whose
// 64-byte objects are allocated at perMinute bytes a minute and sampled
// as the runtime samples them; each is kept for good with probability
// kept, else freed after an exponential life of mean life seconds. A leak
// keeps all (kept 1), a cache none, a growing slice about half.
func simulatedHeapSite(rng *rand.Rand, n int, perMinute, kept, life float64) *site {
	s := newSampledSite("site", 64)
	perSnapshot := perMinute / 4 / sampleBytes
	var ends []float64 // of the sampled objects in use
	allocated := 0
	for i := range n {
		at := 15 * float64(i)
		for range poisson(rng, perSnapshot) {
			allocated++
			end := math.Inf(1)
			if rng.Float64() >= kept {
				end = at + rng.ExpFloat64()*life
			}
			ends = append(ends, end)
		}
		live := ends[:0]
		for _, e := range ends {
			if e > at {
				live = append(live, e)
			}
		}
		ends = live
		s.add(at, allocated, len(ends))
	}
	return s.st
}

// windowGoroutines is a goroutine site of n snapshots: a level that
// wanders by a few goroutines, plus perMinute more a minute.
func windowGoroutines(rng *rand.Rand, n int, perMinute float64) *site {
	st := &site{key: siteKey{kind: KindGoroutine, function: "conn"}}
	level := float64(rng.IntN(20))
	for i := range n {
		v := level + float64(rng.IntN(5)) + math.Floor(perMinute*float64(i)/4)
		st.points = append(st.points, Point{T: 15 * float64(i), V: v})
	}
	return st
}

func TestJudgeGateKeepsVerdicts(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(14, 1))
	d := NewDetector(time.Time{}, OwnCode{})
	reported, gated := 0, 0
	runs := 3000
	if testing.Short() {
		runs = 1000
	}
	for i := range runs {
		n := MinSnapshots - 1 + rng.IntN(242-MinSnapshots)
		var st *site
		switch rng.IntN(3) {
		case 0: // leaks, slices and caches, fast and slow
			perMinute := math.Exp(rng.Float64() * math.Log(32<<20))
			kept := []float64{0, 0, 0.5, 0.9, 1}[rng.IntN(5)]
			st = simulatedHeapSite(rng, n, perMinute, kept, 60+rng.Float64()*1800)
		case 1: // a series of another shape, as a heap site allocating a lot
			st = &site{key: siteKey{kind: KindHeap, function: "other"}, points: randomSeries(rng, n)}
			for j, p := range st.points {
				st.allocs = append(st.allocs, Point{T: p.T, V: float64(j+1) * 8 * sampleBytes})
				st.allocObjs = append(st.allocObjs, Point{T: p.T, V: float64(j+1) * 1024})
			}
		default:
			st = windowGoroutines(rng, n, []float64{0, 0, 1, 10, 40}[rng.IntN(5)])
		}
		ser := &series{sites: map[siteKey]*site{st.key: st}}
		got, gotOK := d.judge(ser, st)
		want, wantOK := d.verdict(ser, st)
		if gotOK != wantOK || got.Confidence != want.Confidence || got.GrowthPerMinute != want.GrowthPerMinute {
			t.Fatalf("site %d (%s, %d points): judge says %v %q %v, the full evidence %v %q %v",
				i, st.key.kind, n, gotOK, got.Confidence, got.GrowthPerMinute, wantOK, want.Confidence, want.GrowthPerMinute)
		}
		if wantOK {
			reported++
		}
		if !d.mayGrow(st) {
			gated++
		}
	}
	// Both kinds of site must be common, or the comparison proves little.
	t.Logf("%d of %d sites reported, %d turned down before the trend statistics", reported, runs, gated)
	if reported < runs/10 || gated < runs/3 {
		t.Fatalf("%d sites reported and %d turned down early of %d: the random sites do not exercise both ways", reported, gated, runs)
	}
}
