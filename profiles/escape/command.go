package escape

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/leaklab/leaklab/internal/opterr"
	"github.com/leaklab/leaklab/profiles"
)

// CommandOptions are a review as 'leaklab escape' takes it: compiler
// flags as one string, kinds and the function filter as text, the
// pricing profile by reference (a file, a stored profile ID or a URL).
type CommandOptions struct {
	Dir      string
	Packages []string
	GCFlags  string // e.g. "-l -m=2"; flags only, no package pattern
	AllFiles bool
	Kinds    []string // kind names; surrounding spaces are ignored
	Func     string   // a regular expression
	File     string
	Base     string
	Profile  string // "": no pricing
	// OpenStore opens the store a Profile ID is read from; it is called
	// only when there is a Profile.
	OpenStore func() (*profiles.Store, error)
	Progress  func(what string)
}

// ReviewOptions checks and parses c, without loading its profile.
// Refused options are *opterr.Error.
func (c CommandOptions) ReviewOptions() (ReviewOptions, error) {
	ro := ReviewOptions{
		Options:     Options{Dir: c.Dir, Packages: c.Packages, GCFlags: strings.Fields(c.GCFlags), AllFiles: c.AllFiles},
		Filter:      Filter{File: c.File},
		Base:        c.Base,
		ProfileName: c.Profile,
		Progress:    c.Progress,
	}
	for _, k := range c.Kinds {
		kind, err := ParseKind(strings.TrimSpace(k))
		if err != nil {
			return ro, opterr.Errorf("Kinds", "Kinds: %v", err)
		}
		ro.Filter.Kinds = append(ro.Filter.Kinds, kind)
	}
	if c.Func != "" {
		re, err := regexp.Compile(c.Func)
		if err != nil {
			return ro, opterr.Errorf("Func", "Func: %v", err)
		}
		ro.Filter.Func = re
	}
	for _, fl := range ro.GCFlags {
		if !strings.HasPrefix(fl, "-") {
			return ro, opterr.Errorf("GCFlags", "GCFlags %q: give compiler flags (like -l) without a package pattern; they apply to the analysed packages", c.GCFlags)
		}
	}
	return ro, nil
}

// Run checks c, loads its profile (first: a bad profile fails before a
// long compile) and reviews the packages.
func (c CommandOptions) Run(ctx context.Context) (*Reviewed, error) {
	ro, err := c.ReviewOptions()
	if err != nil {
		return nil, err
	}
	if c.Profile != "" {
		store, err := c.OpenStore()
		if err != nil {
			return nil, err
		}
		prof, err := profiles.LoadRef(ctx, c.Profile, profiles.RefOptions{Store: store, Fetch: profiles.FetchOptions{Type: profiles.TypeAllocs}})
		if err != nil {
			return nil, fmt.Errorf("pricing profile: %w", err)
		}
		if ro.Profile, err = prof.Profile(); err != nil {
			return nil, fmt.Errorf("pricing profile: %w", err)
		}
	}
	return Review(ctx, ro)
}
