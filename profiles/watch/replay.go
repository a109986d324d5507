package watch

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leaklab/leaklab/profiles"
)

// ReplayOptions configure Replay.
type ReplayOptions struct {
	DetectorOptions
	Since, Until time.Time // zero: no bound
	// Auto replays the snapshots as an Auto watch (Options.Auto) of a
	// snapshot every Every, at least For long and at most MaxFor, would
	// have judged them: it stops at the snapshot where that watch would
	// have decided to stop. Every, For and MaxFor default as Run's.
	Auto               bool
	Every, For, MaxFor time.Duration
}

// Replay runs the detector over the heap and goroutine profiles of target
// already in the store (captured by an earlier watch, 'leaklab capture' or
// 'leaklab collect'), oldest first, one at a time, so memory stays bounded
// however much history there is. target is a service as capture takes it
// (127.0.0.1:8080, http://127.0.0.1:8080) or a target as the store records
// it, push://APP for profiles pushed to the collector included: nothing is
// fetched, so it need not be a URL.
func Replay(ctx context.Context, store *profiles.Store, target string, opts ReplayOptions) (*Report, error) {
	base := profiles.StoredTarget(target)
	if base == "" {
		return nil, fmt.Errorf("no target to replay: name a service (http://host:port) or a stored target (push://APP)")
	}
	filter := func(typ string) profiles.Filter {
		return profiles.Filter{Target: base, Type: typ, Since: opts.Since, Until: opts.Until}
	}
	heaps, err := store.List(filter(profiles.TypeHeap))
	if err != nil {
		return nil, err
	}
	gors, err := store.List(filter(profiles.TypeGoroutine))
	if err != nil {
		return nil, err
	}
	if len(heaps) == 0 && len(gors) == 0 {
		return nil, fmt.Errorf("the store (%s) has no heap or goroutine profiles of %s in that time range; capture some with 'leaklab watch', 'leaklab capture' or 'leaklab collect'", store.Dir(), base)
	}
	start := earliest(heaps, gors)
	if len(opts.Own.Prefixes) == 0 {
		var first []*profile.Profile
		for _, metas := range [][]profiles.Meta{gors, heaps} {
			if len(metas) > 0 {
				if p, err := loadProfile(store, metas[0]); err == nil {
					first = append(first, p)
				}
			}
		}
		opts.Own = inferOwn(opts.Own, first...)
	} else if opts.Own.Source == "" {
		opts.Own.Source = profiles.OwnFromFlag
	}
	det := opts.DetectorOptions.NewDetector(start)
	rep := &Report{Target: base, Started: start.UTC(), Own: opts.Own, GoroutineIDsOff: "the store keeps no goroutine dumps"}
	feed := func(m profiles.Meta, add func(time.Time, *profile.Profile, string)) {
		p, err := loadProfile(store, m)
		if err != nil {
			rep.Failures++
			return
		}
		add(m.Time, p, m.ID)
		if m.Time.After(rep.Ended) {
			rep.Ended = m.Time.UTC()
		}
	}
	var auto *autoDecision
	if opts.Auto {
		opts.Every, opts.For, opts.MaxFor = cmp.Or(opts.Every, DefaultEvery), cmp.Or(opts.For, DefaultFor), cmp.Or(opts.MaxFor, DefaultMaxFor)
		auto = newAutoDecision(opts.Every, opts.For, opts.MaxFor)
	}
	// Snapshot n is the n-th heap profile and the n-th goroutine profile,
	// fed in that order, as a watch takes and feeds them.
	n := max(len(heaps), len(gors))
	fed := 0
	for fed < n {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if fed < len(heaps) {
			feed(heaps[fed], det.AddHeap)
		}
		if fed < len(gors) {
			feed(gors[fed], det.AddGoroutines)
		}
		fed++
		if auto != nil {
			if _, stop := auto.look(det, fed); stop || fed == auto.most {
				break
			}
		}
	}
	rep.Snapshots = fed - rep.Failures
	if leaks, err := store.List(filter(profiles.TypeGoroutineLeak)); err == nil && len(leaks) > 0 {
		// the last one taken with the snapshots fed, none after
		last := len(leaks) - 1
		if fed < n {
			next := earliest(heaps[min(fed, len(heaps)):], gors[min(fed, len(gors)):])
			for last >= 0 && !leaks[last].Time.Before(next) {
				last--
			}
		}
		if last >= 0 {
			if p, err := loadProfile(store, leaks[last]); err == nil {
				det.AddGoroutineLeaks(p, leaks[last].ID)
				rep.GoroutineLeakProfile = true
			}
		}
	}
	switch {
	case auto != nil:
		rep.Auto, rep.Every, rep.For, rep.MaxFor = true, opts.Every.Seconds(), opts.For.Seconds(), opts.MaxFor.Seconds()
	case n > 1:
		rep.For = rep.Ended.Sub(rep.Started).Seconds()
		rep.Every = rep.For / float64(n-1)
	}
	rep.Suspects = det.Suspects()
	rep.TopGrowing = det.TopGrowing(topGrowing)
	rep.Undecided = det.Undecided(rep.Suspects)
	rep.HeapTotal = det.HeapTotal()
	rep.FirstHeapSnapshot, rep.LastHeapSnapshot = det.HeapSnapshots()
	return rep, nil
}

func loadProfile(store *profiles.Store, m profiles.Meta) (*profile.Profile, error) {
	c, err := store.Load(m.ID, profiles.Limits{})
	if err != nil {
		return nil, err
	}
	return c.Profile()
}

func earliest(lists ...[]profiles.Meta) time.Time {
	var t time.Time
	for _, l := range lists {
		if len(l) > 0 && (t.IsZero() || l[0].Time.Before(t)) {
			t = l[0].Time
		}
	}
	return t
}
