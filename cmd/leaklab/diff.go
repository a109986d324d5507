package main

import (
	"fmt"

	"github.com/leaklab/leaklab/profiles"
	"github.com/spf13/cobra"
)

// diffOptions are diff's flags: the diff as package profiles takes it
// from a command, plus --http.
type diffOptions struct {
	base, current string
	profiles.DiffCommandOptions
	httpAddr string
}

func newCmdDiff(f *factory) *cobra.Command {
	opts := &diffOptions{}
	cmd := &cobra.Command{
		Use:   "diff BASE CURRENT",
		Short: "Show what grew between two profiles",
		Long: `Compare two profiles of the same kind and show what grew, largest growth
first. Each side is a store ID (or unique prefix), a profile file, a URL
captured on the fly (for a URL side, --type defaults to the other side's type,
else heap), or TARGET@AGO: the stored profile of that target (from capture,
watch or collect) taken closest to AGO before now, such as
http://127.0.0.1:8080@1h, or push://APP@30m for pushed profiles.

By function (the default) a row's base, current and delta are the function's
own (flat) values, as in pprof's flat column; cumulative values are shown too.
Goroutine profiles are also grouped by leak site: the first frame of the
target's own code below the runtime's blocking frames, with the wait state.
Own code is what --own names (module paths); else, when a side is a URL,
the module its go_build_info metric reports; else everything outside the
standard library and well-known libraries (so a goroutine parked in a
connection pool is named after your function that asked the pool).

-o writes a profile that 'go tool pprof' reads with the same meaning as its
-diff_base (the base scaled by -1 and tagged pprof::base=true, merged);
--http serves pprof's web UI (graph, flame graph, source) on the diff,
on loopback unless ADDR names another host.`,
		Example: `  # two stored captures a minute apart
  leaklab diff 20261125-103000-heap-3fa9c1 20261125-103100-heap-77b2e0
  # a stored base against the service right now
  leaklab diff 20261125-1030 http://127.0.0.1:8080 --top 5
  # the service's heap an hour ago (collected history) against now
  leaklab diff http://127.0.0.1:8080@1h http://127.0.0.1:8080
  # goroutines ten minutes ago against the newest stored ones
  leaklab diff 127.0.0.1:8080/debug/pprof/goroutine@10m 127.0.0.1:8080/debug/pprof/goroutine@0s
  # goroutines, by stack, as JSON
  leaklab diff before.pb.gz after.pb.gz --by stack --output json
  # allocation counts in one package, written for go tool pprof
  leaklab diff a.pb.gz b.pb.gz --sample-index alloc_objects --focus 'myapp/' -o diff.pb.gz
  go tool pprof -top diff.pb.gz
  # pprof's web UI on the diff
  leaklab diff a.pb.gz b.pb.gz --http :8081
  # name goroutine leak sites after your module's frames
  leaklab diff before.pb.gz after.pb.gz --own github.com/acme/orders`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.base, opts.current = args[0], args[1]
			return diffRun(cmd, f, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.SampleIndex, "sample-index", "", "sample type to compare: inuse_space (heap default), alloc_space, inuse_objects, alloc_objects, … or its index")
	fl.StringVar(&opts.By, "by", profiles.ByFunction, "group by function, line or stack")
	fl.IntVar(&opts.Top, "top", profiles.DefaultTop, "show the first N rows (0 for all)")
	fl.StringVar(&opts.Focus, "focus", "", "keep only samples with a frame matching this regexp (function or file)")
	fl.StringVar(&opts.Ignore, "ignore", "", "drop samples with a frame matching this regexp")
	fl.StringVarP(&opts.Out, "out", "o", "", "write the diff as a profile for go tool pprof (diff.pb.gz)")
	fl.StringVar(&opts.httpAddr, "http", "", "serve pprof's web UI on the diff at ADDR (:8081 means loopback)")
	fl.StringVar(&opts.Fetch.Type, "type", "", "profile type to capture for a URL side (default: the other side's, else heap)")
	fl.IntVar(&opts.Fetch.Seconds, "seconds", 0, "for a URL side: cpu duration or delta seconds, as in capture")
	fl.DurationVar(&opts.Fetch.Timeout, "timeout", 0, "for a URL side: give up after this long (default --seconds + 30s)")
	fl.StringSliceVar(&opts.OwnModules, "own", nil, "module path(s) of the target's own code, where leak sites are named (default: a URL side's go_build_info, else all but the standard and well-known libraries)")
	return cmd
}

func diffRun(cmd *cobra.Command, f *factory, opts *diffOptions) error {
	do := opts.DiffCommandOptions
	do.OpenStore, do.WantProfile = f.openStore, opts.httpAddr != ""
	rep, dp, err := do.Run(cmd.Context(), opts.base, opts.current)
	if err != nil {
		return err
	}
	if do.Out != "" {
		fmt.Fprintf(f.streams.ErrOut, "wrote %s (open it with: go tool pprof %s)\n", do.Out, do.Out)
	}
	if err := f.render(rep, rep.WriteText); err != nil {
		return err
	}
	if opts.httpAddr == "" {
		return nil
	}
	return profiles.ServeWeb(cmd.Context(), dp, profiles.WebOptions{
		Addr: opts.httpAddr,
		Log:  f.streams.ErrOut,
		Ready: func(url string) {
			fmt.Fprintf(f.streams.ErrOut, "pprof web UI on the diff at %s (Ctrl-C stops it)\n", url)
		},
	})
}
