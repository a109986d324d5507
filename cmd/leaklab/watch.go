package main

import (
	"fmt"
	"io"
	"time"

	"github.com/leaklab/leaklab/internal/atomicfile"
	"github.com/leaklab/leaklab/internal/bytesize"
	"github.com/leaklab/leaklab/profiles/retainers"
	"github.com/leaklab/leaklab/profiles/watch"
	"github.com/spf13/cobra"
)

// watchOptions binds the flags to watch.CommandOptions; --for (a
// duration or auto), --html and --no-store are the command's own.
type watchOptions struct {
	watch.CommandOptions
	dur     forDuration
	html    string
	noStore bool
}

func newCmdWatch(f *factory) *cobra.Command {
	opts := &watchOptions{}
	cmd := &cobra.Command{
		Use:   "watch URL",
		Short: "Watch a live service and name the function that leaks",
		Long: `Capture heap (after a GC) and goroutine profiles from a live service every
--every for --for, keep them in the profile store, and report the allocation
sites and goroutine groups that keep growing: the suspects.

A trend must be statistically significant over the whole watch (Mann–Kendall),
still present in its second half (a cache that fills and levels off is not a
leak), large enough to matter, and must move the level beyond the noise.
Goroutines the runtime's goroutineleak profile reports are proven leaks.

At its first snapshot and its last, watch also takes a goroutine dump
(debug=2) while the target has at most --max-dump-goroutines goroutines: the
goroutine IDs show which goroutines arrived and which left, which tells a
leak from long-lived goroutines whose count happened to wander up. A dump
pauses the target while it is written (about 30 ms at 5,000 goroutines, 80
ms at 10,000); --no-goroutine-ids judges by counts alone.

Exit status: 3 when there is a suspect, 0 when there is none, 1 on error.`,
		Example: `  leaklab watch http://127.0.0.1:8080
  leaklab watch 127.0.0.1:8080 --for 30s --every 2s --html report.html
  leaklab watch http://127.0.0.1:8080 --output json | jq '.suspects[].function'
  leaklab watch http://127.0.0.1:8080 --own github.com/acme/orders
  # a slow leak: keep watching (up to --max-for) until growth is decided
  leaklab watch http://127.0.0.1:8080 --for auto
  # judge history already in the store (from watch, capture or collect)
  leaklab watch http://127.0.0.1:8080 --from-store --since 1h
  # a latency-sensitive service: no goroutine dumps (no pause), counts alone
  leaklab watch http://127.0.0.1:8080 --no-goroutine-ids
  # a service on this machine: which reference chain keeps each heap leak alive
  leaklab watch http://127.0.0.1:8080 --retainers`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("watch takes one URL, e.g. http://127.0.0.1:8080")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return watchRun(cmd, f, opts, args[0])
		},
	}
	fl := cmd.Flags()
	opts.dur.d = watch.DefaultFor
	fl.Var(&opts.dur, "for", "how long to watch, or auto: at least a minute, longer while something grows undecided, at most --max-for")
	fl.DurationVar(&opts.MaxFor, "max-for", watch.DefaultMaxFor, "with --for auto: the longest to watch")
	fl.DurationVar(&opts.Every, "every", watch.DefaultEvery, "time between snapshots")
	fl.StringVar(&opts.html, "html", "", "also write a self-contained HTML report with a trend chart per suspect")
	fl.BoolVar(&opts.noStore, "no-store", false, "do not keep the snapshots in the profile store")
	fl.StringSliceVar(&opts.Own, "own", nil, "module path(s) of the service's own code (default: from its go_build_info metric)")
	fl.StringVar(&opts.MinHeapGrowth, "min-heap-growth", bytesize.Format(watch.DefaultMinHeapGrowth), "smallest heap growth per minute to report")
	fl.BoolVar(&opts.FromStore, "from-store", false, "analyse the target's profiles already in the store instead of capturing")
	fl.DurationVar(&opts.Since, "since", 0, "with --from-store: only profiles captured within this long ago (e.g. 1h)")
	fl.DurationVar(&opts.Until, "until", 0, "with --from-store: only profiles captured more than this long ago")
	fl.BoolVar(&opts.NoGoroutineIDs, "no-goroutine-ids", false, "do not take goroutine dumps (IDs); judge goroutines by their counts alone")
	fl.IntVar(&opts.MaxDumpGoroutines, "max-dump-goroutines", watch.DefaultMaxDumpGoroutines, "take goroutine dumps only while the target has at most this many goroutines")
	fl.BoolVar(&opts.Retainers, "retainers", false, "for a service on this machine: at the first and the last heap snapshot, stop it to walk its heap (as 'leaklab retainers' does) and name the reference chain that grew with each heap suspect")
	fl.DurationVar(&opts.RetainersMaxPause, "retainers-max-pause", retainers.DefaultMaxPause, "with --retainers: skip the snapshots when the estimated pause is longer (0: no limit)")
	fl.Float64Var(&opts.MinGoroutineGrowth, "min-goroutine-growth", watch.DefaultMinGoroutineGrowth, "smallest goroutine growth per minute to report")
	return cmd
}

func watchRun(cmd *cobra.Command, f *factory, opts *watchOptions, target string) error {
	c := opts.CommandOptions
	c.Target, c.For, c.Auto = target, opts.dur.d, opts.dur.auto
	if !opts.noStore {
		c.OpenStore = f.openStore
	}
	var lastProgress watch.Progress
	if f.streams.ErrIsTerminal {
		c.Progress = func(p watch.Progress) {
			status := "ok"
			if p.Err != nil {
				status = "failed: " + p.Err.Error()
			}
			fmt.Fprintf(f.streams.ErrOut, "\r\033[Ksnapshot %d/%d at %s: %s", p.Snapshot, p.Total, p.Elapsed.Round(time.Second), status)
			if p.Undecided > 0 {
				fmt.Fprintf(f.streams.ErrOut, "; %d growing, undecided: watching on", p.Undecided)
			}
			if p.Snapshot == p.Total {
				fmt.Fprintln(f.streams.ErrOut)
			}
			lastProgress = p
		}
	}
	defer func() { // an auto watch ends when it has decided, before its last snapshot
		if lastProgress.Snapshot > 0 && lastProgress.Snapshot != lastProgress.Total {
			fmt.Fprintln(f.streams.ErrOut)
		}
	}()
	rep, err := c.Run(cmd.Context())
	if err != nil {
		return err
	}
	if opts.html != "" {
		if err := atomicfile.Write(opts.html, func(w io.Writer) error { return watch.WriteHTML(w, rep) }); err != nil {
			return fmt.Errorf("writing %s: %w", opts.html, err)
		}
	}
	if err := f.render(watch.WithNextCommands(rep), func(w io.Writer) error { return watch.WriteText(w, rep) }); err != nil {
		return err
	}
	if len(rep.Suspects) > 0 {
		return &foundError{what: fmt.Sprintf("%d suspect(s)", len(rep.Suspects))}
	}
	if rep.Incomplete != "" {
		return fmt.Errorf("the watch ended early (%s)", rep.Incomplete)
	}
	return nil
}

// forDuration is --for: a duration, or auto (at least the default
// duration, longer while growth is undecided).
type forDuration struct {
	d    time.Duration
	auto bool
}

func (f *forDuration) String() string {
	if f.auto {
		return "auto"
	}
	return f.d.String()
}

func (f *forDuration) Set(s string) error {
	if s == "auto" {
		f.d, f.auto = watch.DefaultFor, true
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as 1m or 30s, or auto")
	}
	f.d, f.auto = d, false
	return nil
}

func (f *forDuration) Type() string { return "duration|auto" }
