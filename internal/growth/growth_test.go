package growth

import (
	"math"
	"testing"
)

func TestFit(t *testing.T) {
	xs := []float64{0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000}
	series := func(f func(i int) float64) []float64 {
		ys := make([]float64, len(xs))
		for i := range ys {
			ys[i] = f(i)
		}
		return ys
	}
	for _, tc := range []struct {
		name    string
		ys      []float64
		limit   float64
		exceeds bool
	}{
		{"flat", series(func(int) float64 { return 5000 }), 16, false},
		{"leak of 64 per op", series(func(i int) float64 { return 5000 + 64*xs[i] }), 16, true},
		{"leak with wobble", series(func(i int) float64 { return 5000 + 64*xs[i] + 3000*float64(i%2) }), 16, true},
		{"wobble of ±32 KiB", series(func(i int) float64 { return 1e6 + 32768*float64((i*7)%3-1) }), 16, false},
		{"one step in round 3", series(func(i int) float64 {
			if i >= 3 {
				return 5000 + 20000
			}
			return 5000
		}), 16, false},
		{"sawtooth", series(func(i int) float64 { return 5000 + 16*float64(int(xs[i])%400) }), 16, false},
		{"shrinking", series(func(i int) float64 { return 1e6 - 10*xs[i] }), 16, false},
		{"leak just under the limit", series(func(i int) float64 { return 12 * xs[i] }), 16, false},
	} {
		f := Of(xs, tc.ys)
		if got := f.Exceeds(tc.limit); got != tc.exceeds {
			t.Errorf("%s: %+v exceeds %g = %v, want %v", tc.name, f, tc.limit, got, tc.exceeds)
		}
	}
	if f := Of(xs, series(func(i int) float64 { return 64 * xs[i] })); math.Abs(f.Slope-64) > 1e-9 || math.Abs(f.Floor-64) > 1e-9 {
		t.Errorf("a steady 64 per op fits as %+v", f)
	}
}
