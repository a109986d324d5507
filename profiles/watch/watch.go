// Package watch captures heap and goroutine profiles from a live service at
// an interval, streams them through a trend analysis and names the
// functions whose memory or goroutines keep growing. It sits after fetch
// and store in leaklab's data flow: live service → profiles.Fetch → store →
// watch.Detector → report (text, JSON, HTML).
package watch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leaklab/leaklab/internal/opterr"
	"github.com/leaklab/leaklab/profiles"
)

// Defaults for Options.
const (
	DefaultEvery = 5 * time.Second
	DefaultFor   = time.Minute
	// DefaultMaxFor bounds a watch that decides for itself how long to
	// watch (Options.Auto): a leak of 2 MiB a minute is decided well within
	// it.
	DefaultMaxFor = 10 * time.Minute
	// maxConsecutiveFailures ends a watch whose target stopped answering.
	maxConsecutiveFailures = 2
	// topGrowing is how many sites of each kind the report lists besides
	// the suspects.
	topGrowing = 5
)

// DetectorOptions configure the detector, the same for a live watch (Run),
// a replay of the store (Replay) and continuous collection.
type DetectorOptions struct {
	// Own says which frames are the target's own code; when empty, Run
	// asks the target's go_build_info metric and then reads it from the
	// profiles (InferOwnCode), as Replay does.
	Own OwnCode
	// MinHeapGrowth and MinGoroutineGrowth are the smallest growth per
	// minute worth reporting; DefaultMinHeapGrowth and
	// DefaultMinGoroutineGrowth when zero.
	MinHeapGrowth      float64
	MinGoroutineGrowth float64
}

// NewDetector starts a detector with these options whose time axis
// begins at start.
func (o DetectorOptions) NewDetector(start time.Time) *Detector {
	d := NewDetector(start, o.Own)
	d.MinHeapGrowth, d.MinGoroutineGrowth = o.MinHeapGrowth, o.MinGoroutineGrowth
	return d
}

// Options configure Run.
type Options struct {
	DetectorOptions
	Every time.Duration // DefaultEvery when zero
	For   time.Duration // DefaultFor when zero
	// Store keeps every snapshot when set, so suspects can name the diff
	// to run next.
	Store *profiles.Store
	// Progress, when set, is called after each snapshot.
	Progress func(Progress)
	// Labels are stored with every snapshot.
	Labels map[string]string
	// NoGoroutineIDs skips the goroutine dumps (IDs) taken at the first
	// and the last snapshot, which tell a leak from long-lived goroutines
	// (ids.go); goroutines are then judged by their counts alone.
	NoGoroutineIDs bool
	// Auto keeps watching after For while something grows but is not yet
	// decided (Detector.Undecided), up to MaxFor; For is then the least.
	Auto bool
	// MaxFor bounds an Auto watch; DefaultMaxFor when zero.
	MaxFor time.Duration
	// MaxDumpGoroutines is the most goroutines the target may have for a
	// dump to be taken; DefaultMaxDumpGoroutines when zero.
	MaxDumpGoroutines int
	// Retainers, when set, takes retainer snapshots at the first and the
	// last heap snapshot and gives each heap suspect the reference chain
	// that grew with it (retainers.go); for a target on this machine.
	Retainers *RetainerOptions
}

// Progress reports a watch under way.
type Progress struct {
	Snapshot int
	Total    int
	Elapsed  time.Duration
	Err      error // the snapshot failed
	// Undecided, in an Auto watch past its least duration, is how many
	// sites grow without being decided yet.
	Undecided int
}

