package collect

import (
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leaklab/leaklab/profiles"
	"github.com/prometheus/client_golang/prometheus"
)

func loadTestdata(b *testing.B, name string) *profile.Profile {
	b.Helper()
	c, err := profiles.ReadFile(filepath.Join("..", "testdata", name), profiles.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	p, err := c.Profile()
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkJudgeRound is what detection costs per capture round of one
// target (a real heap and goroutine profile of a sample service fed, the
// window slid, the window judged), by how many rounds the window holds:
// 5m, 30m (the default) and 2h at the default 15s. Every site keeps at
// most a bounded series (the detector decimates past it), so the cost
// stops growing with the window: run with
//
//	go test ./profiles/collect -run '^$' -bench JudgeRound -benchtime 200x
func BenchmarkJudgeRound(b *testing.B) {
	heap, gor := loadTestdata(b, "heap-current.pb.gz"), loadTestdata(b, "goroutine-current.pb.gz")
	for _, window := range []time.Duration{5 * time.Minute, 30 * time.Minute, 2 * time.Hour} {
		b.Run(fmt.Sprintf("window=%s", window), func(b *testing.B) {
			f := newFleet(Detection{Window: window}, nil, profiles.Limits{}, http.DefaultClient, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
			ts := &targetSeries{}
			at := time.Unix(1_800_000_000, 0)
			round := func() {
				f.feed("t", ts, profiles.TypeHeap, at, heap, "", process{start: 1}, false)
				f.feed("t", ts, profiles.TypeGoroutine, at, gor, "", process{start: 1}, false)
				f.judge("t", ts, at)
				at = at.Add(DefaultEvery)
			}
			for range int(window / DefaultEvery) { // a full window first
				round()
			}
			b.ResetTimer()
			for range b.N {
				round()
			}
		})
	}
}
