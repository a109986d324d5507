package watch

import (
	"math"
	"sort"
)

// Point is one observation of a site: seconds since the watch started,
// and the site's value (bytes in use, or goroutines).
type Point struct {
	T float64 `json:"t"`
	V float64 `json:"v"`
}

// Trend is the statistical evidence that a series grows.
type Trend struct {
	// N is the number of snapshots the series covers.
	N int `json:"samples"`
	// SlopePerMinute is the Theil–Sen slope: the median of the slopes
	// between every pair of points. It ignores a few outliers, unlike a
	// least-squares fit.
	SlopePerMinute float64 `json:"slope_per_minute"`
	// P is the one-sided p-value of the Mann–Kendall test for an upward
	// trend over the whole window: how likely a series without a trend is
	// to look at least this monotone.
	P float64 `json:"p_value"`
	// LateP is the same test over the second half of the window: a cache
	// that filled and levelled off has an early trend but no late one.
	LateP float64 `json:"late_p_value"`
	// LateSlopePerMinute is the Theil–Sen slope of the second half.
	LateSlopePerMinute float64 `json:"late_slope_per_minute"`
	// LateSteadiness is, over the second half, the net change divided by
	// the total movement (the sum of every rise and fall): 1 for a series
	// that only climbs, near 0 for one that goes up and down. A sampled
	// heap site whose objects are retained only climbs; a cache that
	// replaces its entries moves both ways.
	LateSteadiness float64 `json:"late_steadiness"`
	// LateRetention (heap sites only) is, over the second half, the in-use
	// growth divided by the bytes allocated at the site: near 1 for a leak,
	// near 0 for a site that replaces what it allocates.
	LateRetention float64 `json:"late_retention,omitempty"`
	// RetentionP (heap sites only) is how likely a site that frees as fast
	// as it allocates is to have freed as little over the watch, judged
	// from the samples behind the estimates: small for a leak.
	RetentionP float64 `json:"retention_p_value,omitempty"`
	// Turnover (goroutine sites, when the target gave goroutine dumps) is
	// the evidence from goroutine IDs (ids.go).
	Turnover *Turnover `json:"turnover,omitempty"`
	// Separated is true when every value of the last third exceeds every
	// value of the first third: the level moved beyond the noise.
	Separated bool    `json:"separated"`
	First     float64 `json:"first"`
	Last      float64 `json:"last"`
	Min       float64 `json:"min"`
	Max       float64 `json:"max"`
}

// Turnover is, between the first goroutine dump of a watch and the last,
// how many of a site's goroutines arrived (there at the end, not at the
// start) and departed (there at the start, not at the end), and how likely
// a site in a steady state is to have had as few departures: small for a
// leak, whose goroutines never depart.
type Turnover struct {
	Arrived  int     `json:"arrived"`
	Departed int     `json:"departed"`
	P        float64 `json:"p_value"`
}

// fitTrend computes the evidence for an upward trend in pts (sorted by T).
func fitTrend(pts []Point) Trend {
	tr := Trend{N: len(pts)}
	if len(pts) == 0 {
		return tr
	}
	tr.First, tr.Last = pts[0].V, pts[len(pts)-1].V
	tr.Min, tr.Max = pts[0].V, pts[0].V
	for _, p := range pts {
		tr.Min, tr.Max = math.Min(tr.Min, p.V), math.Max(tr.Max, p.V)
	}
	tr.SlopePerMinute = theilSen(pts) * 60
	tr.P = mannKendallP(pts)
	late := pts[len(pts)/2:]
	tr.LateSlopePerMinute = theilSen(late) * 60
	tr.LateP = mannKendallP(late)
	tr.LateSteadiness = steadiness(late)
	third := len(pts) / 3
	if third > 0 {
		firstMax, lastMin := math.Inf(-1), math.Inf(1)
		for _, p := range pts[:third] {
			firstMax = math.Max(firstMax, p.V)
		}
		for _, p := range pts[len(pts)-third:] {
			lastMin = math.Min(lastMin, p.V)
		}
		tr.Separated = lastMin > firstMax
	}
	return tr
}

// steadiness is the net change over the total variation of pts.
func steadiness(pts []Point) float64 {
	var moved float64
	for i := 1; i < len(pts); i++ {
		moved += math.Abs(pts[i].V - pts[i-1].V)
	}
	if moved == 0 {
		return 0
	}
	return (pts[len(pts)-1].V - pts[0].V) / moved
}

// theilSen returns the median pairwise slope per second.
func theilSen(pts []Point) float64 {
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

// mannKendallP is the one-sided p-value of the Mann–Kendall test for an
// increasing trend, with the variance corrected for ties (sampled heap
// values repeat often) and a continuity correction. It makes no
// assumption about the distribution of the values, which suits step-shaped
// sampled series.
func mannKendallP(pts []Point) float64 {
	n := len(pts)
	if n < 3 {
		return 1
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
		return 1
	}
	z := (float64(s) - 1) / math.Sqrt(variance)
	return 0.5 * math.Erfc(z/math.Sqrt2)
}
