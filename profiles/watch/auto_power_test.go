package watch

import (
	"math/rand/v2"
	"testing"
	"time"
)

// autoVerdict replays an Auto watch over a simulated series, as Run
// decides: from the 13th snapshot (one minute at 5 s) on, it stops when
// autoStop says so, or at the last snapshot; it returns the verdict then and how many snapshots it took.
func autoVerdict(full *site) (Suspect, bool, int) {
	decided := 0
	for n := 13; n <= len(full.points); n++ {
		st := &site{key: full.key, points: full.points[:n], allocs: full.allocs[:n], allocObjs: full.allocObjs[:n]}
		d := NewDetector(time.Time{}, OwnCode{})
		d.heap.sites[st.key] = st
		s, ok := d.judge(&d.heap, st)
		var suspects []Suspect
		if ok {
			suspects = append(suspects, s)
		}
		if len(d.Undecided(suspects)) == 0 {
			decided++
		} else {
			decided = 0
		}
		if autoStop(decided, n, 13, ok) || n == len(full.points) {
			return s, ok, n
		}
	}
	return Suspect{}, false, len(full.points)
}

// A leak of 2 MiB a minute is four sampled allocations a minute, which a
// one-minute watch finds in about a third of watches. With Auto (at most
// five minutes here, 61 snapshots), the watch keeps going while it grows
// undecided and ends up naming it as likely in almost every watch.
func TestAutoDecidesSlowLeaks(t *testing.T) {
	skipSimulationInShort(t)
	t.Parallel()
	const runs = 2000
	for _, c := range []struct{ mibPerMinute, atLeast float64 }{{2, 0.95}, {4, 0.99}} {
		likely, taken := 0, 0
		for r := range runs {
			rng := rand.New(rand.NewPCG(uint64(r), 11))
			s, ok, n := autoVerdict(simulatedLeakFor(rng, c.mibPerMinute*(1<<20), 1e9, 61).st)
			if ok && s.Confidence == Likely {
				likely++
			}
			taken += n
		}
		share := float64(likely) / runs
		t.Logf("leak of %.0f MiB/min: likely in %.1f%% of %d auto watches of at most 5 min, %.1f snapshots on average", c.mibPerMinute, 100*share, runs, float64(taken)/runs)
		if share < c.atLeast {
			t.Errorf("leak of %.0f MiB/min decided as likely in %.1f%% of auto watches, want at least %.0f%%", c.mibPerMinute, 100*share, 100*c.atLeast)
		}
	}
}

// Auto looks at the verdict many times, and each look is one more chance
// for a healthy cache's wander to pass for growth. The caches of
// TestHeapDetectorIgnoresReplacingCaches, watched the Auto way for up to
// five minutes, stay under the same bound (with the same slack).
func TestAutoIgnoresReplacingCaches(t *testing.T) {
	skipSimulationInShort(t)
	t.Parallel()
	const runs = 300
	worst := 0.0
	for _, fifo := range []bool{true, false} {
		for _, size := range []float64{64, 16 << 10} {
			for _, c := range []struct{ capacity, perSecond float64 }{
				{8 << 20, 128 << 10}, {64 << 20, 1 << 20}, {512 << 20, 1 << 20},
			} {
				reported := 0
				for r := range runs {
					rng := rand.New(rand.NewPCG(uint64(r), 13))
					if _, ok, _ := autoVerdict(simulatedCacheFor(rng, size, c.capacity, c.perSecond, fifo, 61).st); ok {
						reported++
					}
				}
				share := float64(reported) / runs
				worst = max(worst, share)
				if share > 0.05 {
					t.Errorf("cache of %.0f MiB in %.0f-byte entries replacing %.0f KiB/s (oldest first: %v): reported in %.1f%% of auto watches",
						c.capacity/(1<<20), size, c.perSecond/1024, fifo, 100*share)
				}
			}
		}
	}
	t.Logf("caches reported in at most %.1f%% of auto watches", 100*worst)
}
