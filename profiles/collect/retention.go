package collect

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/leaklab/leaklab/profiles"
)

// Retention bounds what the collector keeps in the store. Only profiles
// the collector wrote (labelled LabelCollected) are ever removed; zero
// fields mean no bound.
type Retention struct {
	// MaxAge removes collected profiles older than this.
	MaxAge time.Duration
	// MaxBytes removes the oldest collected profiles while their total
	// (gzipped) size is above this.
	MaxBytes int64
}

// retention keeps an index of the collected profiles in memory, oldest
// first, so that enforcing the bounds never re-reads the whole store
// directory: the store is listed once at start, then every save is added.
// Nothing is removed until the collector runs (enforce, from Run).
type retention struct {
	store *profiles.Store
	rules Retention
	m     *metrics
	log   *slog.Logger

	mu      sync.Mutex
	entries []retained
	total   int64
	pruned  int
}

type retained struct {
	id    string
	time  time.Time
	bytes int64
}

func newRetention(store *profiles.Store, rules Retention, m *metrics, log *slog.Logger) (*retention, error) {
	r := &retention{store: store, rules: rules, m: m, log: log}
	metas, err := store.List(profiles.Filter{})
	if err != nil {
		return nil, err
	}
	for _, meta := range metas {
		if meta.Labels[LabelCollected] != "" {
			r.entries = append(r.entries, retained{meta.ID, meta.Time, meta.Bytes})
			r.total += meta.Bytes
		}
	}
	r.publish()
	return r, nil
}

// add records a saved profile and enforces the size bound at once, so
// the store never holds much more than MaxBytes.
func (r *retention) add(meta profiles.Meta) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.entries = append(r.entries, retained{meta.ID, meta.Time, meta.Bytes})
	r.total += meta.Bytes
	// Saves finish slightly out of capture order; keep the index sorted
	// by moving the new entry back past any later ones (rarely more than
	// a few steps).
	for i := len(r.entries) - 1; i > 0 && r.entries[i].time.Before(r.entries[i-1].time); i-- {
		r.entries[i], r.entries[i-1] = r.entries[i-1], r.entries[i]
	}
	r.mu.Unlock()
	if r.rules.MaxBytes > 0 {
		r.enforce(time.Now())
	} else {
		r.publish()
	}
}

// run enforces the age bound periodically until ctx ends.
func (r *retention) run(ctx context.Context) {
	if r.rules.MaxAge <= 0 {
		return
	}
	every := min(time.Minute, max(time.Second, r.rules.MaxAge/10))
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			r.enforce(now)
		}
	}
}

// enforce removes the oldest collected profiles that break a bound.
func (r *retention) enforce(now time.Time) {
	for {
		r.mu.Lock()
		if len(r.entries) == 0 {
			r.mu.Unlock()
			break
		}
		oldest := r.entries[0]
		rule := ""
		switch {
		case r.rules.MaxAge > 0 && now.Sub(oldest.time) > r.rules.MaxAge:
			rule = "age"
		case r.rules.MaxBytes > 0 && r.total > r.rules.MaxBytes:
			rule = "size"
		}
		if rule == "" {
			r.mu.Unlock()
			break
		}
		r.entries[0] = retained{}
		r.entries = r.entries[1:]
		r.total -= oldest.bytes
		r.pruned++
		r.mu.Unlock()
		if _, err := r.store.Remove(oldest.id); err != nil && !errors.Is(err, profiles.ErrNotFound) {
			r.log.Warn("retention could not remove a profile", "id", oldest.id, "err", err)
		}
		r.m.pruned.WithLabelValues(rule).Inc()
	}
	r.publish()
}

func (r *retention) publish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Compact the backing array once most of it is dead prefix, so the
	// index's memory follows what is retained rather than what was ever
	// saved.
	if cap(r.entries) > 1024 && len(r.entries) < cap(r.entries)/4 {
		r.entries = append([]retained(nil), r.entries...)
	}
	r.m.storeBytes.Set(float64(r.total))
	r.m.storeProfiles.Set(float64(len(r.entries)))
}

func (r *retention) prunedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pruned
}
