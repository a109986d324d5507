package watch

import (
	"cmp"
	"math"
	"slices"
	"sync"
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
	tr.Separated = separated(pts)
	return tr
}

// separated says whether every value of the last third of pts exceeds
// every value of the first third (false for fewer than three points).
func separated(pts []Point) bool {
	third := len(pts) / 3
	if third == 0 {
		return false
	}
	firstMax, lastMin := math.Inf(-1), math.Inf(1)
	for _, p := range pts[:third] {
		firstMax = math.Max(firstMax, p.V)
	}
	for _, p := range pts[len(pts)-third:] {
		lastMin = math.Min(lastMin, p.V)
	}
	return lastMin > firstMax
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

// theilSen returns the median pairwise slope per second. The n(n-1)/2
// slopes go in a pooled buffer and the median is selected, not sorted
// for: the same value as sorting them, in O(n²) instead of O(n² log n).
func theilSen(pts []Point) float64 {
	buf := slopeBuffers.Get().(*[]float64)
	defer slopeBuffers.Put(buf)
	slopes := (*buf)[:0]
	for i := range pts {
		for j := i + 1; j < len(pts); j++ {
			if dt := pts[j].T - pts[i].T; dt > 0 {
				slopes = append(slopes, (pts[j].V-pts[i].V)/dt)
			}
		}
	}
	*buf = slopes
	if len(slopes) == 0 {
		return 0
	}
	m := len(slopes) / 2
	upper := nthSmallest(slopes, m)
	if len(slopes)%2 == 1 {
		return upper
	}
	// slopes[:m] now holds the m smallest: the lower middle is their largest
	return (slices.Max(slopes[:m]) + upper) / 2
}

// slopeBuffers holds the buffers theilSen collects slopes in: up to
// 28,680 of them for a 240-point series, on every judgement.
var slopeBuffers = sync.Pool{New: func() any { return new([]float64) }}

// nthSmallest returns the k-th smallest value of a (from 0), reordering a
// so that a[:k] holds the k smallest values (quickselect, with a
// three-way partition: series with ties give many equal slopes).
func nthSmallest(a []float64, k int) float64 {
	lo, hi := 0, len(a)
	for hi-lo > 1 {
		p := median3(a[lo], a[lo+(hi-lo)/2], a[hi-1])
		lt, i, gt := lo, lo, hi // a[lo:lt] < p, a[lt:i] == p, a[gt:hi] > p
		for i < gt {
			switch {
			case a[i] < p:
				a[lt], a[i] = a[i], a[lt]
				lt++
				i++
			case a[i] > p:
				gt--
				a[gt], a[i] = a[i], a[gt]
			default:
				i++
			}
		}
		switch {
		case k < lt:
			hi = lt
		case k >= gt:
			lo = gt
		default:
			return p
		}
	}
	return a[k]
}

func median3(a, b, c float64) float64 {
	if a > b {
		a, b = b, a
	}
	if b > c {
		b = c
	}
	return max(a, b)
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
	s, ties := mannKendallS(pts)
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

// mannKendallS is the Mann–Kendall statistic of pts — over every pair of
// points, how many rise minus how many fall — and the sizes of its groups
// of equal values. It counts, for each point in time order, the earlier
// points below and above it in a Fenwick tree over the values' ranks:
// O(n log n), where comparing every pair costs O(n²).
func mannKendallS(pts []Point) (s int, ties []int) {
	n := len(pts)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(pts[a].V, pts[b].V) })
	rank := make([]int, n) // 1-based, equal values share one
	r := 0
	for i, j := range order {
		if i == 0 || pts[j].V != pts[order[i-1]].V {
			r++
			ties = append(ties, 0)
		}
		rank[j] = r
		ties[len(ties)-1]++
	}
	tree := make([]int, r+1)
	below := func(r int) int { // earlier points with rank <= r
		c := 0
		for ; r > 0; r -= r & -r {
			c += tree[r]
		}
		return c
	}
	for j := range n {
		lower, notAbove := below(rank[j]-1), below(rank[j])
		s += lower - (j - notAbove)
		for i := rank[j]; i <= r; i += i & -i {
			tree[i]++
		}
	}
	return s, ties
}
