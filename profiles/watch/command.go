package watch

import (
	"context"
	"time"

	"github.com/leaklab/leaklab/internal/bytesize"
	"github.com/leaklab/leaklab/internal/opterr"
	"github.com/leaklab/leaklab/profiles"
)

// CommandOptions are a watch as 'leaklab watch' takes it: a live watch of
// Target, or with FromStore a replay of what the store already holds.
type CommandOptions struct {
	Target             string
	Every, For, MaxFor time.Duration
	Auto               bool     // For is the shortest watch; keep on while growth is undecided
	Own                []string // module paths of the target's own code; none: read from the target
	MinHeapGrowth      string   // a size per minute, e.g. 256KiB
	MinGoroutineGrowth float64
	NoGoroutineIDs     bool
	MaxDumpGoroutines  int
	Retainers          bool // reference chains at the first and last heap snapshot
	RetainersMaxPause  time.Duration
	// FromStore judges the profiles of Target already in the store,
	// captured between Since and Until ago (0: no bound).
	FromStore    bool
	Since, Until time.Duration
	// OpenStore opens the profile store; nil keeps nothing (and cannot
	// replay).
	OpenStore func() (*profiles.Store, error)
	Progress  func(Progress)
}

// Run checks c and watches (or replays) Target. Refused options are
// *opterr.Error, named by these fields, reported before the target is
// asked anything.
func (c CommandOptions) Run(ctx context.Context) (*Report, error) {
	// Zero would mean the defaults, not what was asked; For shorter than
	// Every, and MaxFor shorter than For, are Run's to refuse.
	if c.Every <= 0 || c.For <= 0 || c.MaxFor <= 0 {
		return nil, opterr.Combination([]string{"Every", "For", "MaxFor"}, "Every, For and MaxFor must be positive")
	}
	minHeap, err := bytesize.Parse(c.MinHeapGrowth)
	if err != nil {
		return nil, opterr.Errorf("MinHeapGrowth", "MinHeapGrowth: %v", err)
	}
	switch {
	case c.FromStore && c.OpenStore == nil:
		return nil, opterr.Combination([]string{"FromStore", "NoStore"}, "FromStore and NoStore cannot go together")
	case c.FromStore && c.Retainers:
		return nil, opterr.Combination([]string{"Retainers", "FromStore"}, "Retainers needs a live process: it does not go with FromStore")
	case !c.FromStore && (c.Since > 0 || c.Until > 0):
		return nil, opterr.Combination([]string{"Since", "Until", "FromStore"}, "Since and Until go with FromStore")
	}
	do := DetectorOptions{Own: OwnCodeFor(c.Own...), MinHeapGrowth: float64(minHeap), MinGoroutineGrowth: c.MinGoroutineGrowth}
	var store *profiles.Store
	if c.OpenStore != nil {
		if store, err = c.OpenStore(); err != nil {
			return nil, err
		}
	}
	if c.FromStore {
		ro := ReplayOptions{DetectorOptions: do, Auto: c.Auto, Every: c.Every, For: c.For, MaxFor: c.MaxFor}
		now := time.Now()
		if c.Since > 0 {
			ro.Since = now.Add(-c.Since)
		}
		if c.Until > 0 {
			ro.Until = now.Add(-c.Until)
		}
		return Replay(ctx, store, c.Target, ro)
	}
	wo := Options{DetectorOptions: do, Every: c.Every, For: c.For, Auto: c.Auto, MaxFor: c.MaxFor, Store: store,
		NoGoroutineIDs: c.NoGoroutineIDs, MaxDumpGoroutines: c.MaxDumpGoroutines, Progress: c.Progress}
	if c.Retainers {
		wo.Retainers = &RetainerOptions{MaxPause: c.RetainersMaxPause}
	}
	return Run(ctx, c.Target, wo)
}
