package watch

import (
	"math"
	"sort"
	"strings"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leaklab/leaklab/profiles"
)

// Suspect kinds and confidences, as in the watch JSON contract.
const (
	KindHeap      = "heap"
	KindGoroutine = "goroutine"

	// Proven: the runtime's goroutineleak profile reports the goroutines
	// as leaked (blocked on something no live goroutine can reach).
	Proven = "proven"
	// Likely: a strong, sustained, monotone trend.
	Likely = "likely"
	// Possible: a trend, but weaker evidence; look before you believe it.
	Possible = "possible"
)

// Detection thresholds. A trend must pass all of them to be reported.
const (
	// DefaultMinHeapGrowth is the smallest heap growth worth reporting, in
	// bytes per minute: about two heap-profile samples (one per ~512 KiB).
	DefaultMinHeapGrowth = 1 << 20
	// DefaultMinGoroutineGrowth is the smallest goroutine growth worth
	// reporting, in goroutines per minute.
	DefaultMinGoroutineGrowth = 10

	likelyP    = 0.001 // whole-window Mann–Kendall p-value for "likely"
	possibleP  = 0.01  // ... and for "possible"
	lateP      = 0.05  // second-half p-value for "likely": still growing at the end
	lateLooseP = 0.2   // ... and for "possible"

	// minHeapSteadiness is the least LateSteadiness a heap site needs:
	// sampled estimates of a cache that replaces entries wander both ways
	// (each entry is sampled or not), retained objects only accumulate.
	minHeapSteadiness = 0.5

	// minHeapSteps is how many times a heap site's estimate must rise: one
	// sampled allocation kept for good (a cache initialised once) is a
	// single step of about 512 KiB, not a leak.
	minHeapSteps = 3

	// minHeapRetention is the least LateRetention a heap site needs.
	minHeapRetention = 0.35

	// maxRetentionP is the largest RetentionP a heap site may have: how
	// likely a site that frees as fast as it allocates (a cache in a
	// steady state) is to have freed as little. Simulated one-minute
	// watches (power_test.go) put the cost at 0.6% more 6 MB/min leaks
	// missed (1.3% instead of 0.65%), against caches whose entries outlive
	// the watch reported in at most 2.5% of watches instead of 10.5%.
	maxRetentionP = 0.05
	// likelyRetentionP is the largest RetentionP of a "likely" heap site.
	likelyRetentionP = 0.01

	// defaultHeapPeriod is the runtime's default MemProfileRate, for
	// profiles that do not say theirs.
	defaultHeapPeriod = 512 << 10

	// MinSnapshots is how many snapshots a trend needs.
	MinSnapshots = 5
	// maxPoints bounds each site's series: a longer watch, or a longer
	// sliding window, is thinned to every other snapshot, then every
	// fourth, and so on (series.stride), so that both memory and the cost
	// of judging stay bounded however many snapshots the window holds.
	maxPoints = 240
)

