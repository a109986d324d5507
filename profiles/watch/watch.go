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
	// maxConsecutiveFailures ends a watch whose target stopped answering.
	maxConsecutiveFailures = 2
	// topGrowing is how many sites of each kind the report lists besides
	// the suspects.
	topGrowing = 5
)

// Options configure Run.
type Options struct {
	Every time.Duration // DefaultEvery when zero
	For   time.Duration // DefaultFor when zero
	// Store keeps every snapshot when set, so suspects can name the diff
	// to run next.
	Store *profiles.Store
	// Own says which frames are the target's own code; detected from the
	// target's go_build_info metric when empty.
	Own                OwnCode
	MinHeapGrowth      float64
	MinGoroutineGrowth float64
	// Progress, when set, is called after each snapshot.
	Progress func(Progress)
	// Labels are stored with every snapshot.
	Labels map[string]string
	// NoGoroutineIDs skips the goroutine dumps (IDs) taken at the first
	// and the last snapshot, which tell a leak from long-lived goroutines
	// (ids.go); goroutines are then judged by their counts alone.
	NoGoroutineIDs bool
	// MaxDumpGoroutines is the most goroutines the target may have for a
	// dump to be taken; DefaultMaxDumpGoroutines when zero.
	MaxDumpGoroutines int
}

// Progress reports a watch under way.
type Progress struct {
	Snapshot int
	Total    int
	Elapsed  time.Duration
	Err      error // the snapshot failed
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
	if opts.For < opts.Every {
		return nil, opterr.Errorf("for", "for (%s) is shorter than every (%s): a watch needs two snapshots", opts.For, opts.Every)
	}
	_, base, _, err := profiles.ProfileURL(target, profiles.FetchOptions{})
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: 10 * time.Second}
	if len(opts.Own.Prefixes) == 0 {
		if mod := profiles.DetectModule(ctx, client, base); mod != "" {
			opts.Own = OwnCodeFor(mod)
		}
	}
	start := time.Now()
	rep := &Report{Target: base, Started: start.UTC(), Every: opts.Every.Seconds(), For: opts.For.Seconds(), Own: opts.Own, GoroutineLeakProfile: true}
	det := NewDetector(start, opts.Own)
	det.MinHeapGrowth, det.MinGoroutineGrowth = opts.MinHeapGrowth, opts.MinGoroutineGrowth
	total := int(opts.For/opts.Every) + 1

	tick := time.NewTicker(opts.Every)
	defer tick.Stop()
	consecutive := 0
	var lastErr error
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
		err := snapshot(ctx, base, opts, det, rep, n == 0 || n == total-1)
		if opts.Progress != nil {
			opts.Progress(Progress{Snapshot: n + 1, Total: total, Elapsed: time.Since(start), Err: err})
		}
		if err == nil {
			rep.Snapshots++
			consecutive = 0
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
	rep.TopGrowing = det.TopGrowing(topGrowing)
	return rep, nil
}

// snapshot captures heap (after a GC) and goroutine profiles, and the
// goroutineleak profile while the target serves it; with dump, also a
// goroutine dump (IDs).
func snapshot(ctx context.Context, base string, opts Options, det *Detector, rep *Report, dump bool) error {
	types := []string{profiles.TypeHeap, profiles.TypeGoroutine}
	if rep.GoroutineLeakProfile {
		types = append(types, profiles.TypeGoroutineLeak)
	}
	for _, typ := range types {
		c, err := profiles.Fetch(ctx, base, profiles.FetchOptions{Type: typ, Timeout: 15 * time.Second, Labels: opts.Labels, KeepRaw: opts.Store != nil})
		if errors.Is(err, profiles.ErrNoGoroutineLeakProfile) {
			rep.GoroutineLeakProfile = false
			continue
		}
		if err != nil {
			return err
		}
		id := ""
		if opts.Store != nil {
			meta, err := opts.Store.SaveRaw(c, c.Raw()) // as received: no second gzip
			if err != nil {
				return fmt.Errorf("saving the %s snapshot: %w", typ, err)
			}
			id = meta.ID
		}
		p, err := c.Profile()
		if err != nil {
			return err
		}
		at := c.Time
		if at.IsZero() {
			at = time.Now()
		}
		switch typ {
		case profiles.TypeHeap:
			det.AddHeap(at, p, id)
		case profiles.TypeGoroutine:
			det.AddGoroutines(at, p, id)
			if dump && !opts.NoGoroutineIDs && rep.GoroutineIDsOff == "" {
				goroutineDump(ctx, base, p, opts.MaxDumpGoroutines, det, rep)
			}
		case profiles.TypeGoroutineLeak:
			det.AddGoroutineLeaks(p, id)
		}
	}
	return nil
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
