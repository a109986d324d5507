package retainers

import (
	"strconv"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leaklab/leaklab/profiles"
)

// TypeRetainers is the store's profile type for retainer snapshots.
const TypeRetainers = "retainers"

// Profile renders the report as a pprof profile: one sample per chain,
// valued inuse_space (bytes) and inuse_objects (count), whose stack is the
// chain reversed (the object's hop first, the root last), because pprof
// stacks are leaf first; pprof's flame graph and tree then read from the
// root down. Each hop is a function named by its label.
func (r *Report) Profile() *profile.Profile {
	p := &profile.Profile{
		SampleType: []*profile.ValueType{
			{Type: "inuse_space", Unit: "bytes"},
			{Type: "inuse_objects", Unit: "count"},
		},
		PeriodType:        &profile.ValueType{Type: "space", Unit: "bytes"},
		Period:            1,
		DefaultSampleType: "inuse_space",
		TimeNanos:         r.Time.UnixNano(),
		Comments: []string{
			"leaklab retainers: stacks are reference chains, root last (pprof shows them root first)",
			"pid " + strconv.Itoa(r.PID) + " " + r.Command + " " + r.GoVersion,
			"heap_bytes " + strconv.FormatUint(r.HeapBytes, 10),
			"pause_seconds " + strconv.FormatFloat(r.PauseSeconds, 'f', 3, 64),
		},
	}
	locs := map[string]*profile.Location{}
	loc := func(label string) *profile.Location {
		if l, ok := locs[label]; ok {
			return l
		}
		fn := &profile.Function{ID: uint64(len(p.Function) + 1), Name: label, SystemName: label}
		p.Function = append(p.Function, fn)
		l := &profile.Location{ID: uint64(len(p.Location) + 1), Line: []profile.Line{{Function: fn}}}
		p.Location = append(p.Location, l)
		locs[label] = l
		return l
	}
	for _, c := range r.Chains {
		s := &profile.Sample{Value: []int64{c.Bytes, c.Objects}}
		for i := len(c.Chain) - 1; i >= 0; i-- {
			s.Location = append(s.Location, loc(c.Chain[i]))
		}
		p.Sample = append(p.Sample, s)
	}
	return p
}

// Captured wraps the report's profile for the store, with target as the
// stored target (the URL or "pid:N" it was taken from).
func (r *Report) Captured(target string) *profiles.Captured {
	t := r.Time
	if t.IsZero() {
		t = time.Now().UTC()
	}
	return profiles.NewCaptured(profiles.Meta{
		Target:  target,
		Type:    TypeRetainers,
		Time:    t,
		Service: r.Command,
		Samples: len(r.Chains),
	}, r.Profile())
}