// Suspect is a site that looks like a leak.
type Suspect struct {
	Kind string `json:"kind"`
	// Function is the first frame in the target's own code (leaf first),
	// or the first frame outside the runtime when none is own code.
	Function string `json:"function"`
	// Stack is the heaviest stack of the site, leaf first.
	Stack      []string `json:"stack"`
	WaitState  string   `json:"wait_state,omitempty"`
	Confidence string   `json:"confidence"`
	// GrowthPerMinute is the Theil–Sen slope of the site's series.
	GrowthPerMinute float64 `json:"growth_per_minute"`
	Unit            string  `json:"unit"` // bytes or goroutines
	Evidence        Trend   `json:"evidence"`
	// ProvenLeaked is how many of the site's goroutines the runtime's
	// goroutineleak profile reported as leaked in the last snapshot.
	ProvenLeaked int64 `json:"proven_leaked,omitempty"`
	// OwnCode is false when no frame of the stack is the target's own code.
	OwnCode bool `json:"own_code"`
	// FirstSnapshot and LastSnapshot are the store IDs of the snapshots the
	// trend spans, when the watch kept them.
	FirstSnapshot string `json:"first_snapshot,omitempty"`
	LastSnapshot  string `json:"last_snapshot,omitempty"`
	// Connections, on a goroutine suspect named after the own code that
	// sends HTTP requests, is the net/http connection loop whose
	// goroutines grow (its stack has no own code); HTTPCallers are the
	// functions that send requests through the HTTP client, by share.
	Connections string       `json:"connections,omitempty"`
	HTTPCallers []HTTPCaller `json:"http_callers,omitempty"`
	// Aggregated is true for a heap suspect judged over every sample whose
	// stack passes through Function (aggregate.go): the own code where
	// growth spread over several allocation sites comes together. Parts
	// are those sites, by their share of the growth.
	Aggregated bool   `json:"aggregated,omitempty"`
	Parts      []Part `json:"parts,omitempty"`
	// JudgedAt, on an aggregated suspect, is the caller whose series was
	// judged when Function, deeper, holds nearly all of its growth.
	JudgedAt string `json:"judged_at,omitempty"`
	// SameLeakAs, on a goroutine suspect, is the Function of the suspect
	// listed before it whose goroutines grow in lockstep with its own
	// (lockstep.go): most likely one leak that holds both.
	SameLeakAs string `json:"same_leak_as,omitempty"`
	// Retainer, on a heap suspect of a watch with retainer snapshots, is
	// the reference chain that grew with it (retainers.go).
	Retainer *SuspectRetainer `json:"retainer,omitempty"`
	// Next is the command to run next; the renderers fill it in
	// (NextCommand), the detector does not.
	Next   string  `json:"next,omitempty"`
	Points []Point `json:"points"`
}

type siteKey struct {
	kind, function, wait string
}

type site struct {
	key         siteKey
	own         bool
	stack       []string
	stackWeight float64
	points      []Point
	allocs      []Point // heap only: cumulative bytes allocated (alloc_space)
	allocObjs   []Point // heap only: cumulative objects allocated (alloc_objects)
	leaked      int64
	// partsFirst and partsLast (call-graph nodes only) are the in-use
	// bytes of each site below the node, at its first and last snapshot.
	partsFirst, partsLast map[string]float64
}

// series is every site of one kind, sampled at the same times.
//
// It holds at most maxPoints snapshots, evenly spaced: the snapshots whose
// number (counted from the detector's first) is a multiple of stride, and
// always the newest, which the next snapshot replaces when it is not on
// the stride (tailOff). When a snapshot would make it hold more, stride
// doubles and every other snapshot goes. A sliding window of any length
// thus holds between maxPoints/2 and maxPoints snapshots spread evenly
// over it (thinning older snapshots more than recent ones would judge a
// long window mostly by its last part), and each new snapshot costs O(1)
// per site, plus O(maxPoints) per site each time stride doubles.
type series struct {
	times    []float64
	index    []int // the number of each snapshot in times
	stride   int   // 0 reads as 1
	tailOff  bool  // the last snapshot is not on the stride
	sites    map[siteKey]*site
	firstID  string
	lastID   string
	snapshot int // snapshots fed so far
}

// replaceTail forgets the newest snapshot when it is off the stride, so
// that the one being added takes its place; extra are sites sampled at
// the series' times that are not in its map (the whole heap).
func (ser *series) replaceTail(extra ...*site) {
	if !ser.tailOff {
		return
	}
	n := len(ser.times) - 1
	ser.times, ser.index = ser.times[:n], ser.index[:n]
	for _, st := range ser.sites {
		st.keepFirst(n)
	}
	for _, st := range extra {
		st.keepFirst(n)
	}
	ser.tailOff = false
}

