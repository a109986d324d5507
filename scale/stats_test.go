package scale

import (
	"math"
	"strings"
	"testing"
)

func TestCompareSamples(t *testing.T) {
	for _, tc := range []struct {
		name        string
		base, cur   []float64
		significant bool
		sign        float64 // expected sign of Percent when significant
		text        string  // expected prefix of Text
	}{
		{"clearly faster", []float64{100, 101, 99, 100, 102, 98}, []float64{120, 121, 119, 122, 118, 120}, true, +1, "+20.0% ± "},
		{"clearly slower", []float64{100, 101, 99, 100, 102, 98}, []float64{80, 81, 79, 82, 78, 80}, true, -1, "-20.0% ± "},
		{"same", []float64{100, 104, 98, 101, 99, 103}, []float64{102, 97, 100, 103, 99, 101}, false, 0, "no significant difference (p="},
		{"too few runs", []float64{100, 101, 99}, []float64{200, 201, 199}, false, 0, "no significant difference (p=0.100; need >= 4"},
		{"four runs: significant, interval unbounded", []float64{100, 101, 99, 100}, []float64{150, 151, 149, 152}, true, +1, "+50.5%, p=0.029"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := compareSamples(tc.base, tc.cur)
			if d.Significant != tc.significant {
				t.Errorf("significant = %v (p=%v), want %v", d.Significant, d.P, tc.significant)
			}
			if tc.significant && math.Signbit(d.Percent) != (tc.sign < 0) {
				t.Errorf("percent %v has the wrong sign", d.Percent)
			}
			if !strings.HasPrefix(d.Text, tc.text) {
				t.Errorf("text %q, want it to start with %q", d.Text, tc.text)
			}
		})
	}
}

// With fewer than six values benchmath cannot bound the median at 95%;
// the report then gives the range and the confidence that range has,
// never an infinity (JSON cannot carry one).
func TestSummaryNeverInfinite(t *testing.T) {
	for _, tc := range []struct {
		values         []float64
		lo, hi, center float64
		confidence     float64
	}{
		{[]float64{3, 1, 2, 4}, 1, 4, 2.5, 0.875},
		{[]float64{5, 1, 2, 4, 3}, 1, 5, 3, 0.9375},
	} {
		s := summary(tc.values)
		if s.Lo != tc.lo || s.Hi != tc.hi || s.Center != tc.center || math.Abs(s.Confidence-tc.confidence) > 1e-9 {
			t.Errorf("summary(%v) = %v [%v, %v] at %v; want %v [%v, %v] at %v", tc.values, s.Center, s.Lo, s.Hi, s.Confidence, tc.center, tc.lo, tc.hi, tc.confidence)
		}
	}
	s := summary([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	if math.IsInf(s.Lo, 0) || math.IsInf(s.Hi, 0) || s.Confidence < Confidence || s.Lo >= s.Center || s.Hi <= s.Center {
		t.Errorf("ten values: %+v, want a finite interval around the median at >= %v", s, Confidence)
	}
}

// summarize picks single as the baseline when it ran, compares every
// other strategy with it, and adds up each worker slot's share.
func TestSummarize(t *testing.T) {
	var runs []RunResult
	for r := 1; r <= 4; r++ {
		runs = append(runs,
			RunResult{Strategy: ReusePort, Run: r, RPS: 200 + float64(r), P99: 0.010, Requests: 100,
				Workers: []WorkerShare{{Index: 0, Connections: 3, Requests: 75}, {Index: 1, Connections: 1, Requests: 25}}},
			RunResult{Strategy: Single, Run: r, RPS: 100 + float64(r), P99: 0.020, Requests: 100,
				Workers: []WorkerShare{{Index: 0, Connections: 4, Requests: 100}}},
			RunResult{Strategy: SharedFD, Run: r, RPS: 150, Requests: 100,
				Workers: []WorkerShare{{Index: 0, Connections: -1, Requests: -1}, {Index: 1, Connections: -1, Requests: -1}}},
		)
	}
	rep := summarize(CompareOptions{Strategies: []Strategy{ReusePort, Single, SharedFD}, Workers: 2, ProcsPerWorker: 1, Runs: 4}, runs)
	if rep.Baseline != Single {
		t.Fatalf("baseline %s, want single", rep.Baseline)
	}
	rp, single, shared := rep.Results[0], rep.Results[1], rep.Results[2]
	if single.VsBaseline != nil || rp.VsBaseline == nil || !rp.VsBaseline.RPS.Significant || rp.VsBaseline.RPS.Percent < 90 {
		t.Errorf("comparisons: single %+v, reuseport %+v", single.VsBaseline, rp.VsBaseline)
	}
	if !rp.VsBaseline.P99.Significant || rp.VsBaseline.P99.Percent != -50 {
		t.Errorf("p99 comparison %+v, want -50%% and significant", rp.VsBaseline.P99)
	}
	if single.Workers != 1 || single.GOMAXPROCS != 2 || rp.Workers != 2 || rp.GOMAXPROCS != 1 {
		t.Errorf("process shapes: single %d×%d, reuseport %d×%d", single.Workers, single.GOMAXPROCS, rp.Workers, rp.GOMAXPROCS)
	}
	if len(rp.Spread) != 2 || rp.Spread[0].RequestShare != 0.75 || rp.Spread[1].ConnectionShare != 0.25 {
		t.Errorf("reuseport spread %+v", rp.Spread)
	}
	if shared.Spread != nil {
		t.Errorf("shared-fd spread %+v, want unknown (nil)", shared.Spread)
	}
}
