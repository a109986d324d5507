package profiles

import (
	"fmt"

	"github.com/google/pprof/profile"
)

// baseLabel marks samples of the base profile in a diff profile, as
// pprof's -diff_base does; pprof's reports then compute percentages
// against the base rather than the sum of both.
const baseLabel = "pprof::base"

// DiffProfile builds the profile pprof builds for -diff_base: the base
// scaled by -1 and tagged pprof::base=true, merged with the current one.
// Writing it and opening it with 'go tool pprof' shows the same numbers as
// 'go tool pprof -diff_base BASE CUR'.
func DiffProfile(base, cur *Captured) (*profile.Profile, error) {
	if !diffable(base.Type, cur.Type) {
		return nil, fmt.Errorf("cannot diff %s profile against %s profile", withArticle(cur.Type), withArticle(base.Type))
	}
	bp, err := base.Profile()
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", base.Target, err)
	}
	cp, err := cur.Profile()
	if err != nil {
		return nil, fmt.Errorf("current %s: %w", cur.Target, err)
	}
	if err := sameSampleTypes(sampleTypesOf(bp), sampleTypesOf(cp)); err != nil {
		return nil, err
	}
	// Copies: the callers' profiles stay as they were.
	b := bp.Copy()
	b.SetLabel(baseLabel, []string{"true"})
	b.Scale(-1)
	merged, err := profile.Merge([]*profile.Profile{cp.Copy(), b})
	if err != nil {
		return nil, fmt.Errorf("cannot merge the profiles: %w", err)
	}
	return merged, nil
}