// appendTime records the time of the snapshot being added, after every
// site got its point.
func (ser *series) appendTime(t float64, extra ...*site) {
	i := ser.snapshot
	ser.snapshot++
	ser.times, ser.index = append(ser.times, t), append(ser.index, i)
	ser.stride = max(ser.stride, 1)
	if len(ser.times) > maxPoints {
		ser.stride *= 2
		keep := make([]bool, len(ser.index))
		for j, k := range ser.index {
			keep[j] = k%ser.stride == 0 || j == len(ser.index)-1
		}
		ser.times, ser.index = thin(ser.times, keep), thin(ser.index, keep)
		for _, st := range ser.sites {
			st.thin(keep)
		}
		for _, st := range extra {
			st.thin(keep)
		}
	}
	ser.tailOff = i%ser.stride != 0
}

// keepFirst keeps a site's first n points.
func (st *site) keepFirst(n int) {
	st.points = st.points[:min(n, len(st.points))]
	if st.allocs != nil {
		st.allocs, st.allocObjs = st.allocs[:min(n, len(st.allocs))], st.allocObjs[:min(n, len(st.allocObjs))]
	}
}

// thin keeps the site's points whose keep is true.
func (st *site) thin(keep []bool) {
	st.points = thin(st.points, keep)
	if st.allocs != nil {
		st.allocs, st.allocObjs = thin(st.allocs, keep), thin(st.allocObjs, keep)
	}
}

// thin keeps, in place, the elements of s whose keep is true.
func thin[T any](s []T, keep []bool) []T {
	out := s[:0]
	for j, v := range s {
		if j < len(keep) && keep[j] {
			out = append(out, v)
		}
	}
	return out
}

// Detector turns a stream of snapshots into suspects. It keeps, per site,
// a bounded series of values, never the profiles themselves.
type Detector struct {
	Own                OwnCode
	MinHeapGrowth      float64 // bytes per minute; DefaultMinHeapGrowth when zero
	MinGoroutineGrowth float64 // goroutines per minute; DefaultMinGoroutineGrowth when zero

	start      time.Time
	heapPeriod float64 // bytes between heap-profile samples (MemProfileRate)
	heap       series
	gor        series
	nodes      series // heap only: call-graph nodes (aggregate.go)
	total      *site  // heap only: the whole heap, every sample
	leakIDs    string
	leaks      map[siteKey]int64
	// httpCallers is, from the last heap profile, the bytes each own-code
	// function allocated through net/http's client (httpclient.go).
	httpCallers map[string]float64
	ids         goroutineIDs
	// generated are the functions of generated files seen in the
	// profiles (profiles.IsGeneratedFile): never named, their callers are.
	generated map[string]bool
}

// isOwn says whether fn is own code worth naming: the target's own, and
// not generated.
func (d *Detector) isOwn(fn string) bool { return d.Own.Match(fn) && !d.generated[fn] }

// NewDetector starts a detector whose time axis begins at start.
func NewDetector(start time.Time, own OwnCode) *Detector {
	return &Detector{Own: own, start: start,
		heap: series{sites: map[siteKey]*site{}}, gor: series{sites: map[siteKey]*site{}}, nodes: series{sites: map[siteKey]*site{}}}
}

// AddHeap feeds a heap profile; the in-use bytes of each site are taken
// from the profile's scaled estimates (inuse_space).
func (d *Detector) AddHeap(at time.Time, p *profile.Profile, id string) {
	idx, allocIdx, objIdx := profiles.SampleTypeIndex(p, "inuse_space"), profiles.SampleTypeIndex(p, "alloc_space"), profiles.SampleTypeIndex(p, "alloc_objects")
	if idx < 0 || allocIdx < 0 || objIdx < 0 {
		return
	}
	if p.Period > 0 {
		d.heapPeriod = float64(p.Period)
	}
	d.add(&d.heap, KindHeap, at, p, idx, allocIdx, objIdx, id)
}

// AddGoroutines feeds a goroutine profile; counts per site are exact.
func (d *Detector) AddGoroutines(at time.Time, p *profile.Profile, id string) {
	d.add(&d.gor, KindGoroutine, at, p, 0, -1, -1, id)
}

