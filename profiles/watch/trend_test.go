package watch

import (
	"math/rand/v2"
	"testing"
)

func ramp(vals ...float64) []Point {
	pts := make([]Point, len(vals))
	for i, v := range vals {
		pts[i] = Point{T: float64(i * 5), V: v}
	}
	return pts
}

func TestFitTrend(t *testing.T) {
	t.Parallel()
	steady := ramp(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
	tr := fitTrend(steady)
	if tr.P > 0.001 || tr.LateP > 0.05 || !tr.Separated || tr.SlopePerMinute != 12 {
		t.Errorf("steady growth: %+v", tr)
	}

	levelled := ramp(0, 3, 6, 9, 10, 10, 10, 10, 10, 10, 10, 10)
	tr = fitTrend(levelled)
	if tr.LateP < 0.5 || tr.LateSlopePerMinute != 0 {
		t.Errorf("a series that levelled off should show no late trend: %+v", tr)
	}

	flat := ramp(5, 5, 5, 5, 5, 5)
	if tr := fitTrend(flat); tr.P != 1 || tr.Separated {
		t.Errorf("flat: %+v", tr)
	}

	// Sampled heap values are steps with many ties.
	steps := ramp(0, 0, 512, 512, 512, 1024, 1024, 1536, 2048, 2048, 2560, 3072)
	if tr := fitTrend(steps); tr.P > 0.001 || !tr.Separated {
		t.Errorf("step growth: %+v", tr)
	}
}

// Stationary noise must rarely look like a trend: with the thresholds
// the detector uses for "likely", fewer than 1 in 200 noise series pass.
func TestFitTrendNoiseFalsePositives(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	passed := 0
	const trials = 2000
	for range trials {
		vals := make([]float64, 12)
		for i := range vals {
			vals[i] = float64(50 + r.IntN(20))
		}
		tr := fitTrend(ramp(vals...))
		if tr.P < likelyP && tr.LateP < lateP && tr.Separated {
			passed++
		}
	}
	if passed > trials/200 {
		t.Errorf("%d of %d noise series passed the likely thresholds", passed, trials)
	}
}
