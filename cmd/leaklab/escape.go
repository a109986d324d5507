package main

import (
	"context"
	"fmt"

	"github.com/leaklab/leaklab/profiles/escape"
	"github.com/spf13/cobra"
)

func newCmdEscape(f *factory) *cobra.Command {
	opts := &escape.CommandOptions{}
	cmd := &cobra.Command{
		Use:   "escape [PACKAGES]",
		Short: "Explain which values escape to the heap, why, and what they cost",
		Long: `Run the Go compiler's escape analysis on packages (default ./...) and report
every decision: moved-to-heap, escapes, leaking-param and does-not-escape, with
the enclosing function, the compiler's message and the flow that explains why.

--profile joins the findings with a heap or allocs profile (a file, a stored
profile ID or a URL) by file and line, and ranks the escapes by the bytes and
objects they allocated. --base compares with another git revision, analysed in
a temporary worktree, and exits 3 when new heap escapes appeared, so it can
gate CI. A package that does not build is reported with the compiler's message
(exit 1) without hiding the findings of the others.

Findings in files outside the analysed module (standard-library generics
instantiated in your code, for instance) are left out unless --all-files.`,
		Example: `  # why does anything in the lesson package escape?
  leaklab escape ./leaks/escapes
  # only heap escapes in one function, with inlining off
  leaklab escape ./leaks/... --kind moved-to-heap,escapes --func 'summarize$' --gcflags=-l
  # rank the escapes by what they allocated in a live service
  leaklab escape ./leaks/... --profile http://127.0.0.1:8080/debug/pprof/allocs
  # fail CI when a change adds heap escapes
  leaklab escape ./... --base origin/main --kind moved-to-heap,escapes
  leaklab escape ./leaks/escapes --output json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return escapeRun(cmd.Context(), f, opts, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.GCFlags, "gcflags", "", "extra compiler flags for the analysed packages (e.g. -l to turn off inlining)")
	fl.StringVar(&opts.Profile, "profile", "", "heap or allocs profile to price the escapes with: a file, stored profile ID or URL")
	fl.StringVar(&opts.Base, "base", "", "git revision to compare with; exit 3 if heap escapes were introduced")
	fl.StringSliceVar(&opts.Kinds, "kind", nil, "only these kinds: moved-to-heap, escapes, leaking-param, does-not-escape (comma-separated)")
	fl.StringVar(&opts.Func, "func", "", "only findings in functions matching this regular expression")
	fl.StringVar(&opts.File, "file", "", "only findings in this file (absolute, from the current or the analysed directory, or its trailing elements such as server.go)")
	fl.BoolVar(&opts.AllFiles, "all-files", false, "keep findings in files outside the analysed module (standard library, dependencies)")
	fl.StringVarP(&opts.Dir, "dir", "C", "", "run in this directory instead of the current one")
	return cmd
}

func escapeRun(ctx context.Context, f *factory, opts *escape.CommandOptions, args []string) error {
	eo := *opts
	eo.Packages, eo.OpenStore = args, f.openStore
	if f.streams.ErrIsTerminal {
		eo.Progress = func(what string) { fmt.Fprintln(f.streams.ErrOut, what) }
	}
	rev, err := eo.Run(ctx)
	if err != nil {
		return err
	}
	if err := f.render(rev, rev.WriteText); err != nil {
		return err
	}
	if w := rev.BaseWarning(); w != "" {
		fmt.Fprintf(f.streams.ErrOut, "leaklab: warning: %s\n", w)
	}
	if err := rev.BuildError(); err != nil {
		return err
	}
	if n := rev.NewHeapEscapes(); n > 0 {
		return &foundError{what: fmt.Sprintf("%d new heap escapes since %s", n, opts.Base)}
	}
	return nil
}