// Report is a watch's result.
type Report struct {
	Target    string    `json:"target"`
	Snapshots int       `json:"snapshots"`
	Suspects  []Suspect `json:"suspects"`
	Started   time.Time `json:"started"`
	Ended     time.Time `json:"ended"`
	Every     float64   `json:"every_seconds"`
	For       float64   `json:"for_seconds"`
	Own       OwnCode   `json:"own_code"`
	// GoroutineLeakProfile says whether the target serves the runtime's
	// goroutineleak profile, which proves goroutine leaks.
	GoroutineLeakProfile bool `json:"goroutineleak_profile"`
	// GoroutineIDs says whether goroutine sites were judged with the
	// evidence of goroutine dumps (IDs) over the whole watch; when not,
	// GoroutineIDsOff says why.
	GoroutineIDs    bool   `json:"goroutine_ids"`
	GoroutineIDsOff string `json:"goroutine_ids_off,omitempty"`
	// Incomplete says why the watch ended before its time, if it did.
	Incomplete string `json:"incomplete,omitempty"`
	Failures   int    `json:"failed_snapshots,omitempty"`
	// TopGrowing lists the steepest-growing sites of each kind, suspects
	// or not, with their evidence.
	TopGrowing []SiteTrend `json:"top_growing"`
	// Undecided lists what grows without being decided yet: watching
	// longer would decide it (Detector.Undecided).
	Undecided []SiteTrend `json:"undecided"`
	// FirstHeapSnapshot and LastHeapSnapshot are the store IDs of the
	// first and the last heap snapshot, when the watch kept them.
	FirstHeapSnapshot string `json:"first_heap_snapshot,omitempty"`
	LastHeapSnapshot  string `json:"last_heap_snapshot,omitempty"`
	// HeapTotal is the whole heap's trend, from the heap profiles.
	HeapTotal *SiteTrend `json:"heap_total,omitempty"`
	// LiveHeap is the target's exact heap in use at the first snapshot and
	// the last, from its /metrics, when it exports it (read twice a watch,
	// so it adds nothing to the target's cost per snapshot).
	LiveHeap *LiveHeap `json:"live_heap,omitempty"`
	// Auto says the watch decided for itself how long to watch (--for
	// auto), between For and MaxFor seconds.
	Auto   bool    `json:"auto,omitempty"`
	MaxFor float64 `json:"max_for_seconds,omitempty"`
	// Retainers reports the retainer snapshots, when asked for.
	Retainers *Retainers `json:"retainers,omitempty"`
}

// Run watches target (a service base URL) until opts.For has passed, ctx
// ends, or the target stops answering, and returns what it saw. It returns
// an error only when not even the first snapshot could be taken.
func Run(ctx context.Context, target string, opts Options) (*Report, error) {
	if opts.Every <= 0 {
		opts.Every = DefaultEvery
	}
	if opts.For <= 0 {
		opts.For = DefaultFor
	}
	if opts.MaxDumpGoroutines <= 0 {
		opts.MaxDumpGoroutines = DefaultMaxDumpGoroutines
	}
	if opts.MaxFor <= 0 {
		opts.MaxFor = DefaultMaxFor
	}
	if opts.For < opts.Every {
		return nil, opterr.Combination([]string{"For", "Every"}, "For (%s) is shorter than Every (%s): a watch needs two snapshots", opts.For, opts.Every)
	}
	if opts.Auto && opts.MaxFor < opts.For {
		return nil, opterr.Combination([]string{"MaxFor", "For"}, "MaxFor (%s) is shorter than For (%s): an auto watch needs at least For", opts.MaxFor, opts.For)
	}
	_, base, _, err := profiles.ProfileURL(target, profiles.FetchOptions{})
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: 10 * time.Second}
	switch {
	case len(opts.Own.Prefixes) > 0 && opts.Own.Source == "":
		opts.Own.Source = profiles.OwnFromFlag
	case len(opts.Own.Prefixes) == 0:
		if mod := profiles.DetectModule(ctx, client, base); mod != "" {
			opts.Own = OwnCodeFor(mod)
			opts.Own.Source = profiles.OwnFromBuildInfo
		}
	}
	start := time.Now()
	rep := &Report{Target: base, Started: start.UTC(), Every: opts.Every.Seconds(), For: opts.For.Seconds(), Own: opts.Own, GoroutineLeakProfile: true}
	det := opts.DetectorOptions.NewDetector(start)
	total := int(opts.For/opts.Every) + 1
	var auto *autoDecision
	if opts.Auto {
		auto = newAutoDecision(opts.Every, opts.For, opts.MaxFor)
		total = auto.most
		rep.Auto, rep.MaxFor = true, opts.MaxFor.Seconds()
	}
	startRetainers(ctx, base, opts, rep)

	tick := time.NewTicker(opts.Every)
	defer tick.Stop()
	consecutive := 0
	var lastErr error
	lastRetainers := false // the last heap snapshot was taken: time for the last retainer snapshot
	for n := 0; n < total; n++ {
		if n > 0 {
			select {
			case <-ctx.Done():
				rep.Incomplete = "interrupted after " + time.Since(start).Round(time.Second).String()
			case <-tick.C:
			}
			if rep.Incomplete != "" {
				break
			}
		}
		// The departure test needs only the first dump and the last, and
		// each dump pauses the target: two dumps a watch.
		last := !opts.Auto && n == total-1
		goroutines, err := snapshot(ctx, base, opts, det, rep, n == 0 || last)
		if err == nil && (n == 0 || last) {
			readLiveHeap(ctx, base, rep)
		}
		if err == nil && n == 0 {
			takeRetainers(opts, rep, false)
		}
		undecided, stop := 0, false
		if err == nil && auto != nil {
			undecided, stop = auto.look(det, n+1)
		}
		if opts.Progress != nil {
			opts.Progress(Progress{Snapshot: n + 1, Total: total, Elapsed: time.Since(start), Err: err, Undecided: undecided})
		}
		if err == nil {
			rep.Snapshots++
			consecutive = 0
			lastRetainers = last
			if opts.Auto && (stop || n == total-1) {
				readLiveHeap(ctx, base, rep)
				finalDump(ctx, base, goroutines, opts, det, rep)
				lastRetainers = true
				if stop {
					break
				}
			}
			continue
		}
		if ctx.Err() != nil {
			rep.Incomplete = "interrupted after " + time.Since(start).Round(time.Second).String()
			break
		}
		if rep.Snapshots == 0 && n == 0 {
			return nil, err
		}
		rep.Failures++
		consecutive++
		lastErr = err
		if consecutive >= maxConsecutiveFailures {
			rep.Incomplete = fmt.Sprintf("the target stopped answering after %s: %v", time.Since(start).Round(time.Second), lastErr)
			break
		}
	}
	rep.Ended = time.Now().UTC()
	rep.GoroutineIDs = det.HasGoroutineIDs()
	switch {
	case opts.NoGoroutineIDs:
		rep.GoroutineIDsOff = "turned off"
	case !rep.GoroutineIDs && rep.GoroutineIDsOff == "":
		rep.GoroutineIDsOff = "the watch ended before its last goroutine dump"
	}
	rep.Suspects = det.Suspects()
	if lastRetainers {
		takeRetainers(opts, rep, true)
	}
	finishRetainers(rep)
	rep.TopGrowing = det.TopGrowing(topGrowing)
	rep.Undecided = det.Undecided(rep.Suspects)
	rep.HeapTotal = det.HeapTotal()
	rep.FirstHeapSnapshot, rep.LastHeapSnapshot = det.HeapSnapshots()
	if rep.LiveHeap != nil && rep.LiveHeap.LastAt.IsZero() {
		rep.LiveHeap = nil // the watch ended before its last reading
	}
	return rep, nil
}

