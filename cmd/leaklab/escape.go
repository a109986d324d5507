package main

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/leaklab/leaklab/internal/bytesize"
	"github.com/leaklab/leaklab/profiles"
	"github.com/leaklab/leaklab/profiles/escape"
	"github.com/spf13/cobra"
)

type escapeOptions struct {
	gcflags  string
	profile  string
	base     string
	kinds    []string
	funcRe   string
	file     string
	allFiles bool
	dir      string
}

// escapeReport is the JSON contract: findings always; pricing with
// --profile; base, introduced and removed with --base, and base_failures
// when a package did not build at the base (its findings are then not
// compared); failures when a package did not build.
type escapeReport struct {
	Findings     []escape.Finding   `json:"findings"`
	Pricing      *escape.Pricing    `json:"pricing,omitempty"`
	Base         string             `json:"base,omitempty"`
	Introduced   []escape.Finding   `json:"introduced,omitempty"`
	Removed      []escape.Finding   `json:"removed,omitempty"`
	BaseFailures []escape.Failure   `json:"base_failures,omitempty"`
	Failures     []escape.Failure   `json:"failures,omitempty"`
	comparison   *escape.Comparison // nil without --base
	profileRef   string
}

func newCmdEscape(f *factory) *cobra.Command {
	opts := &escapeOptions{}
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
	fl.StringVar(&opts.gcflags, "gcflags", "", "extra compiler flags for the analysed packages (e.g. -l to turn off inlining)")
	fl.StringVar(&opts.profile, "profile", "", "heap or allocs profile to price the escapes with: a file, stored profile ID or URL")
	fl.StringVar(&opts.base, "base", "", "git revision to compare with; exit 3 if heap escapes were introduced")
	fl.StringSliceVar(&opts.kinds, "kind", nil, "only these kinds: moved-to-heap, escapes, leaking-param, does-not-escape (comma-separated)")
	fl.StringVar(&opts.funcRe, "func", "", "only findings in functions matching this regular expression")
	fl.StringVar(&opts.file, "file", "", "only findings in this file (absolute, from the current or the analysed directory, or its trailing elements such as server.go)")
	fl.BoolVar(&opts.allFiles, "all-files", false, "keep findings in files outside the analysed module (standard library, dependencies)")
	fl.StringVarP(&opts.dir, "dir", "C", "", "run in this directory instead of the current one")
	return cmd
}

