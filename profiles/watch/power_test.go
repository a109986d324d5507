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

// simulatedLeak is a heap site whose objects are allocated at perMinute
// bytes a minute until stopAt seconds, and all retained, watched as
// watch.Run does by default: 13 snapshots 5 s apart, starting 2 s after the
// allocations did. Each sampled allocation adds one sample's worth to the
// in-use (and allocated) estimate; the arrivals are a Poisson process.
func simulatedLeak(rng *rand.Rand, perMinute, stopAt float64) *site {
	perSecond := perMinute / 60 / sampleBytes // samples a second
	st := &site{key: siteKey{kind: KindHeap, function: "leak"}}
	count := 0
	next := rng.ExpFloat64() / perSecond
	for i := range 13 {
		at := 2 + 5*float64(i)
		for next < at && next < stopAt {
			count++
			next += rng.ExpFloat64() / perSecond
		}
		v := float64(count * sampleBytes)
		st.points = append(st.points, Point{T: at - 2, V: v})
		st.allocs = append(st.allocs, Point{T: at - 2, V: v})
	}
	return st
}

// simulateWatches runs simulated watches of a leak and returns the share
// of them that reported it and the median growth they estimated.
func simulateWatches(runs int, perMinute, stopAt float64) (share, medianGrowth float64) {
	var growth []float64
	for r := range runs {
		st := simulatedLeak(rand.New(rand.NewPCG(uint64(r), 1)), perMinute, stopAt)
		d := NewDetector(time.Time{}, OwnCode{})
		if s, ok := d.judge(&series{sites: map[siteKey]*site{st.key: st}}, st); ok {
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
	const runs = 10000
	for _, mb := range []float64{3, 6, 24, 96} {
		if got, _ := simulateWatches(runs, mb*1e6, 30); got > 0 {
			t.Errorf("growth of %.0f MB/min that stopped halfway was reported in %.2f%% of watches", mb, 100*got)
		}
	}
}