// LiveHeap is a target's exact heap in use at the start and the end of a
// watch, as its /metrics gives it.
type LiveHeap struct {
	Metric          string    `json:"metric"`
	First           float64   `json:"first"`
	Last            float64   `json:"last"`
	FirstAt         time.Time `json:"first_at"`
	LastAt          time.Time `json:"last_at"`
	GrowthPerMinute float64   `json:"growth_per_minute"`
}

// readLiveHeap records the target's exact heap in use (right after the
// heap profile's forced GC), first or last.
func readLiveHeap(ctx context.Context, base string, rep *Report) {
	v, metric, err := profiles.FetchLiveHeap(ctx, nil, base)
	if err != nil {
		return
	}
	now := time.Now().UTC()
	if rep.LiveHeap == nil {
		rep.LiveHeap = &LiveHeap{Metric: metric, First: v, FirstAt: now}
		return
	}
	rep.LiveHeap.Last, rep.LiveHeap.LastAt = v, now
	if mins := now.Sub(rep.LiveHeap.FirstAt).Minutes(); mins > 0 {
		rep.LiveHeap.GrowthPerMinute = round((v - rep.LiveHeap.First) / mins)
	}
}

// autoDecision is an Auto watch's decision when to stop, one look after
// each snapshot: the same for a live watch (Run) and a replay of its
// snapshots (Replay with Auto), so that a replay stops where the watch
// did.
type autoDecision struct {
	least, most  int // snapshots of the shortest watch and of the longest
	decidedLooks int // looks in a row with nothing undecided
}

// newAutoDecision decides for a watch with a snapshot every every, at
// least least long and at most most.
func newAutoDecision(every, least, most time.Duration) *autoDecision {
	return &autoDecision{least: int(least/every) + 1, most: int(most/every) + 1}
}

// look judges what the detector has after snapshots snapshots (failed
// ones included, as a watch counts its ticks): how many sites grow
// undecided, and whether the watch has decided and stops. Before the
// shortest watch is over it judges nothing.
func (a *autoDecision) look(det *Detector, snapshots int) (undecided int, stop bool) {
	if snapshots < a.least {
		return 0, false
	}
	suspects := det.Suspects()
	undecided = len(det.Undecided(suspects))
	if undecided == 0 {
		a.decidedLooks++
	} else {
		a.decidedLooks = 0
	}
	return undecided, autoStop(a.decidedLooks, snapshots, a.least, len(suspects) > 0)
}

