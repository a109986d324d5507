package watch

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

// The heap profiler samples one allocation per ~512 KiB, so a leak of a
// few MB a minute is a dozen samples a minute: whether a one-minute watch
// finds it is a matter of chance. These tests measure the detector's power
// and its false-alarm rate on simulated sampled series (seeded, so they
// are deterministic), which a real-process test, one watch at a time,
// cannot.

const sampleBytes = 512 << 10

// skipSimulationInShort skips a test that simulates many watches when
// -short is given, as in the race tier of .ci/run: the detector starts no
// goroutine, so the race detector has nothing to check in it, and the run
// without -short (go test ./...) checks its power and false alarms.
// Instrumented for races, these simulations took two minutes of the
// package's race run (go test -race -short ./profiles/watch -v).
func skipSimulationInShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("simulates many watches of a detector without goroutines: nothing for -race; the run without -short checks its statistics")
	}
}

// sampledSite is a heap site whose objects of size bytes are sampled as
// the runtime samples them (one per sampleBytes allocated, on average);
// add records a snapshot, given how many of its sampled objects were ever
// allocated and how many are still in use, scaled as pprof scales them.
type sampledSite struct {
	st               *site
	perSample, count float64
}

func newSampledSite(name string, size float64) *sampledSite {
	q := -math.Expm1(-size / sampleBytes) // the chance an object is sampled
	return &sampledSite{st: &site{key: siteKey{kind: KindHeap, function: name}}, perSample: size / q, count: 1 / q}
}

func (s *sampledSite) add(t float64, allocated, inUse int) {
	s.st.points = append(s.st.points, Point{T: t, V: float64(inUse) * s.perSample})
	s.st.allocs = append(s.st.allocs, Point{T: t, V: float64(allocated) * s.perSample})
	s.st.allocObjs = append(s.st.allocObjs, Point{T: t, V: float64(allocated) * s.count})
}

// judged says whether the detector reports the site.
func judged(st *site) (Suspect, bool) {
	d := NewDetector(time.Time{}, OwnCode{})
	return d.judge(&series{sites: map[siteKey]*site{st.key: st}}, st)
}

// simulatedLeak is a heap site whose 64-byte objects are allocated at
// perMinute bytes a minute until stopAt seconds, and all retained, watched
// as watch.Run does by default: 13 snapshots 5 s apart, starting 2 s after
// the allocations did. The sampled allocations are a Poisson process.
func simulatedLeak(rng *rand.Rand, perMinute, stopAt float64) *sampledSite {
	return simulatedLeakFor(rng, perMinute, stopAt, 13)
}

// simulatedLeakFor is simulatedLeak watched for the given number of
// snapshots.
func simulatedLeakFor(rng *rand.Rand, perMinute, stopAt float64, snapshots int) *sampledSite {
	perSecond := perMinute / 60 / sampleBytes // samples a second
	s := newSampledSite("leak", 64)
	count := 0
	next := rng.ExpFloat64() / perSecond
	for i := range snapshots {
		at := 2 + 5*float64(i)
		for next < at && next < stopAt {
			count++
			next += rng.ExpFloat64() / perSecond
		}
		s.add(at-2, count, count)
	}
	return s
}

// simulateWatches runs simulated watches of a leak and returns the share
// of them that reported it and the median growth they estimated.
func simulateWatches(runs int, perMinute, stopAt float64) (share, medianGrowth float64) {
	var growth []float64
	for r := range runs {
		if s, ok := judged(simulatedLeak(rand.New(rand.NewPCG(uint64(r), 1)), perMinute, stopAt).st); ok {
			growth = append(growth, s.GrowthPerMinute)
		}
	}
	if len(growth) == 0 {
		return 0, 0
	}
	sort.Float64s(growth)
	return float64(len(growth)) / float64(runs), growth[len(growth)/2]
}

