// Package growth judges whether a series of measurements taken after
// successive batches of operations (requests, calls) grows steadily: the
// one rule leaktest and 'leaklab check' share.
package growth

// Fit is the growth of a series per operation.
type Fit struct {
	// Slope is the least-squares growth per operation.
	Slope float64
	// Floor is the growth per operation of the series' floor: the lowest
	// value of its last third over the highest of its first third, divided
	// by the operations between them. State that comes and goes (a queue's
	// depth at the moment of measuring, a slice's spare capacity) makes the
	// slope wobble but leaves the floor at or below zero; a leak raises
	// both.
	Floor float64
	// Late is the growth per operation over the later half of the series:
	// a one-off step in the middle leaves it at zero.
	Late float64
}

// Of fits ys, measured after xs operations (xs increasing).
func Of(xs, ys []float64) Fit {
	var f Fit
	n := len(xs)
	if n < 2 {
		return f
	}
	f.Slope = slope(xs, ys)
	if mid := n / 2; xs[n-1] > xs[mid] {
		f.Late = (ys[n-1] - ys[mid]) / (xs[n-1] - xs[mid])
	}
	third := max(1, n/3)
	hiFirst, iFirst := ys[0], 0
	for i := 1; i < third; i++ {
		if ys[i] >= hiFirst {
			hiFirst, iFirst = ys[i], i
		}
	}
	loLast, iLast := ys[n-1], n-1
	for i := n - 2; i >= n-third; i-- {
		if ys[i] <= loLast {
			loLast, iLast = ys[i], i
		}
	}
	if d := xs[iLast] - xs[iFirst]; d > 0 {
		f.Floor = (loLast - hiFirst) / d
	}
	return f
}

// Exceeds reports whether the growth is steadily above limit per
// operation: the slope above it, and both the floor and the later half
// rising at half of it or more, so that neither one step (a map doubling
// in one round) nor wobbling state fails a clean series.
func (f Fit) Exceeds(limit float64) bool {
	return f.Slope > limit && f.Floor > limit/2 && f.Late > limit/2
}

func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	var sx, sy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
	}
	mx, my := sx/n, sy/n
	var num, den float64
	for i := range xs {
		num += (xs[i] - mx) * (ys[i] - my)
		den += (xs[i] - mx) * (xs[i] - mx)
	}
	if den == 0 {
		return 0
	}
	return num / den
}