// AddGoroutineLeaks feeds the runtime's goroutineleak profile: it replaces
// the previous one, since each lists the goroutines leaked at that moment.
func (d *Detector) AddGoroutineLeaks(p *profile.Profile, id string) {
	d.leaks = map[siteKey]int64{}
	d.leakIDs = id
	for _, s := range p.Sample {
		k, _, _ := d.siteOf(KindGoroutine, s)
		d.leaks[k] += s.Value[0]
	}
}

func (d *Detector) add(ser *series, kind string, at time.Time, p *profile.Profile, idx, allocIdx, objIdx int, id string) {
	t := at.Sub(d.start).Seconds()
	ser.replaceTail()
	values, allocs, objs := map[siteKey]float64{}, map[siteKey]float64{}, map[siteKey]float64{}
	callers := map[string]float64{} // heap only: bytes allocated through the HTTP client, by own caller
	nodes := nodeAccumulator{}      // heap only: values per call-graph node
	var total nodeSample            // heap only: the whole heap
	for _, s := range p.Sample {
		v := float64(s.Value[idx])
		k, own, stack := d.siteOf(kind, s)
		if allocIdx >= 0 {
			allocs[k] += float64(s.Value[allocIdx])
			objs[k] += float64(s.Value[objIdx])
			if fn := d.httpCallerOf(stack); fn != "" {
				callers[fn] += float64(s.Value[allocIdx])
			}
			d.addToNodes(nodes, stack, k.function, v, float64(s.Value[allocIdx]), float64(s.Value[objIdx]))
			total.inuse += v
			total.alloc += float64(s.Value[allocIdx])
			total.objs += float64(s.Value[objIdx])
		}
		if v == 0 {
			continue
		}
		values[k] += v
		st := ser.sites[k]
		if st == nil {
			st = &site{key: k, own: own, points: make([]Point, 0, len(ser.times)+1)}
			for _, old := range ser.times {
				st.points = append(st.points, Point{T: old})
				if allocIdx >= 0 {
					st.allocs = append(st.allocs, Point{T: old})
					st.allocObjs = append(st.allocObjs, Point{T: old})
				}
			}
			ser.sites[k] = st
		}
		if v > st.stackWeight || st.stack == nil {
			st.stack, st.stackWeight = stack, v
		}
	}
	if len(callers) > 0 {
		d.httpCallers = callers
	}
	if allocIdx >= 0 {
		d.recordNodes(t, nodes, total, id)
	}
	for k, st := range ser.sites {
		st.points = append(st.points, Point{T: t, V: values[k]})
		if allocIdx >= 0 {
			st.allocs = append(st.allocs, Point{T: t, V: allocs[k]})
			st.allocObjs = append(st.allocObjs, Point{T: t, V: objs[k]})
		}
		st.stackWeight *= 0.5 // prefer the stacks of recent snapshots
	}
	if ser.firstID == "" {
		ser.firstID = id
	}
	ser.lastID = id
	ser.appendTime(t)
}

// siteOf names a sample's site: the first own-code frame (leaf first,
// inlined frames included) and, for goroutines, the wait state. A stack
// with no own code is named, for heap samples, after its first frame
// outside the runtime (where it allocated) and, for goroutines, after the
// function the goroutine started in (net/http.(*conn).serve says more
// than the read it is blocked in).
func (d *Detector) siteOf(kind string, s *profile.Sample) (siteKey, bool, []string) {
	var stack []string
	for _, loc := range s.Location {
		for _, line := range loc.Line {
			if line.Function != nil {
				stack = append(stack, line.Function.Name)
				if profiles.IsGeneratedFile(line.Function.Filename) {
					if d.generated == nil {
						d.generated = map[string]bool{}
					}
					d.generated[line.Function.Name] = true
				}
			}
		}
	}
	k, own := d.siteOfStack(kind, stack)
	return k, own, stack
}

// siteOfStack names the site of a stack of function names, leaf first, by
// the rule diff names its leak sites by (profiles.SiteName); goroutine
// dumps (IDs) and pprof-format profiles are named alike.
func (d *Detector) siteOfStack(kind string, stack []string) (siteKey, bool) {
	fn, wait, own := profiles.SiteName(d.isOwn, kind == KindGoroutine, len(stack), func(i int) string { return stack[i] })
	return siteKey{kind: kind, function: fn, wait: wait}, own
}