// autoStop says whether an Auto watch has decided, after snapshots
// snapshots of which least make its shortest watch: nothing undecided for
// two looks in a row (one look's verdict is not trusted to end it alone),
// and, when it found nothing, twice its shortest length: a slow leak may
// have had no sampled allocation yet in the first minute (a leak of 2 MiB
// a minute has none in 2% of minutes, one in 7%).
func autoStop(decidedLooks, snapshots, least int, found bool) bool {
	return decidedLooks >= 2 && (found || snapshots >= 2*least-1)
}

// finalDump takes an Auto watch's last goroutine dump once it has decided
// to stop (a fixed-length watch takes it with its last snapshot), sized by
// the goroutine profile of the snapshot just taken.
func finalDump(ctx context.Context, base string, goroutines *profile.Profile, opts Options, det *Detector, rep *Report) {
	if opts.NoGoroutineIDs || rep.GoroutineIDsOff != "" || goroutines == nil {
		return
	}
	goroutineDump(ctx, base, goroutines, opts.MaxDumpGoroutines, det, rep)
}

// snapshot captures heap (after a GC) and goroutine profiles, and the
// goroutineleak profile while the target serves it; with dump, also a
// goroutine dump (IDs). The first snapshot of a target that did not say
// which code is its own reads it from the profiles (InferOwnCode). It
// returns the goroutine profile it took.
func snapshot(ctx context.Context, base string, opts Options, det *Detector, rep *Report, dump bool) (*profile.Profile, error) {
	var goroutines *profile.Profile
	types := []string{profiles.TypeHeap, profiles.TypeGoroutine}
	if rep.GoroutineLeakProfile {
		types = append(types, profiles.TypeGoroutineLeak)
	}
	type captured struct {
		typ string
		p   *profile.Profile
		id  string
		at  time.Time
	}
	var got []captured
	for _, typ := range types {
		c, err := profiles.Fetch(ctx, base, profiles.FetchOptions{Type: typ, Timeout: 15 * time.Second, Labels: opts.Labels, KeepRaw: opts.Store != nil})
		if errors.Is(err, profiles.ErrNoGoroutineLeakProfile) {
			rep.GoroutineLeakProfile = false
			continue
		}
		if err != nil {
			return nil, err
		}
		id := ""
		if opts.Store != nil {
			meta, err := opts.Store.SaveRaw(c, c.Raw()) // as received: no second gzip
			if err != nil {
				return nil, fmt.Errorf("saving the %s snapshot: %w", typ, err)
			}
			id = meta.ID
		}
		p, err := c.Profile()
		if err != nil {
			return nil, err
		}
		at := c.Time
		if at.IsZero() {
			at = time.Now()
		}
		got = append(got, captured{typ, p, id, at})
	}
	if rep.Snapshots == 0 && len(det.Own.Prefixes) == 0 {
		ps := make([]*profile.Profile, len(got))
		for i, c := range got {
			ps[i] = c.p
		}
		det.Own = inferOwn(det.Own, ps...)
		rep.Own = det.Own
	}
	for _, c := range got {
		switch c.typ {
		case profiles.TypeHeap:
			det.AddHeap(c.at, c.p, c.id)
		case profiles.TypeGoroutine:
			det.AddGoroutines(c.at, c.p, c.id)
			goroutines = c.p
			if dump && !opts.NoGoroutineIDs && rep.GoroutineIDsOff == "" {
				goroutineDump(ctx, base, c.p, opts.MaxDumpGoroutines, det, rep)
			}
		case profiles.TypeGoroutineLeak:
			det.AddGoroutineLeaks(c.p, c.id)
		}
	}
	return goroutines, nil
}

// goroutineDump feeds the detector the target's goroutine dump (IDs), when
// the target has few enough goroutines for the dump to be cheap (it stops
// the target's world while it is written). A dump that cannot be taken
// turns the evidence off for the rest of the watch, with the reason: the
// first dump then has no later one to be compared with, or the last none
// to compare the first with.
func goroutineDump(ctx context.Context, base string, p *profile.Profile, limit int, det *Detector, rep *Report) {
	var total int64
	for _, s := range p.Sample {
		total += s.Value[0]
	}
	if total > int64(limit) {
		rep.GoroutineIDsOff = fmt.Sprintf("the target had %d goroutines, more than the %d a dump is taken for (--max-dump-goroutines)", total, limit)
		return
	}
	gs, err := profiles.FetchGoroutineDump(ctx, base, 15*time.Second)
	if err != nil {
		rep.GoroutineIDsOff = "a goroutine dump failed: " + err.Error()
		return
	}
	det.AddGoroutineDump(gs)
}