func escapeRun(ctx context.Context, f *factory, opts *escapeOptions, args []string) error {
	var filter escape.Filter
	for _, k := range opts.kinds {
		kind, err := escape.ParseKind(strings.TrimSpace(k))
		if err != nil {
			return usageErrorf("--kind: %v", err)
		}
		filter.Kinds = append(filter.Kinds, kind)
	}
	if opts.funcRe != "" {
		re, err := regexp.Compile(opts.funcRe)
		if err != nil {
			return usageErrorf("--func: %v", err)
		}
		filter.Func = re
	}
	filter.File = opts.file
	ao := escape.Options{Dir: opts.dir, Packages: args, GCFlags: strings.Fields(opts.gcflags), AllFiles: opts.allFiles}
	for _, fl := range ao.GCFlags {
		if !strings.HasPrefix(fl, "-") {
			return usageErrorf("--gcflags %q: give compiler flags (like -l) without a package pattern; they apply to the analysed packages", opts.gcflags)
		}
	}

	// Load the profile first: a bad --profile should fail before a long compile.
	var prof *profiles.Captured
	if opts.profile != "" {
		store, err := openStore()
		if err != nil {
			return err
		}
		prof, err = profiles.LoadRef(ctx, opts.profile, profiles.RefOptions{Store: store, Fetch: profiles.FetchOptions{Type: "allocs"}})
		if err != nil {
			return fmt.Errorf("--profile: %w", err)
		}
	}

	progress(f, "compiling %s with escape analysis…", strings.Join(orDefaultSlice(args, escape.DefaultPackages), " "))
	report, err := escape.Analyze(ctx, ao)
	if err != nil {
		return err
	}
	// --file may name the file from the current directory or absolutely,
	// while findings name it from the analysed directory.
	filter.Dir = report.Dir
	out := &escapeReport{Findings: filter.Apply(report.Findings), Failures: report.Failures, profileRef: opts.profile}
	if prof != nil {
		p, err := prof.Profile()
		if err != nil {
			return fmt.Errorf("--profile: %w", err)
		}
		priced := &escape.Report{Dir: report.Dir, Findings: out.Findings}
		out.Pricing, err = escape.Price(priced, p)
		if err != nil {
			return fmt.Errorf("--profile %s: %w", opts.profile, err)
		}
	}
	if opts.base != "" {
		progress(f, "compiling %s at %s…", strings.Join(orDefaultSlice(args, escape.DefaultPackages), " "), opts.base)
		baseReport, err := escape.AnalyzeRevision(ctx, ao, opts.base)
		if err != nil {
			return err
		}
		// A package that did not build at the base has no findings there,
		// so its current ones are not compared rather than all introduced.
		head := escape.WithoutPackages(out.Findings, baseReport.Failures)
		out.comparison = escape.Compare(filter.Apply(baseReport.Findings), head)
		out.comparison.Base = opts.base
		out.Base, out.Introduced, out.Removed = opts.base, out.comparison.Introduced, out.comparison.Removed
		out.BaseFailures = baseReport.Failures
	}
	if err := f.render(out, out.writeText); err != nil {
		return err
	}
	if n := len(out.BaseFailures); n > 0 {
		whose := "their"
		if n == 1 {
			whose = "its"
		}
		fmt.Fprintf(f.streams.ErrOut, "leaklab: warning: %s, so %s escapes were not compared\n", baseFailuresLine(out.BaseFailures, opts.base), whose)
	}
	if n := len(report.Failures); n > 0 {
		first := report.Failures[0]
		msg := firstLine(first.Output)
		if n == 1 {
			return fmt.Errorf("%s did not build: %s", first.Package, msg)
		}
		return fmt.Errorf("%d packages did not build (first: %s: %s)", n, first.Package, msg)
	}
	if out.comparison != nil {
		if n := out.comparison.NewHeapEscapes(); n > 0 {
			return &foundError{what: fmt.Sprintf("%d new heap escapes since %s", n, opts.base)}
		}
	}
	return nil
}

// baseFailuresLine says which packages did not build at base, naming a
// few: "example.com/m/b did not build at main", "5 packages did not build
// at main (a, b, c and 2 more)".
func baseFailuresLine(failures []escape.Failure, base string) string {
	if len(failures) == 1 {
		return fmt.Sprintf("%s did not build at %s", failures[0].Package, base)
	}
	const named = 3
	var names []string
	for i, fl := range failures {
		if i == named {
			break
		}
		names = append(names, fl.Package)
	}
	list := strings.Join(names, ", ")
	if len(failures) > named {
		list += fmt.Sprintf(" and %d more", len(failures)-named)
	}
	return fmt.Sprintf("%d packages did not build at %s (%s)", len(failures), base, list)
}

func progress(f *factory, format string, args ...any) {
	if f.streams.ErrIsTerminal {
		fmt.Fprintf(f.streams.ErrOut, format+"\n", args...)
	}
}

