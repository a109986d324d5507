package check

import (
	"cmp"
	"slices"

	"github.com/leaklab/leaklab/profiles"
)

// heapSites diffs two heap profiles by stack and adds up the growth by
// each stack's first frame of own code (the diff names stacks so).
func heapSites(base, cur *profiles.Captured, own profiles.OwnCode, requests int64) ([]Site, error) {
	d, err := profiles.Diff(base, cur, profiles.DiffOptions{SampleIndex: "inuse_space", By: profiles.ByStack, Own: own})
	if err != nil {
		return nil, err
	}
	byFn := map[string]*Site{}
	for _, row := range d.Rows {
		s, ok := byFn[row.Function]
		if !ok {
			s = &Site{Function: row.Function}
			byFn[row.Function] = s
		}
		s.Delta += row.Delta
		if row.Delta > 0 && s.Stack == nil {
			s.Stack = row.Stack // rows come largest growth first
		}
	}
	var out []Site
	for _, s := range byFn {
		if s.Delta > 0 {
			out = append(out, *s)
		}
	}
	return top(out, requests), nil
}

// goroutineSites diffs two goroutine profiles by leak site: own-code
// function and wait state.
func goroutineSites(base, cur *profiles.Captured, own profiles.OwnCode, requests int64) ([]Site, error) {
	d, err := profiles.Diff(base, cur, profiles.DiffOptions{Own: own})
	if err != nil {
		return nil, err
	}
	var out []Site
	for _, ls := range d.LeakSites {
		if ls.Delta > 0 {
			out = append(out, Site{Function: ls.Function, WaitState: ls.WaitState, Delta: ls.Delta, Stack: ls.Stack})
		}
	}
	return top(out, requests), nil
}

func top(sites []Site, requests int64) []Site {
	slices.SortFunc(sites, func(a, b Site) int {
		return cmp.Or(cmp.Compare(b.Delta, a.Delta), cmp.Compare(a.Function, b.Function), cmp.Compare(a.WaitState, b.WaitState))
	})
	if len(sites) > maxSites {
		sites = sites[:maxSites]
	}
	for i := range sites {
		if requests > 0 {
			sites[i].PerRequest = float64(sites[i].Delta) / float64(requests)
		}
	}
	return sites
}
