package main

import (
	"io"
	"strings"
	"time"

	"github.com/leaklab/leaklab/profiles"
	"github.com/spf13/cobra"
)

// filterFlags are the selection flags ls and prune share.
type filterFlags struct {
	target, typ, service string
	since, until         string
	labels               []string
}

func (ff *filterFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&ff.target, "target", "", "only profiles of this target (a service as capture takes it, e.g. 127.0.0.1:8080, or push://APP for pushed profiles)")
	fl.StringVar(&ff.typ, "type", "", "only profiles of this type (heap, goroutine, …)")
	fl.StringVar(&ff.service, "service", "", "only profiles of this service name")
	fl.StringVar(&ff.since, "since", "", "only profiles captured at or after this time (RFC 3339, or a duration ago like 2h or 7d)")
	fl.StringVar(&ff.until, "until", "", "only profiles captured before this time (RFC 3339, or a duration ago)")
	fl.StringArrayVar(&ff.labels, "label", nil, "only profiles with this label, KEY=VALUE (repeatable: all must match; KEY= matches profiles without KEY)")
}

func (ff *filterFlags) filter(now time.Time) (profiles.Filter, error) {
	f := profiles.Filter{Target: ff.target, Type: ff.typ, Service: ff.service}
	var err error
	if f.Labels, err = parseLabels(ff.labels); err != nil {
		return f, err
	}
	// parseLabels keeps the last of repeated keys; as a filter, two
	// values for one key can match nothing, which is surely a mistake.
	for _, kv := range ff.labels {
		if k, v, _ := strings.Cut(kv, "="); f.Labels[k] != v {
			return f, usageErrorf("--label %s is given twice (%q and %q): a profile has one value per label", k, v, f.Labels[k])
		}
	}
	if f.Since, err = parseTimeFlag("--since", ff.since, now); err != nil {
		return f, err
	}
	if f.Until, err = parseTimeFlag("--until", ff.until, now); err != nil {
		return f, err
	}
	return f, nil
}

// parseTimeFlag accepts RFC 3339 or a duration before now.
func parseTimeFlag(name, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := profiles.ParseDays(s); err == nil {
		return now.Add(-d), nil
	}
	return time.Time{}, usageErrorf("%s %q: want RFC 3339 (2026-11-25T10:00:00Z) or a duration ago (90m, 2h, 7d)", name, s)
}

func newCmdProfiles(f *factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "profiles",
		Short: "Browse and trim the local profile store",
		Long: `Browse and trim the local profile store that 'leaklab capture' fills.
The store is $LEAKLAB_HOME, else $XDG_DATA_HOME/leaklab, else
~/.local/share/leaklab. IDs may be shortened to any unique prefix.`,
		Example: `  leaklab profiles ls --type heap --since 1h
  leaklab profiles show 20261125-103000-heap-3fa9c1
  leaklab profiles rm 20261125-103000-heap-3fa9c1
  leaklab profiles prune --older-than 7d`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newCmdProfilesLs(f), newCmdProfilesShow(f), newCmdProfilesRm(f), newCmdProfilesPrune(f))
	return cmd
}

func newCmdProfilesLs(f *factory) *cobra.Command {
	ff := &filterFlags{}
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List stored profiles, oldest first",
		Example: `  leaklab profiles ls
  leaklab profiles ls --target http://127.0.0.1:8080 --type goroutine
  leaklab profiles ls --since 2h --output json
  leaklab profiles ls --label env=staging --label job=shop`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			filter, err := ff.filter(time.Now())
			if err != nil {
				return err
			}
			store, err := f.openStore()
			if err != nil {
				return err
			}
			metas, err := store.List(filter)
			if err != nil {
				return err
			}
			entries := profiles.ListingOf(metas)
			return f.render(entries, func(w io.Writer) error { return entries.WriteMatches(w, store.Dir()) })
		},
	}
	ff.register(cmd)
	return cmd
}

func newCmdProfilesShow(f *factory) *cobra.Command {
	var sampleIndex string
	var top int
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a stored profile's metadata and top functions",
		Example: `  leaklab profiles show 20261125-103000-heap-3fa9c1
  leaklab profiles show 20261125-1030 --sample-index alloc_space --top 5`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := f.openStore()
			if err != nil {
				return err
			}
			c, err := store.Load(args[0], profiles.Limits{})
			if err != nil {
				return err
			}
			shown, err := profiles.Show(c, profiles.DiffOptions{SampleIndex: sampleIndex, Top: top})
			if err != nil {
				return err
			}
			return f.render(shown, shown.WriteText)
		},
	}
	cmd.Flags().StringVar(&sampleIndex, "sample-index", "", "sample type to rank by (default: the profile's default)")
	cmd.Flags().IntVar(&top, "top", 10, "how many functions to show (0 for all)")
	return cmd
}

func newCmdProfilesRm(f *factory) *cobra.Command {
	return &cobra.Command{
		Use:     "rm ID...",
		Short:   "Remove stored profiles",
		Example: `  leaklab profiles rm 20261125-103000-heap-3fa9c1 20261125-1031`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := f.openStore()
			if err != nil {
				return err
			}
			removed, err := store.RemoveAll(args)
			if err != nil {
				return err
			}
			entries := profiles.ListingOf(removed)
			return f.render(entries, entries.WriteRemoved)
		},
	}
}

func newCmdProfilesPrune(f *factory) *cobra.Command {
	ff := &filterFlags{}
	var olderThan string
	var keep int
	var all, dryRun bool
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Remove old stored profiles",
		Long: `Remove stored profiles older than --older-than (or, with --all, every
matching profile), keeping the newest --keep of them, plus leftovers of
captures that were killed half-way.`,
		Example: `  leaklab profiles prune --older-than 7d
  leaklab profiles prune --older-than 1h --type cpu --dry-run
  leaklab profiles prune --all --target http://127.0.0.1:8080 --keep 3
  leaklab profiles prune --all --label env=test`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			now := time.Now()
			filter, err := ff.filter(now)
			if err != nil {
				return err
			}
			opts := profiles.PruneOptions{Filter: filter, Keep: keep, Now: now, DryRun: dryRun}
			switch {
			case olderThan != "":
				if opts.OlderThan, err = profiles.ParseDays(olderThan); err != nil || opts.OlderThan == 0 {
					return usageErrorf("--older-than %q: want a positive duration like 90m, 12h or 7d", olderThan)
				}
			case !all:
				return usageErrorf("say what to prune: --older-than DURATION, or --all (with filters)")
			}
			if keep < 0 {
				return usageErrorf("--keep must not be negative")
			}
			store, err := f.openStore()
			if err != nil {
				return err
			}
			removed, err := store.Prune(opts)
			if err != nil {
				return err
			}
			entries := profiles.ListingOf(removed)
			return f.render(entries, func(w io.Writer) error { return entries.WritePruned(w, dryRun) })
		},
	}
	ff.register(cmd)
	cmd.Flags().StringVar(&olderThan, "older-than", "", "remove profiles captured longer ago than this (90m, 12h, 7d)")
	cmd.Flags().IntVar(&keep, "keep", 0, "always keep the newest N matching profiles")
	cmd.Flags().BoolVar(&all, "all", false, "remove every matching profile, whatever its age")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list what would be removed, remove nothing")
	return cmd
}
