package main

import (
	"fmt"

	"github.com/leaklab/leaklab/profiles/retainers"
	"github.com/spf13/cobra"
)

// retainersOptions are retainers' flags: the scan as the retainers
// package takes it from a command, plus --no-store.
type retainersOptions struct {
	retainers.CommandOptions
	noStore bool
}

func newCmdRetainers(f *factory) *cobra.Command {
	opts := &retainersOptions{}
	cmd := &cobra.Command{
		Use:   "retainers PID|URL",
		Short: "Show which reference chains keep a live Go process's heap alive",
		Long: `Attach to a Go process on this machine (ptrace), stop it, walk its heap from
the roots (global variables, every goroutine's stack frames, the data and bss
sections, finalizers and cleanups) following the types in the binary's DWARF,
then resume and detach.
Each reachable heap object is counted once, on the shortest chain of
references from a root, and the chains are reported largest first.

The target is a PID, or the loopback URL of a service on this machine (the
process listening on that port). It must be a Go 1.26 or 1.27 program with
DWARF (not built with -ldflags=-s -w), and leaklab must be allowed to ptrace
it (root, or the same user with kernel.yama.ptrace_scope=0).

The target is stopped for the whole scan. Before attaching, the pause is
estimated from the process's resident memory and the scan is refused when
the estimate is over --max-pause (--max-pause 0: no limit). The target is
resumed and detached on every path, also when leaklab is killed.

The result is saved in the profile store as a profile of type retainers: its
"stacks" are the chains (stored leaf first as pprof wants, so pprof shows
them root first), so 'leaklab diff' of two snapshots shows which chain grew.`,
		Example: `  leaklab retainers 12345
  leaklab retainers http://127.0.0.1:8080 --top 5
  leaklab retainers http://127.0.0.1:8080 --output json
  # compare two snapshots: which chain grew?
  leaklab retainers http://127.0.0.1:8080; sleep 60; leaklab retainers http://127.0.0.1:8080
  leaklab profiles ls --type retainers
  leaklab diff ID1 ID2 --by stack`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Target = args[0]
			return retainersRun(cmd, f, opts)
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&opts.MaxPause, "max-pause", retainers.DefaultMaxPause, "refuse when the estimated pause of the target is longer (0: no limit)")
	fl.IntVar(&opts.Top, "top", 10, "chains to show (0: all)")
	fl.IntVar(&opts.MaxDepth, "max-depth", retainers.DefaultMaxDepth, "longest chain kept; deeper objects count on its last hop")
	fl.BoolVar(&opts.noStore, "no-store", false, "do not save the snapshot in the profile store")
	fl.StringVar(&opts.Out, "out", "", "also write the pprof profile to this file")
	fl.DurationVar(&opts.Hold, "hold", 0, "keep the target stopped this long before scanning (for testing the resume guarantees)")
	_ = fl.MarkHidden("hold")
	return cmd
}

func retainersRun(cmd *cobra.Command, f *factory, opts *retainersOptions) error {
	ro := opts.CommandOptions
	if !opts.noStore {
		ro.OpenStore = f.openStore
	}
	ro.Progress = func(msg string) { fmt.Fprintln(f.streams.ErrOut, msg) }
	out, err := ro.Run(cmd.Context())
	if err != nil {
		return err
	}
	return f.render(out, out.WriteText)
}
