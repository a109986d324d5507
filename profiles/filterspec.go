package profiles

import (
	"strings"
	"time"

	"github.com/leaklab/leaklab/internal/opterr"
)

// FilterSpec is a Filter as a person writes it: times as RFC 3339 or a
// duration before now (90m, 2h, 7d), labels as KEY=VALUE.
type FilterSpec struct {
	Target, Type, Service string
	Since, Until          string
	Labels                []string
}

// Filter parses the spec, with durations counted back from now.
func (s FilterSpec) Filter(now time.Time) (Filter, error) {
	f := Filter{Target: s.Target, Type: s.Type, Service: s.Service}
	var err error
	if f.Labels, err = ParseLabels(s.Labels); err != nil {
		return f, err
	}
	// ParseLabels keeps the last of repeated keys; as a filter, two
	// values for one key can match nothing, which is surely a mistake.
	for _, kv := range s.Labels {
		if k, v, _ := strings.Cut(kv, "="); f.Labels[k] != v {
			return f, opterr.Errorf("Labels", "Labels %s is given twice (%q and %q): a profile has one value per label", k, v, f.Labels[k])
		}
	}
	if f.Since, err = parseTimeAgo("Since", s.Since, now); err != nil {
		return f, err
	}
	if f.Until, err = parseTimeAgo("Until", s.Until, now); err != nil {
		return f, err
	}
	return f, nil
}

// ParseLabels parses KEY=VALUE pairs; of a repeated key the last value
// stays. No pairs give a nil map.
func ParseLabels(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, opterr.Errorf("Labels", "Labels %q: want KEY=VALUE", kv)
		}
		out[k] = v
	}
	return out, nil
}

// parseTimeAgo accepts RFC 3339 or a duration before now; "" is the zero
// time (no bound).
func parseTimeAgo(option, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := ParseDays(s); err == nil {
		return now.Add(-d), nil
	}
	return time.Time{}, opterr.Errorf(option, "%s %q: want RFC 3339 (2026-11-25T10:00:00Z) or a duration ago (90m, 2h, 7d)", option, s)
}

// PruneSpec is what to prune as a person says it: an age (OlderThan, as
// ParseDays takes it) or All, within Filter, keeping the newest Keep.
type PruneSpec struct {
	FilterSpec
	OlderThan string
	All       bool
	Keep      int
	DryRun    bool
}

// Options checks the spec and parses it, with ages counted back from now.
func (s PruneSpec) Options(now time.Time) (PruneOptions, error) {
	filter, err := s.Filter(now)
	if err != nil {
		return PruneOptions{}, err
	}
	opts := PruneOptions{Filter: filter, Keep: s.Keep, Now: now, DryRun: s.DryRun}
	switch {
	case s.OlderThan != "":
		if opts.OlderThan, err = ParseDays(s.OlderThan); err != nil || opts.OlderThan == 0 {
			return opts, opterr.Errorf("OlderThan", "OlderThan %q: want a positive duration like 90m, 12h or 7d", s.OlderThan)
		}
	case !s.All:
		return opts, opterr.Combination([]string{"OlderThan", "All"}, "say what to prune: OlderThan DURATION, or All (with filters)")
	}
	if s.Keep < 0 {
		return opts, opterr.Errorf("Keep", "Keep must not be negative")
	}
	return opts, nil
}
