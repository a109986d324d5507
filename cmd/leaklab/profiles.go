package main

import (
	"io"
	"time"

	"github.com/leaklab/leaklab/profiles"
	"github.com/spf13/cobra"
)

// registerFilter adds the selection flags ls and prune share.
func registerFilter(cmd *cobra.Command, fs *profiles.FilterSpec) {
	fl := cmd.Flags()
	fl.StringVar(&fs.Target, "target", "", "only profiles of this target (a service as capture takes it, e.g. 127.0.0.1:8080, or push://APP for pushed profiles)")
	fl.StringVar(&fs.Type, "type", "", "only profiles of this type (heap, goroutine, …)")
	fl.StringVar(&fs.Service, "service", "", "only profiles of this service name")
	fl.StringVar(&fs.Since, "since", "", "only profiles captured at or after this time (RFC 3339, or a duration ago like 2h or 7d)")
	fl.StringVar(&fs.Until, "until", "", "only profiles captured before this time (RFC 3339, or a duration ago)")
	fl.StringArrayVar(&fs.Labels, "label", nil, "only profiles with this label, KEY=VALUE (repeatable: all must match; KEY= matches profiles without KEY)")
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
	fs := &profiles.FilterSpec{}
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List stored profiles, oldest first",
		Example: `  leaklab profiles ls
  leaklab profiles ls --target http://127.0.0.1:8080 --type goroutine
  leaklab profiles ls --since 2h --output json
  leaklab profiles ls --label env=staging --label job=shop`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			filter, err := fs.Filter(time.Now())
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
	registerFilter(cmd, fs)
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
	spec := &profiles.PruneSpec{}
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
			opts, err := spec.Options(time.Now())
			if err != nil {
				return err
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
			return f.render(entries, func(w io.Writer) error { return entries.WritePruned(w, spec.DryRun) })
		},
	}
	registerFilter(cmd, &spec.FilterSpec)
	cmd.Flags().StringVar(&spec.OlderThan, "older-than", "", "remove profiles captured longer ago than this (90m, 12h, 7d)")
	cmd.Flags().IntVar(&spec.Keep, "keep", 0, "always keep the newest N matching profiles")
	cmd.Flags().BoolVar(&spec.All, "all", false, "remove every matching profile, whatever its age")
	cmd.Flags().BoolVar(&spec.DryRun, "dry-run", false, "list what would be removed, remove nothing")
	return cmd
}