// Suspects judges every site's series and returns the suspects, proven
// first, then by confidence and growth; an empty slice, never nil, when
// there is none (the JSON report says "suspects": []).
func (d *Detector) Suspects() []Suspect {
	out := []Suspect{}
	for _, ser := range []*series{&d.heap, &d.gor} {
		for _, st := range ser.sites {
			if s, ok := d.judge(ser, st); ok {
				out = append(out, s)
			}
		}
	}
	out = append(out, d.nodeSuspects(out)...)
	rank := map[string]int{Proven: 0, Likely: 1, Possible: 2}
	sort.Slice(out, func(i, j int) bool {
		if rank[out[i].Confidence] != rank[out[j].Confidence] {
			return rank[out[i].Confidence] < rank[out[j].Confidence]
		}
		if out[i].Kind != out[j].Kind {
			return out[i].Kind == KindGoroutine
		}
		if out[i].GrowthPerMinute != out[j].GrowthPerMinute {
			return out[i].GrowthPerMinute > out[j].GrowthPerMinute
		}
		return out[i].Function < out[j].Function
	})
	return groupLockstep(d.nameClientConnections(out))
}

// steadyHeapGrowth says whether a heap site keeps climbing in the second
// half. Retained objects only accumulate; a cache that replaces entries
// wanders both ways in sampled profiles. A leak through a growing slice
// also moves both ways (each reallocation frees the old backing array), so
// a less steady climb passes when it is as fast and as significant late as
// over the whole watch.
func steadyHeapGrowth(tr Trend) bool {
	if tr.LateSteadiness >= minHeapSteadiness {
		return true
	}
	return tr.LateSteadiness >= minHeapSteadiness/2 && tr.LateP < lateP && tr.LateSlopePerMinute >= 0.75*tr.SlopePerMinute
}

// upSteps counts the snapshots at which a series rose.
func upSteps(pts []Point) int {
	n := 0
	for i := 1; i < len(pts); i++ {
		if pts[i].V > pts[i-1].V {
			n++
		}
	}
	return n
}

// lateRetention is, over the second half, how much of what a heap site
// allocated it kept: its net in-use growth over its growth in bytes
// allocated. A leak keeps most of what it allocates; a cache that replaces
// entries allocates a lot and keeps none of it, however its sampled in-use
// estimate happens to wander. Net changes, not fitted slopes: a slow leak's
// sampled series has few steps, and the median slope of a few steps is 0.
func lateRetention(st *site) float64 { return retentionFrom(st, len(st.points)/2) }

// retentionFrom is how much of what a heap site allocated from its
// snapshot i on it kept (0 without allocations to judge by).
func retentionFrom(st *site, i int) float64 {
	n := len(st.points)
	if len(st.allocs) != n || n < 2 {
		return 0
	}
	allocated := st.allocs[n-1].V - st.allocs[i].V
	if allocated <= 0 {
		return 0
	}
	return (st.points[n-1].V - st.points[i].V) / allocated
}

// period is the heap profile's sampling period in bytes.
func (d *Detector) period() float64 {
	if d.heapPeriod > 0 {
		return d.heapPeriod
	}
	return defaultHeapPeriod
}

