package watch

import "sort"

// Growing, not yet decided. A slow leak is a few sampled allocations a
// minute; one minute may show it rising without giving the tests enough
// samples to decide. Such sites are listed, so the report can say that
// watching longer would decide, and a watch with --for auto keeps going
// while there are any.

// undecidedP is the whole-window Mann–Kendall p-value under which a site
// that is not (yet) a likely suspect counts as growing, undecided.
const undecidedP = 0.2

// maxUndecided bounds the list in a report.
const maxUndecided = 5

// Undecided lists the sites, call-graph nodes and the whole heap that
// grow (a trend at p < undecidedP, as fast as the smallest growth worth
// reporting, still rising in the second half) but are not a likely or
// proven suspect among suspects: what more watching would decide.
func (d *Detector) Undecided(suspects []Suspect) []SiteTrend {
	decided := map[siteKey]bool{}
	heapDecided := false
	for _, s := range suspects {
		if s.Confidence == Likely || s.Confidence == Proven {
			decided[siteKey{kind: s.Kind, function: s.Function, wait: s.WaitState}] = true
			if s.JudgedAt != "" {
				decided[siteKey{kind: s.Kind, function: s.JudgedAt}] = true
			}
			heapDecided = heapDecided || s.Kind == KindHeap
		}
	}
	// Growth that likely and proven suspects already name is decided too:
	// the sites an aggregated suspect lists, and the callers whose growth
	// lies mostly below a suspect.
	already := namedOf(suspects, Likely, Proven)
	for _, a := range already {
		for fn := range a.parts {
			decided[siteKey{kind: KindHeap, function: fn}] = true
		}
	}
	best := map[siteKey]SiteTrend{}
	consider := func(st *site) {
		if decided[st.key] {
			return
		}
		if st.partsLast != nil {
			if parts, growth := partsOf(st); growth > 0 && explains(already, parts, growth, mostlyExplained) {
				return
			}
		}
		tr := d.evidence(st)
		minGrowth, unit := d.minGrowth(st.key.kind)
		// The net change, not the median slope: a slow leak's sampled
		// series has few steps, and the median slope of a few steps is 0.
		// Nor does it need to rise in the second half: a slow leak can
		// go a while without a sampled allocation; it must not fall.
		net := netGrowthPerMinute(st.points)
		if tr.N < MinSnapshots || net < minGrowth/2 || tr.P >= undecidedP || tr.LateSteadiness < 0 {
			return
		}
		if st.key.kind == KindHeap && retentionFrom(st, 0) < minHeapRetention/2 {
			return // it frees what it allocates: a cache, not a slow leak
		}
		if old, ok := best[st.key]; ok && old.GrowthPerMinute >= net {
			return
		}
		best[st.key] = SiteTrend{Kind: st.key.kind, Function: st.key.function, WaitState: st.key.wait, GrowthPerMinute: round(net), Unit: unit, Evidence: tr}
	}
	for _, ser := range []*series{&d.heap, &d.gor, &d.nodes} {
		for _, st := range ser.sites {
			consider(st)
		}
	}
	if d.total != nil && !heapDecided {
		consider(d.total)
	}
	out := make([]SiteTrend, 0, len(best))
	for _, t := range best {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].GrowthPerMinute != out[j].GrowthPerMinute {
			return out[i].GrowthPerMinute > out[j].GrowthPerMinute
		}
		return out[i].Function < out[j].Function
	})
	return out[:min(len(out), maxUndecided)]
}

// HeapTotal is the whole heap's trend, from the heap profiles' estimates
// (every sample): what the sites add up to.
func (d *Detector) HeapTotal() *SiteTrend {
	if d.total == nil {
		return nil
	}
	tr := d.evidence(d.total)
	return &SiteTrend{Kind: KindHeap, Function: WholeHeap, GrowthPerMinute: round(tr.SlopePerMinute), Unit: "bytes", Evidence: tr}
}

// minGrowth is the smallest growth per minute worth reporting for a kind,
// and its unit.
func (d *Detector) minGrowth(kind string) (float64, string) {
	if kind == KindGoroutine {
		if d.MinGoroutineGrowth > 0 {
			return d.MinGoroutineGrowth, "goroutines"
		}
		return DefaultMinGoroutineGrowth, "goroutines"
	}
	if d.MinHeapGrowth > 0 {
		return d.MinHeapGrowth, "bytes"
	}
	return DefaultMinHeapGrowth, "bytes"
}

// netGrowthPerMinute is a series' net change per minute: from the mean of
// its first third to the mean of its last third.
func netGrowthPerMinute(pts []Point) float64 {
	n := len(pts)
	if n < 3 {
		return 0
	}
	third := n / 3
	mean := func(ps []Point) (t, v float64) {
		for _, p := range ps {
			t += p.T
			v += p.V
		}
		return t / float64(len(ps)), v / float64(len(ps))
	}
	t0, v0 := mean(pts[:third])
	t1, v1 := mean(pts[n-third:])
	if t1 <= t0 {
		return 0
	}
	return (v1 - v0) / (t1 - t0) * 60
}
