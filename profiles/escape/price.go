package escape

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/pprof/profile"
	"github.com/leaklab/leaklab/profiles"
)

// Cost is what an allocation profile recorded at a finding's line.
type Cost struct {
	AllocBytes   int64 `json:"alloc_bytes"`
	AllocObjects int64 `json:"alloc_objects"`
	// SharedWith counts the other findings on the same line: a profile
	// records lines, not columns, so they share this cost.
	SharedWith int `json:"shared_with,omitempty"`
}

// Pricing summarises a join of findings with an allocation profile.
type Pricing struct {
	// Ranked are the findings the profile saw allocate, most bytes first.
	Ranked []Finding `json:"ranked"`
	// TotalBytes and TotalObjects are everything the profile recorded;
	// MatchedBytes and MatchedObjects the part attributed to findings.
	TotalBytes     int64 `json:"total_bytes"`
	TotalObjects   int64 `json:"total_objects"`
	MatchedBytes   int64 `json:"matched_bytes"`
	MatchedObjects int64 `json:"matched_objects"`
}

// priceable reports whether a finding is an allocation a profile can
// see: heap escapes, and make with a run-time size that the compiler keeps
// on the stack only while it is small.
func priceable(f *Finding) bool {
	if f.Kind.Heap() {
		return true
	}
	if f.Kind == KindDoesNotEscape && strings.HasPrefix(f.Message, "make(") {
		return !constantMake(strings.TrimSuffix(f.Message, " does not escape"))
	}
	return false
}

// Price joins the report's findings with a heap or allocs profile by file
// and line: the allocation site of each sample (its first frame outside
// the runtime, with inlined frames telling a call site from the inlined
// code) against each finding's position and, for inlined code, where it
// came from. It sets Cost on the findings it matched and ranks them by
// alloc_space, then alloc_objects.
func Price(r *Report, p *profile.Profile) (*Pricing, error) {
	spaceIdx, objIdx, err := allocIndexes(p)
	if err != nil {
		return nil, err
	}
	pricing := &Pricing{}
	sites := map[string]*Cost{}
	for _, s := range p.Sample {
		bytes, objs := s.Value[spaceIdx], s.Value[objIdx]
		pricing.TotalBytes += bytes
		pricing.TotalObjects += objs
		key := allocSite(s)
		if key == "" {
			continue
		}
		c := sites[key]
		if c == nil {
			c = &Cost{}
			sites[key] = c
		}
		c.AllocBytes += bytes
		c.AllocObjects += objs
	}

	byKey := map[string][]int{}
	for i := range r.Findings {
		f := &r.Findings[i]
		if !priceable(f) {
			continue
		}
		file := f.File
		if !filepath.IsAbs(file) {
			file = filepath.Join(r.Dir, file)
		}
		inner := siteKey(file, f.Line)
		if f.InlinedFrom != nil {
			in := f.InlinedFrom.File
			if !filepath.IsAbs(in) {
				in = filepath.Join(r.Dir, in)
			}
			inner = siteKey(in, f.InlinedFrom.Line)
		}
		key := inner + "|" + siteKey(file, f.Line)
		byKey[key] = append(byKey[key], i)
	}
	for key, idxs := range byKey {
		c, ok := sites[key]
		if !ok {
			continue
		}
		pricing.MatchedBytes += c.AllocBytes
		pricing.MatchedObjects += c.AllocObjects
		for _, i := range idxs {
			r.Findings[i].Cost = &Cost{AllocBytes: c.AllocBytes, AllocObjects: c.AllocObjects, SharedWith: len(idxs) - 1}
		}
	}
	for _, f := range r.Findings {
		if f.Cost != nil && (f.Cost.AllocBytes > 0 || f.Cost.AllocObjects > 0) {
			pricing.Ranked = append(pricing.Ranked, f)
		}
	}
	sort.SliceStable(pricing.Ranked, func(i, j int) bool {
		a, b := pricing.Ranked[i].Cost, pricing.Ranked[j].Cost
		if a.AllocBytes != b.AllocBytes {
			return a.AllocBytes > b.AllocBytes
		}
		return a.AllocObjects > b.AllocObjects
	})
	return pricing, nil
}

// allocIndexes finds the alloc_space and alloc_objects sample types,
// which pricing needs.
func allocIndexes(p *profile.Profile) (space, objects int, err error) {
	space, objects = profiles.SampleTypeIndex(p, "alloc_space"), profiles.SampleTypeIndex(p, "alloc_objects")
	if space < 0 || objects < 0 {
		var types []string
		for _, st := range p.SampleType {
			types = append(types, st.Type)
		}
		return 0, 0, fmt.Errorf("the profile has no alloc_space and alloc_objects (it has %s): give a heap or allocs profile", strings.Join(types, ", "))
	}
	return space, objects, nil
}

// allocSite names where a sample allocated: the innermost and outermost
// source lines of its first location outside the runtime.
func allocSite(s *profile.Sample) string {
	for _, loc := range s.Location {
		if len(loc.Line) == 0 {
			continue
		}
		inner, outer := loc.Line[0], loc.Line[len(loc.Line)-1]
		if inner.Function == nil || outer.Function == nil {
			continue
		}
		if strings.HasPrefix(inner.Function.Name, "runtime.") && strings.HasPrefix(outer.Function.Name, "runtime.") {
			continue
		}
		return siteKey(inner.Function.Filename, int(inner.Line)) + "|" + siteKey(outer.Function.Filename, int(outer.Line))
	}
	return ""
}

// siteKey identifies a line by its file's last two path elements, so a
// profile from a binary built elsewhere (another checkout, -trimpath)
// still matches the source being analysed.
func siteKey(file string, line int) string {
	file = filepath.ToSlash(file)
	dir, base := filepath.Split(file)
	dir = strings.TrimSuffix(dir, "/")
	if i := strings.LastIndexByte(dir, '/'); i >= 0 {
		dir = dir[i+1:]
	}
	return fmt.Sprintf("%s/%s:%d", dir, base, line)
}
