package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/leaklab/leaklab/internal/bytesize"
	"github.com/leaklab/leaklab/profiles"
	"github.com/leaklab/leaklab/profiles/retainers"
	"github.com/spf13/cobra"
)

type retainersOptions struct {
	target   string
	maxPause time.Duration
	top      int
	maxDepth int
	noStore  bool
	out      string
	hold     time.Duration
}

func newCmdRetainers(f *factory) *cobra.Command {
	opts := &retainersOptions{}
	cmd := &cobra.Command{
		Use:   "retainers PID|URL",
		Short: "Show which reference chains keep a live Go process's heap alive",
		Long: `Attach to a Go process on this machine (ptrace), stop it, walk its heap from
the roots (global variables, every goroutine's stack frames, the data and bss
sections) following the types in the binary's DWARF, then resume and detach.
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
			opts.target = args[0]
			return retainersRun(cmd, f, opts)
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&opts.maxPause, "max-pause", retainers.DefaultMaxPause, "refuse when the estimated pause of the target is longer (0: no limit)")
	fl.IntVar(&opts.top, "top", 10, "chains to show (0: all)")
	fl.IntVar(&opts.maxDepth, "max-depth", retainers.DefaultMaxDepth, "longest chain kept; deeper objects count on its last hop")
	fl.BoolVar(&opts.noStore, "no-store", false, "do not save the snapshot in the profile store")
	fl.StringVar(&opts.out, "out", "", "also write the pprof profile to this file")
	fl.DurationVar(&opts.hold, "hold", 0, "keep the target stopped this long before scanning (for testing the resume guarantees)")
	_ = fl.MarkHidden("hold")
	return cmd
}

// retainersReport is the JSON report: the package's report plus where the
// snapshot was saved.
type retainersReport struct {
	*retainers.Report
	ID   string `json:"id,omitempty"`
	File string `json:"file,omitempty"`
	// TotalChains counts the chains before --top.
	TotalChains int `json:"total_chains"`
}

func retainersRun(cmd *cobra.Command, f *factory, opts *retainersOptions) error {
	if opts.maxPause < 0 || opts.top < 0 || opts.maxDepth < 1 {
		return usageErrorf("--max-pause and --top must not be negative, --max-depth at least 1")
	}
	pid, err := strconv.Atoi(opts.target)
	stored := "pid:" + opts.target
	if err != nil {
		if !strings.Contains(opts.target, "://") {
			return usageErrorf("%q is neither a PID nor a URL like http://127.0.0.1:8080", opts.target)
		}
		if pid, err = retainers.PIDForURL(opts.target); err != nil {
			return err
		}
		stored = opts.target
	} else if pid <= 0 {
		return usageErrorf("PID must be positive, not %d", pid)
	}
	var st *profiles.Store
	if !opts.noStore {
		if st, err = f.openStore(); err != nil {
			return err
		}
	}
	rep, err := retainers.Scan(cmd.Context(), pid, retainers.Options{
		MaxPause:     opts.maxPause,
		MaxDepth:     opts.maxDepth,
		HoldAttached: opts.hold,
		Progress:     func(msg string) { fmt.Fprintln(f.streams.ErrOut, msg) },
	})
	if err != nil {
		return err
	}
	out := retainersReport{Report: rep}
	c := rep.Captured(stored)
	if opts.out != "" {
		if err := profiles.WriteFile(opts.out, c); err != nil {
			return fmt.Errorf("cannot write %s: %w", opts.out, err)
		}
		out.File = opts.out
	}
	if st != nil {
		meta, err := st.Save(c)
		if err != nil {
			return err
		}
		out.ID = meta.ID
	}
	out.TotalChains = len(rep.Chains)
	if opts.top > 0 && len(out.Chains) > opts.top {
		cp := *rep
		cp.Chains = cp.Chains[:opts.top]
		out.Report = &cp
	}
	return f.render(out, func(w io.Writer) error { return writeRetainers(w, out) })
}

func writeRetainers(w io.Writer, r retainersReport) error {
	share := 0.0
	if r.HeapBytes > 0 {
		share = 100 * float64(r.BytesAttributed) / float64(r.HeapBytes)
	}
	fmt.Fprintf(w, "PID %d (%s, %s): paused %.2fs; %s of %s allocated heap reachable (%.0f%%) from %d roots in %d goroutines\n",
		r.PID, r.Command, r.GoVersion, r.PauseSeconds, bytesize.Format(r.BytesAttributed), bytesize.Format(int64(r.HeapBytes)), share, r.Roots, r.Goroutines)
	if r.ID != "" {
		fmt.Fprintf(w, "saved as %s\n", r.ID)
	}
	for i, c := range r.Chains {
		fmt.Fprintf(w, "\n#%d  %s in %d objects\n", i+1, bytesize.Format(c.Bytes), c.Objects)
		for j, hop := range c.Chain {
			switch {
			case len(c.Chain) == 1:
				fmt.Fprintf(w, "──→ %s\n", hop)
			case j == 0:
				fmt.Fprintf(w, "┬── %s\n", hop)
			case j == len(c.Chain)-1:
				fmt.Fprintf(w, "╰─→ %s\n", hop)
			default:
				fmt.Fprintf(w, "├── %s\n", hop)
			}
		}
	}
	if len(r.Chains) == 0 {
		fmt.Fprintln(w, "\nno heap object is reachable from a root")
	} else if len(r.Chains) < r.TotalChains {
		fmt.Fprintf(w, "\n(%d of %d chains; --top 0 shows all)\n", len(r.Chains), r.TotalChains)
	}
	return nil
}