// A leak of 6 MB a minute is found by almost every one-minute watch, and
// faster leaks by all of them; the growth they report is right on average.
func TestHeapDetectorPower(t *testing.T) {
	skipSimulationInShort(t)
	t.Parallel()
	const runs = 10000
	for _, c := range []struct {
		mbPerMinute, atLeast float64
	}{{6, 0.985}, {12, 0.999}, {24, 1}} {
		rate := c.mbPerMinute * 1e6
		got, median := simulateWatches(runs, rate, 1e9)
		t.Logf("leak of %2.0f MB/min: found in %.2f%% of %d watches, median growth %.2f MB/min", c.mbPerMinute, 100*got, runs, median/1e6)
		if got < c.atLeast {
			t.Errorf("leak of %.0f MB/min found in %.2f%% of watches, want at least %.1f%%", c.mbPerMinute, 100*got, 100*c.atLeast)
		}
		if math.Abs(median-rate) > 0.1*rate {
			t.Errorf("leak of %.0f MB/min: median growth %.2f MB/min, want within 10%%", c.mbPerMinute, median/1e6)
		}
	}
}

// Allocations that stop by the middle of the watch (a cache that filled
// and levelled off) are never reported, however fast they came.
func TestHeapDetectorIgnoresLevelledGrowth(t *testing.T) {
	skipSimulationInShort(t)
	t.Parallel()
	const runs = 10000
	for _, mb := range []float64{3, 6, 24, 96} {
		if got, _ := simulateWatches(runs, mb*1e6, 30); got > 0 {
			t.Errorf("growth of %.0f MB/min that stopped halfway was reported in %.2f%% of watches", mb, 100*got)
		}
	}
}

// poisson draws from a Poisson distribution of the given mean (a normal
// approximation for large means).
func poisson(rng *rand.Rand, mean float64) int {
	if mean > 50 {
		return max(0, int(math.Round(mean+math.Sqrt(mean)*rng.NormFloat64())))
	}
	limit, k, p := math.Exp(-mean), 0, 1.0
	for {
		if p *= rng.Float64(); p < limit {
			return k
		}
		k++
	}
}

// simulatedCache is a full cache of capacity bytes in entries of size
// bytes, replacing perSecond bytes of entries a second (evicting the
// oldest, or a random one), watched for a minute every 5 s. Its sampled
// in-use estimate rises and falls as sampled entries come and go.
func simulatedCache(rng *rand.Rand, size, capacity, perSecond float64, fifo bool) *sampledSite {
	return simulatedCacheFor(rng, size, capacity, perSecond, fifo, 13)
}

// simulatedCacheFor is simulatedCache watched for the given number of
// snapshots.
func simulatedCacheFor(rng *rand.Rand, size, capacity, perSecond float64, fifo bool, snapshots int) *sampledSite {
	s := newSampledSite("cache", size)
	q := 1 / s.count
	const step = 0.5 // seconds
	perStep := perSecond * step / size
	// In a steady state, each entry of the cache was sampled or not; kept
	// in order of age when the oldest is evicted.
	var ages []int
	live := poisson(rng, capacity/size*q)
	if fifo {
		live = 0
		for range max(1, int(math.Round(capacity/perSecond/step))) {
			ages = append(ages, poisson(rng, perStep*q))
			live += ages[len(ages)-1]
		}
	}
	allocated, now := live, 0.0
	for i := range snapshots {
		at := 5 * float64(i)
		for ; now < at; now += step {
			added := poisson(rng, perStep*q)
			allocated += added
			if fifo {
				ages = append(ages, added)
				live += added - ages[0]
				ages = ages[1:]
			} else {
				evicted := poisson(rng, perStep*math.Min(1, float64(live)/(capacity/size)))
				live += added - min(evicted, live)
			}
		}
		s.add(at, allocated, live)
	}
	return s
}