func orDefaultSlice(s []string, def string) []string {
	if len(s) == 0 {
		return []string{def}
	}
	return s
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// writeText reads like a review: findings grouped by file and function,
// each with the compiler's words, the flow that explains it and, when one
// applies, what usually fixes it.
func (r *escapeReport) writeText(w io.Writer) error {
	if r.Pricing != nil {
		writePricing(w, r.Pricing, r.profileRef)
	}
	if r.comparison != nil {
		writeComparison(w, r.comparison)
	} else {
		writeFindings(w, r.Findings)
	}
	if len(r.BaseFailures) > 0 {
		writeFailures(w, fmt.Sprintf("did not build at %s, so not compared:", r.Base), r.BaseFailures)
	}
	if len(r.Failures) > 0 {
		writeFailures(w, "did not build:", r.Failures)
	}
	return nil
}

func writeFailures(w io.Writer, title string, failures []escape.Failure) {
	fmt.Fprintf(w, "\n%s\n", title)
	for _, fl := range failures {
		fmt.Fprintf(w, "  %s\n", fl.Package)
		for _, line := range strings.Split(strings.TrimSpace(fl.Output), "\n") {
			fmt.Fprintf(w, "    %s\n", line)
		}
	}
}

func writeFindings(w io.Writer, fs []escape.Finding) {
	if len(fs) == 0 {
		fmt.Fprintln(w, "No findings.")
		return
	}
	counts := map[escape.Kind]int{}
	funcs := 0
	for i, x := range fs {
		counts[x.Kind]++
		if i == 0 || x.File != fs[i-1].File {
			fmt.Fprintf(w, "%s\n", x.File)
		}
		if i == 0 || x.File != fs[i-1].File || x.Function != fs[i-1].Function {
			fmt.Fprintf(w, "  %s\n", x.Function)
			funcs++
		}
		writeFinding(w, x, "    ")
	}
	fmt.Fprintf(w, "\n%d findings in %d functions: %d moved to heap, %d escape, %d leaking params, %d do not escape.\n",
		len(fs), funcs, counts[escape.KindMovedToHeap], counts[escape.KindEscapes], counts[escape.KindLeakingParam], counts[escape.KindDoesNotEscape])
}

func writeFinding(w io.Writer, x escape.Finding, indent string) {
	fmt.Fprintf(w, "%s%d:%d  %s", indent, x.Line, x.Column, x.Message)
	if x.Cost != nil {
		fmt.Fprintf(w, "  [%s, %d objects", bytesize.Format(x.Cost.AllocBytes), x.Cost.AllocObjects)
		if x.Cost.SharedWith > 0 {
			fmt.Fprintf(w, ", line shared with %d more", x.Cost.SharedWith)
		}
		fmt.Fprint(w, "]")
	}
	fmt.Fprintln(w)
	pad := indent + strings.Repeat(" ", len(fmt.Sprintf("%d:%d  ", x.Line, x.Column)))
	if x.InlinedFrom != nil {
		fmt.Fprintf(w, "%sinlined from %s\n", pad, x.InlinedFrom)
	}
	for _, fl := range x.Flow {
		fmt.Fprintf(w, "%sflow: %s\n", pad, fl)
	}
	if x.Hint != "" {
		fmt.Fprintf(w, "%s→ %s\n", pad, x.Hint)
	}
}

func writePricing(w io.Writer, p *escape.Pricing, ref string) {
	share := 0.0
	if p.TotalBytes > 0 {
		share = 100 * float64(p.MatchedBytes) / float64(p.TotalBytes)
	}
	fmt.Fprintf(w, "Priced with %s: %s allocated in all, %.0f%% of it at the lines below.\n", ref, bytesize.Format(p.TotalBytes), share)
	if len(p.Ranked) == 0 {
		fmt.Fprintln(w, "  (the profile saw none of these findings allocate)")
	}
	for i, x := range p.Ranked {
		fmt.Fprintf(w, "%3d. %10s %10d objects  %s:%d  %s  %s\n", i+1, bytesize.Format(x.Cost.AllocBytes), x.Cost.AllocObjects, x.File, x.Line, x.Function, x.Message)
	}
	fmt.Fprintln(w)
}

func writeComparison(w io.Writer, c *escape.Comparison) {
	fmt.Fprintf(w, "Compared with %s: %d introduced (%d heap escapes), %d removed.\n", c.Base, len(c.Introduced), c.NewHeapEscapes(), len(c.Removed))
	for _, part := range []struct {
		title string
		fs    []escape.Finding
	}{{"introduced", c.Introduced}, {"removed", c.Removed}} {
		if len(part.fs) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s:\n", part.title)
		for _, x := range part.fs {
			fmt.Fprintf(w, "  %s  %s\n", x.File, x.Function)
			writeFinding(w, x, "    ")
		}
	}
}
