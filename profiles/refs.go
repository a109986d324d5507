package profiles

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leaklab/leaklab/internal/atomicfile"
)

// RefOptions say how LoadRef finds a profile.
type RefOptions struct {
	// Store is searched for IDs; IDs are refused when nil.
	Store *Store
	// Fetch is used for URLs.
	Fetch  FetchOptions
	Limits Limits
}

// LoadRef returns the profile a command-line argument names: a URL
// (captured now, not stored), a file, a store ID or unique prefix, or
// TARGET@AGO: the stored profile of TARGET (a URL, host:port or push://APP;
// its /debug/pprof/TYPE path, else opts.Fetch.Type, else heap, picks the
// type) taken closest to AGO before now (1h, 30m, 0s for the newest).
func LoadRef(ctx context.Context, ref string, opts RefOptions) (*Captured, error) {
	if target, ago, ok := splitTargetAgo(ref); ok {
		return loadStoredAt(target, ago, ref, opts)
	}
	if strings.Contains(ref, "://") {
		fo := opts.Fetch
		if fo.Limits == (Limits{}) {
			fo.Limits = opts.Limits
		}
		return Fetch(ctx, ref, fo)
	}
	if _, err := os.Stat(ref); err == nil {
		return ReadFile(ref, opts.Limits)
	}
	if opts.Store == nil {
		return nil, fmt.Errorf("%s: no such file", ref)
	}
	c, err := opts.Store.Load(ref, opts.Limits)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%s: no such file, URL or stored profile (leaklab profiles ls lists stored ones)", ref)
	}
	return c, err
}

// WriteFile writes c gzipped to path atomically: through a temporary file
// in the same directory, renamed into place, so a killed process never
// leaves half a profile at path.
func WriteFile(path string, c *Captured) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := c.WriteTo(w)
		return err
	})
}

// WriteProfile writes p gzipped to path atomically, like WriteFile.
func WriteProfile(path string, p *profile.Profile) error {
	return atomicfile.Write(path, p.Write)
}

// splitTargetAgo splits TARGET@AGO; ok is false for anything else (a URL
// with user info has a host, not a duration, after its @).
func splitTargetAgo(ref string) (target string, ago time.Duration, ok bool) {
	i := strings.LastIndexByte(ref, '@')
	if i <= 0 {
		return "", 0, false
	}
	ago, err := time.ParseDuration(ref[i+1:])
	if err != nil || ago < 0 {
		return "", 0, false
	}
	return ref[:i], ago, true
}

// loadStoredAt loads the stored profile of target, of the type its URL
// names (else opts.Fetch.Type, else heap), taken closest to ago before now.
func loadStoredAt(target string, ago time.Duration, ref string, opts RefOptions) (*Captured, error) {
	if opts.Store == nil {
		return nil, fmt.Errorf("%s: no profile store to look in", ref)
	}
	typ := opts.Fetch.Type
	if _, _, urlType, err := ProfileURL(target, FetchOptions{Type: typ}); err == nil && urlType != "" {
		typ = urlType
	}
	if typ == "" {
		typ = TypeHeap
	}
	metas, err := opts.Store.List(Filter{Target: target, Type: typ})
	if err != nil {
		return nil, err
	}
	if len(metas) == 0 {
		return nil, fmt.Errorf("%s: no stored %s profile of %s (leaklab profiles ls --target lists what is stored)", ref, typ, StoredTarget(target))
	}
	want := time.Now().Add(-ago)
	best := metas[0]
	for _, m := range metas[1:] {
		if m.Time.Sub(want).Abs() < best.Time.Sub(want).Abs() {
			best = m
		}
	}
	return opts.Store.Load(best.ID, opts.Limits)
}