// A cache in a steady state is healthy, but when its entries outlive the
// watch its sampled estimate wanders like a random walk, which the trend
// tests alone take for growth: without RetentionP, the worst cache of
// this grid was reported in 10.5% of one-minute watches, 8.2% as likely.
// Testing how little it freed against what it allocated bounds that by
// the test's 5% level, and "likely" by 1% (with some slack here: 400
// runs a cache measure a rate to about a percent).
func TestHeapDetectorIgnoresReplacingCaches(t *testing.T) {
	skipSimulationInShort(t)
	t.Parallel()
	const runs = 400
	worst, worstLikely := 0.0, 0.0
	for _, fifo := range []bool{true, false} {
		for _, size := range []float64{64, 16 << 10, 1 << 20} {
			for _, c := range []struct{ capacity, perSecond float64 }{
				{8 << 20, 16 << 10}, {8 << 20, 128 << 10}, {64 << 20, 128 << 10}, {64 << 20, 1 << 20}, {512 << 20, 1 << 20}, {64 << 20, 8 << 20},
			} {
				reported, likely := 0, 0
				for r := range runs {
					rng := rand.New(rand.NewPCG(uint64(r), 3))
					if s, ok := judged(simulatedCache(rng, size, c.capacity, c.perSecond, fifo).st); ok {
						reported++
						if s.Confidence == Likely {
							likely++
						}
					}
				}
				share, likelyShare := float64(reported)/runs, float64(likely)/runs
				worst, worstLikely = math.Max(worst, share), math.Max(worstLikely, likelyShare)
				if share > 0.05 || likelyShare > 0.015 {
					t.Errorf("cache of %.0f MiB in %.0f-byte entries replacing %.0f KiB/s (oldest first: %v): reported in %.1f%% of watches, as likely in %.1f%%",
						c.capacity/(1<<20), size, c.perSecond/1024, fifo, 100*share, 100*likelyShare)
				}
			}
		}
	}
	t.Logf("caches reported in at most %.1f%% of watches, as likely in at most %.1f%%", 100*worst, 100*worstLikely)
}

// simulatedGoroutines is a healthy goroutine site in a steady state:
// goroutines start at perSecond (Poisson arrivals) and each lives an
// exponentially distributed time of mean life seconds, as keep-alive
// connections or sessions do; watched for a minute every 5 s.
func simulatedGoroutines(rng *rand.Rand, perSecond, life float64) *site {
	var ends []float64
	for range poisson(rng, perSecond*life) { // already running at the start
		ends = append(ends, rng.ExpFloat64()*life)
	}
	st := &site{key: siteKey{kind: KindGoroutine, function: "conn"}}
	next := rng.ExpFloat64() / perSecond
	for i := range 13 {
		at := 5 * float64(i)
		for ; next < at; next += rng.ExpFloat64() / perSecond {
			ends = append(ends, next+rng.ExpFloat64()*life)
		}
		alive := 0
		for _, end := range ends {
			if end > at {
				alive++
			}
		}
		st.points = append(st.points, Point{T: at, V: float64(alive)})
	}
	return st
}

// A known weakness, measured: when a healthy site's goroutines live as
// long as the watch or longer, its exact count still wanders like a random
// walk, and the trend tests (which assume independent noise around a
// trend) take a wander up for growth. Short lives are fine. The bounds
// below are today's rates, so that a change making them worse fails. A
// drift test on the increments (valid under a random walk) cut these rates
// by about three but halved the power on leaks at a site whose healthy
// goroutines come and go, so it was not adopted; telling the two kinds of
// noise apart needs more than a minute of counts, or goroutine IDs.
func TestGoroutineDetectorOnLongLivedGoroutines(t *testing.T) {
	skipSimulationInShort(t)
	t.Parallel()
	const runs = 1000
	for _, c := range []struct {
		perSecond, life, atMost float64
	}{{20, 1, 0.01}, {20, 10, 0.06}, {1, 60, 0.12}, {5, 300, 0.18}, {20, 1800, 0.18}} {
		reported := 0
		for r := range runs {
			if _, ok := judged(simulatedGoroutines(rand.New(rand.NewPCG(uint64(r), 9)), c.perSecond, c.life)); ok {
				reported++
			}
		}
		share := float64(reported) / runs
		t.Logf("%4.0f goroutines/s living %5.0f s on average: reported in %4.1f%% of one-minute watches", c.perSecond, c.life, 100*share)
		if share > c.atMost {
			t.Errorf("%.0f goroutines/s living %.0f s: reported in %.1f%% of watches, more than today's %.0f%%", c.perSecond, c.life, 100*share, 100*c.atMost)
		}
	}
}
