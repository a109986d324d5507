package collect

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leaklab/leaklab/internal/proccpu"
	"github.com/leaklab/leaklab/profiles"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkJudgeWindow is what one capture round of one target costs the
// detector (feed its heap and goroutine profile, slide the window, judge
// it) by how many points the window holds: 40, 120, 240 and 960 rounds at
// the default 15 s (10 m, 30 m, 1 h and 4 h). A window of more than 240
// snapshots (the detector's bound per site) is judged on every second,
// fourth, eighth... of them, evenly spread, so from there on a round costs
// the same however long the window.
// Unlike BenchmarkJudgeRound, whose profiles never change (every series is
// flat), each round here moves every site as a live target's do: the
// sampled heap estimates of an idle service wander around their level,
// goroutine counts come and go by one; with leak=true, two heap sites
// and one goroutine site grow as a leak does, so the window has suspects
// to judge in full every round. Besides ns/op (wall time, which another process on a
// shared machine inflates), it reports cpu-ns/op: the process's user and
// system CPU time per round, garbage collection included.
//
//	go test ./profiles/collect -run '^$' -bench JudgeWindow -benchtime 300x -count 3
func BenchmarkJudgeWindow(b *testing.B) {
	heap, gor := loadTestdata(b, "heap-current.pb.gz"), loadTestdata(b, "goroutine-current.pb.gz")
	for _, leak := range []bool{false, true} {
		for _, points := range []int{40, 120, 240, 960} {
			b.Run(fmt.Sprintf("leak=%t/points=%d", leak, points), func(b *testing.B) {
				window := time.Duration(points) * DefaultEvery
				f := newFleet(Detection{Window: window}, nil, profiles.Limits{}, http.DefaultClient, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
				ts := &targetSeries{}
				at := time.Unix(1_800_000_000, 0)
				live := newLiveProfiles(heap, gor, leak)
				round := func() {
					live.next()
					f.feed("t", ts, profiles.TypeHeap, at, heap, "", process{start: 1}, false)
					f.feed("t", ts, profiles.TypeGoroutine, at, gor, "", process{start: 1}, false)
					f.judge("t", ts, at)
					at = at.Add(DefaultEvery)
				}
				for range points { // a full window first
					round()
				}
				if found := len(f.suspects()) > 0; found != leak {
					b.Fatalf("suspects in the window: %t, want %t", found, leak)
				}
				b.ResetTimer()
				cpu0 := proccpu.Self()
				for range b.N {
					round()
				}
				b.StopTimer()
				b.ReportMetric(float64(proccpu.Self()-cpu0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// liveProfiles rewrites a heap and a goroutine profile in place, round
// after round, so that they read like successive captures of one live
// process.
type liveProfiles struct {
	heap, gor          *profile.Profile
	heapBase, gorBase  [][]int64
	inuse, alloc, objs int // sample value indexes
	rng                *rand.Rand
	leak               bool
	round              int64
	allocated          []int64 // per heap sample, cumulative
}

func newLiveProfiles(heap, gor *profile.Profile, leak bool) *liveProfiles {
	l := &liveProfiles{heap: heap, gor: gor, rng: rand.New(rand.NewPCG(1, 2)), leak: leak}
	for i, st := range heap.SampleType {
		switch st.Type {
		case "inuse_space":
			l.inuse = i
		case "alloc_space":
			l.alloc = i
		case "alloc_objects":
			l.objs = i
		}
	}
	for _, s := range heap.Sample {
		l.heapBase = append(l.heapBase, append([]int64(nil), s.Value...))
	}
	for _, s := range gor.Sample {
		l.gorBase = append(l.gorBase, append([]int64(nil), s.Value...))
	}
	l.allocated = make([]int64, len(heap.Sample))
	return l
}

// next moves every site: heap sites wander by whole samples of 512 KiB
// around their level and allocate more (alloc_space only grows); with a
// leak, the two first heap sites and the first goroutine site grow
// steadily.
func (l *liveProfiles) next() {
	l.round++
	const sample = 512 << 10
	for i, s := range l.heap.Sample {
		base := l.heapBase[i]
		inuse := base[l.inuse] + int64(l.rng.IntN(3)-1)*sample
		step := int64(l.rng.IntN(4)) * sample
		if l.leak && i < 2 { // keeps what it allocates
			step = 2 * sample
			inuse = base[l.inuse] + l.round*2*sample
		}
		l.allocated[i] += step
		s.Value[l.inuse] = max(0, inuse)
		s.Value[l.alloc] = base[l.alloc] + l.allocated[i]
		s.Value[l.objs] = base[l.objs] + l.allocated[i]/1024 // objects of 1 KiB
	}
	for i, s := range l.gor.Sample {
		s.Value[0] = max(0, l.gorBase[i][0]+int64(l.rng.IntN(3)-1))
		if l.leak && i == 0 {
			s.Value[0] = l.gorBase[i][0] + 4*l.round
		}
	}
}
