package profiles

import (
	"context"
	"errors"
	"strings"
	"sync"
)

// DiffRefs loads two profiles named as LoadRef takes them and diffs them,
// inferring what the references leave open:
//
//   - a URL side is captured with the other side's type unless
//     ro.Fetch.Type says which (a file or store ID knows its type; both are
//     loaded first, at the same time, since reading and decoding big
//     profiles is most of a diff's work);
//   - when opts.Own names no module and the profiles are goroutine
//     profiles (only leak sites need own code), own code is the module a
//     URL side's go_build_info metric reports.
//
// It returns the loaded sides too, for DiffProfile.
func DiffRefs(ctx context.Context, base, current string, ro RefOptions, opts DiffOptions) (*DiffReport, [2]*Captured, error) {
	refs := [2]string{base, current}
	sides, err := loadDiffSides(ctx, refs, ro)
	if err != nil {
		return nil, sides, err
	}
	goroutines := sides[1].Type == TypeGoroutine || sides[1].Type == TypeGoroutineLeak
	if len(opts.Own.Prefixes) == 0 && goroutines {
		for _, ref := range refs {
			if isURLRef(ref) {
				if mod := DetectModule(ctx, nil, ref); mod != "" {
					opts.Own = OwnCodeFor(mod)
					break
				}
			}
		}
	}
	rep, err := Diff(sides[0], sides[1], opts)
	return rep, sides, err
}

func isURLRef(ref string) bool { return strings.Contains(ref, "://") }

// loadDiffSides loads files and store IDs at the same time, then URLs,
// which are captured with the other side's type unless ro.Fetch.Type says.
func loadDiffSides(ctx context.Context, refs [2]string, ro RefOptions) ([2]*Captured, error) {
	var sides [2]*Captured
	var errs [2]error
	var wg sync.WaitGroup
	for i, ref := range refs {
		if !isURLRef(ref) {
			wg.Go(func() { sides[i], errs[i] = LoadRef(ctx, ref, ro) })
		}
	}
	wg.Wait()
	if err := errors.Join(errs[0], errs[1]); err != nil {
		return sides, err
	}
	for i, ref := range refs {
		if !isURLRef(ref) {
			continue
		}
		o := ro
		if other := sides[1-i]; ro.Fetch.Type == "" && other != nil && other.Type != "contention" && other.Type != "unknown" {
			o.Fetch.Type = other.Type
		}
		var err error
		if sides[i], err = LoadRef(ctx, ref, o); err != nil {
			return sides, err
		}
	}
	return sides, nil
}
