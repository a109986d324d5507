package watch

import "github.com/leaklab/leaklab/profiles"

// Goroutine counts are exact, but a healthy site whose goroutines live as
// long as the watch or longer (keep-alive connections, sessions) has a
// count that wanders like a random walk, and the trend tests, which assume
// independent noise around a trend, can take a wander up for growth.
// Goroutine IDs settle it. Between the first dump and the last, some of a
// site's goroutines arrived (there at the end, not at the start) and some
// departed (there at the start, not at the end). At a site in a steady
// state, goroutines arrive as a Poisson process and each lives a while
// (an M/G/∞ queue): the arrivals still there at the end and the departures
// of those there at the start are independent Poisson counts with the
// same mean, so, given their sum, the departures are Binomial(sum, 1/2).
// A leak's goroutines arrive and never depart. The one-sided p-value of
// so few departures says how unlikely a steady site is to have grown as
// much, whatever its goroutines' lifetimes; goroutines that came and went
// between the two dumps do not count, so short-lived noise at the same
// site costs no power.

// DefaultMaxDumpGoroutines is the most goroutines a target may have for
// watch to ask it for a goroutine dump (IDs). A dump stops the target's
// world while it is written (the pprof-format profile does not), so a
// watch takes two: at its first snapshot and its last. Measured on this
// project's 2-core machine (time to first byte): 25-35 ms and 1.3 MB at
// 5,000 goroutines, against 11-13 ms for the pprof-format profile; 73-94
// ms and 2.7 MB at 10,000; 180 ms and 5.3 MB at 20,000.
const DefaultMaxDumpGoroutines = 10000

// Departure-test thresholds (TurnoverP), as the trend's for the counts.
const (
	likelyTurnoverP = 0.01
	maxTurnoverP    = 0.05
)

// idSet is a set of goroutine IDs.
type idSet map[int64]struct{}

// siteIDs is a goroutine site's IDs in the first dump and in the latest.
type siteIDs struct {
	start, now idSet
}

// goroutineIDs follows every goroutine site's IDs over the watch.
type goroutineIDs struct {
	dumps int
	sites map[siteKey]*siteIDs
}

// AddGoroutineDump feeds a goroutine dump (IDs and stacks); the first one
// fixes each site's starting set, later ones its current set.
func (d *Detector) AddGoroutineDump(gs []profiles.DumpedGoroutine) {
	ids := &d.ids
	if ids.sites == nil {
		ids.sites = map[siteKey]*siteIDs{}
	}
	for _, s := range ids.sites {
		s.now = idSet{}
	}
	for _, g := range gs {
		k, _ := d.siteOfStack(KindGoroutine, g.Functions)
		if k.wait == "" {
			k.wait = g.WaitState // the dump hides the runtime's frames the profile names it by
		}
		s := ids.sites[k]
		if s == nil {
			s = &siteIDs{start: idSet{}, now: idSet{}}
			ids.sites[k] = s
		}
		if ids.dumps == 0 {
			s.start[g.ID] = struct{}{}
		}
		s.now[g.ID] = struct{}{}
	}
	ids.dumps++
}

// HasGoroutineIDs says whether the detector has the evidence of goroutine
// IDs: a first dump and a later one to compare it with.
func (d *Detector) HasGoroutineIDs() bool { return d.ids.dumps >= 2 }

// turnover returns a goroutine site's arrivals and departures between the
// first dump and the latest, and whether there is such evidence.
func (d *Detector) turnover(k siteKey) (arrived, departed int, ok bool) {
	if !d.HasGoroutineIDs() {
		return 0, 0, false
	}
	s := d.ids.sites[k]
	if s == nil {
		return 0, 0, false // seen in the profiles, never in a dump: no evidence either way
	}
	for id := range s.now {
		if _, ok := s.start[id]; !ok {
			arrived++
		}
	}
	for id := range s.start {
		if _, ok := s.now[id]; !ok {
			departed++
		}
	}
	return arrived, departed, true
}

// turnoverOf is a site's Turnover, nil without the evidence.
func (d *Detector) turnoverOf(k siteKey) *Turnover {
	arrived, departed, ok := d.turnover(k)
	if !ok {
		return nil
	}
	return &Turnover{Arrived: arrived, Departed: departed, P: binomialHalfCDF(departed, arrived+departed)}
}
