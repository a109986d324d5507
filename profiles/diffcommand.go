package profiles

import (
	"context"
	"fmt"

	"github.com/google/pprof/profile"
	"github.com/leaklab/leaklab/internal/opterr"
)

// DiffCommandOptions are a diff as 'leaklab diff' takes it: two
// references (see DiffRefs), the own code as module paths, and where the
// diff goes besides the report.
type DiffCommandOptions struct {
	DiffOptions
	OwnModules  []string     // module paths of the target's own code; none: inferred (see DiffRefs)
	Fetch       FetchOptions // for a URL side
	Out         string       // also write the diff as a pprof profile here ("": no file)
	WantProfile bool         // also return the diff as a pprof profile (for pprof's web UI)
	// OpenStore opens the store IDs and TARGET@AGO references are read
	// from.
	OpenStore func() (*Store, error)
}

// Run checks c and diffs base against current. The diff profile is
// returned when WantProfile is set, and written to Out when it is given.
// Refused options are *opterr.Error, reported before anything is read.
func (c DiffCommandOptions) Run(ctx context.Context, base, current string) (*DiffReport, *profile.Profile, error) {
	switch c.By {
	case ByFunction, ByLine, ByStack:
	default:
		return nil, nil, opterr.Errorf("By", "By %q: want function, line or stack", c.By)
	}
	if c.Top < 0 {
		return nil, nil, opterr.Errorf("Top", "Top must not be negative")
	}
	store, err := c.OpenStore()
	if err != nil {
		return nil, nil, err
	}
	opts := c.DiffOptions
	opts.Own = OwnCodeFor(c.OwnModules...)
	rep, sides, err := DiffRefs(ctx, base, current, RefOptions{Store: store, Fetch: c.Fetch}, opts)
	if err != nil || (c.Out == "" && !c.WantProfile) {
		return rep, nil, err
	}
	dp, err := DiffProfile(sides[0], sides[1])
	if err != nil {
		return nil, nil, err
	}
	if c.Out != "" {
		if err := WriteProfile(c.Out, dp); err != nil {
			return nil, nil, fmt.Errorf("cannot write %s: %w", c.Out, err)
		}
	}
	return rep, dp, nil
}