// retentionP tests, from the samples behind a heap site's estimates,
// whether it keeps what it allocates. Over the watch, the sampled bytes it
// allocated are alloc_space's growth, and those it freed are that growth
// minus inuse_space's. A cache in a steady state frees as many sampled
// objects as it allocates; a leak frees none (or, growing a slice, about
// half). Counted in samples, a site that frees as fast as it allocates
// has freed ~ Binomial(allocated+freed, 1/2); the one-sided p-value of the
// count it freed says how unlikely such a cache is to have freed so little.
// A cache whose entries live longer than the watch wanders up and down
// like a random walk, which the trend tests alone take for growth.
func retentionP(st *site, period float64) float64 {
	n := len(st.points)
	if len(st.allocs) != n || len(st.allocObjs) != n || n < 2 {
		return 1
	}
	allocated := st.allocs[n-1].V - st.allocs[0].V
	objects := st.allocObjs[n-1].V - st.allocObjs[0].V
	if allocated <= 0 || objects <= 0 {
		return 1
	}
	freed := max(0, allocated-(st.points[n-1].V-st.points[0].V))
	// The profile scales each sample up by 1/q, q the chance that an
	// object of the site's mean size was sampled: one sample stands for
	// size/q bytes.
	size := allocated / objects
	perSample := size / -math.Expm1(-size/period)
	a, f := math.Round(allocated/perSample), math.Round(freed/perSample)
	return binomialHalfCDF(int(f), int(a+f))
}

// binomialHalfCDF is P(X <= k) for X ~ Binomial(n, 1/2).
func binomialHalfCDF(k, n int) float64 {
	if n <= 0 || k >= n {
		return 1
	}
	if n > 5000 { // normal approximation, with continuity correction
		z := (float64(k) + 0.5 - float64(n)/2) / math.Sqrt(float64(n)/4)
		return 0.5 * math.Erfc(-z/math.Sqrt2)
	}
	lgN, _ := math.Lgamma(float64(n + 1))
	sum := 0.0
	for i := 0; i <= k; i++ {
		lgI, _ := math.Lgamma(float64(i + 1))
		lgR, _ := math.Lgamma(float64(n - i + 1))
		sum += math.Exp(lgN - lgI - lgR - float64(n)*math.Ln2)
	}
	return math.Min(sum, 1)
}

// SiteTrend is a site that was watched, suspect or not, with its trend:
// it shows why a growing site was or was not reported.
type SiteTrend struct {
	Kind            string  `json:"kind"`
	Function        string  `json:"function"`
	WaitState       string  `json:"wait_state,omitempty"`
	GrowthPerMinute float64 `json:"growth_per_minute"`
	Unit            string  `json:"unit"`
	Evidence        Trend   `json:"evidence"`
}

// TopGrowing returns the n sites of each kind with the steepest growth.
func (d *Detector) TopGrowing(n int) []SiteTrend {
	var out []SiteTrend
	for _, ser := range []*series{&d.heap, &d.gor} {
		var all []SiteTrend
		for _, st := range ser.sites {
			tr := d.evidence(st) // as judge sees it, to show why a site was not reported
			unit := "bytes"
			if st.key.kind == KindGoroutine {
				unit = "goroutines"
			}
			all = append(all, SiteTrend{Kind: st.key.kind, Function: st.key.function, WaitState: st.key.wait, GrowthPerMinute: round(tr.SlopePerMinute), Unit: unit, Evidence: tr})
		}
		sort.Slice(all, func(i, j int) bool {
			if all[i].GrowthPerMinute != all[j].GrowthPerMinute {
				return all[i].GrowthPerMinute > all[j].GrowthPerMinute
			}
			// ties (flat sites grow 0) in a fixed order, not map order
			if all[i].Function != all[j].Function {
				return all[i].Function < all[j].Function
			}
			return all[i].WaitState < all[j].WaitState
		})
		out = append(out, all[:min(n, len(all))]...)
	}
	return out
}

// evidence is a site's trend with the evidence of its kind: for heap
// sites, what they kept of what they allocated; for goroutine sites, their
// goroutines' turnover when there are goroutine IDs.
func (d *Detector) evidence(st *site) Trend {
	tr := fitTrend(st.points)
	if st.key.kind == KindHeap {
		tr.LateRetention, tr.RetentionP = lateRetention(st), retentionP(st, d.period())
	} else {
		tr.Turnover = d.turnoverOf(st.key)
	}
	return tr
}

// judge reports a site when it is a suspect. Most sites of a window do
// not grow, and mayGrow turns them down from what costs O(n) in their n
// points; only the others get the trend statistics (Theil–Sen's median
// of n² slopes), so a round costs about as much as reading the window
// when few of its sites grow, whatever the window's length.
func (d *Detector) judge(ser *series, st *site) (Suspect, bool) {
	if d.leaks[st.key] == 0 && !d.mayGrow(st) {
		return Suspect{}, false
	}
	return d.verdict(ser, st)
}

// mayGrow says whether a site can pass verdict's growth rules without a
// proven leak: it checks, with the functions verdict's evidence uses, the
// conditions every suspect that is not proven must meet, cheapest first —
// enough points, the last third above the first, a net rise in the second
// half, for heap sites rising steps and retention, then a Mann–Kendall
// p-value under possibleP (O(n log n)). False only when verdict would
// report nothing, so judge's verdicts are verdict's
// (TestJudgeGateKeepsVerdicts).
func (d *Detector) mayGrow(st *site) bool {
	pts := st.points
	if len(pts) < MinSnapshots || !separated(pts) || steadiness(pts[len(pts)/2:]) <= 0 {
		return false
	}
	heap := st.key.kind == KindHeap
	if heap && (upSteps(pts) < minHeapSteps || lateRetention(st) < minHeapRetention) {
		return false
	}
	if mannKendallP(pts) >= possibleP {
		return false
	}
	return !heap || retentionP(st, d.period()) <= maxRetentionP
}

// verdict judges a site from its full evidence.
func (d *Detector) verdict(ser *series, st *site) (Suspect, bool) {
	tr := d.evidence(st)
	minGrowth, unit := d.minGrowth(st.key.kind)
	confidence := ""
	leaked := d.leaks[st.key]
	// Still rising in the second half: a net rise there (sparse steps can
	// leave the median slope of the half at zero).
	grows := tr.N >= MinSnapshots && tr.SlopePerMinute >= minGrowth && tr.Separated && tr.LateSteadiness > 0
	if st.key.kind == KindHeap {
		if !steadyHeapGrowth(tr) || tr.LateRetention < minHeapRetention || tr.RetentionP > maxRetentionP || upSteps(st.points) < minHeapSteps {
			grows = false
		}
	}
	if tr.Turnover != nil && tr.Turnover.P > maxTurnoverP {
		grows = false // within what a steady site's turnover gives
	}
	switch {
	case leaked > 0:
		confidence = Proven
	case grows && tr.P < likelyP && tr.LateP < lateP && (st.key.kind != KindHeap || tr.RetentionP < likelyRetentionP) &&
		(tr.Turnover == nil || tr.Turnover.P < likelyTurnoverP):
		confidence = Likely
	case grows && tr.P < possibleP && tr.LateP < lateLooseP:
		confidence = Possible
	default:
		return Suspect{}, false
	}
	s := Suspect{
		Kind: st.key.kind, Function: st.key.function, Stack: dedupe(st.stack), WaitState: st.key.wait,
		Confidence: confidence, GrowthPerMinute: round(tr.SlopePerMinute), Unit: unit, Evidence: tr,
		ProvenLeaked: leaked, OwnCode: st.own, FirstSnapshot: ser.firstID, LastSnapshot: ser.lastID,
		Points: append([]Point(nil), st.points...),
	}
	return s, true
}

// HeapSnapshots returns the store IDs of the first and the last heap
// snapshot the detector saw.
func (d *Detector) HeapSnapshots() (first, last string) { return d.heap.firstID, d.heap.lastID }

// focusPattern quotes a function name for --focus, keeping it readable.
func focusPattern(fn string) string {
	r := strings.NewReplacer("(", `\(`, ")", `\)`, "*", `\*`, ".", `\.`, "'", "")
	if i := strings.LastIndexByte(fn, '/'); i >= 0 {
		fn = fn[i+1:]
	}
	return r.Replace(fn)
}

// dedupe drops consecutive repeats (recursion) from a stack.
func dedupe(stack []string) []string {
	out := make([]string, 0, len(stack))
	for _, fn := range stack {
		if len(out) == 0 || out[len(out)-1] != fn {
			out = append(out, fn)
		}
	}
	return out
}

func round(v float64) float64 { return math.Round(v*100) / 100 }
