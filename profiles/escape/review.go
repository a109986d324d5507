package escape

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/pprof/profile"
)

// ReviewOptions configure Review: what to analyse, which findings to keep,
// and optionally a profile to price them with and a revision to compare
// with.
type ReviewOptions struct {
	Options
	// Filter selects the findings; its Dir is set from the analysis.
	Filter Filter
	// Profile, when not nil, prices the findings (a heap or allocs
	// profile); ProfileName says where it came from, in the report and in
	// errors.
	Profile     *profile.Profile
	ProfileName string
	// Base, when not empty, is a git revision whose findings the current
	// ones are compared with.
	Base string
	// Progress, when not nil, is told what is compiled before each
	// compile, which takes a while.
	Progress func(what string)
}

// Reviewed is the result of Review and the JSON contract of 'leaklab
// escape': the findings always; pricing with a profile; base, introduced
// and removed with a base revision, and base_failures when a package did
// not build there (its findings are then not compared); failures when a
// package did not build.
type Reviewed struct {
	Findings     []Finding   `json:"findings"`
	Pricing      *Pricing    `json:"pricing,omitempty"`
	Base         string      `json:"base,omitempty"`
	Introduced   []Finding   `json:"introduced,omitempty"`
	Removed      []Finding   `json:"removed,omitempty"`
	BaseFailures []Failure   `json:"base_failures,omitempty"`
	Failures     []Failure   `json:"failures,omitempty"`
	comparison   *Comparison // nil without a base
	profileName  string
}

// Review analyses the packages, keeps the findings the filter selects,
// prices them with the profile and compares them with the base revision.
// Packages that did not build are in the result, not in the error: see
// BuildError.
func Review(ctx context.Context, opts ReviewOptions) (*Reviewed, error) {
	what := strings.Join(opts.Packages, " ")
	if what == "" {
		what = DefaultPackages
	}
	progress := func(format string, args ...any) {
		if opts.Progress != nil {
			opts.Progress(fmt.Sprintf(format, args...))
		}
	}
	// A profile that cannot price should fail before a long compile.
	if opts.Profile != nil {
		if _, _, err := allocIndexes(opts.Profile); err != nil {
			return nil, fmt.Errorf("%s: %w", opts.ProfileName, err)
		}
	}
	progress("compiling %s with escape analysis…", what)
	report, err := Analyze(ctx, opts.Options)
	if err != nil {
		return nil, err
	}
	// The filter's File may name the file from the current directory or
	// absolutely, while findings name it from the analysed directory.
	filter := opts.Filter
	filter.Dir = report.Dir
	r := &Reviewed{Findings: filter.Apply(report.Findings), Failures: report.Failures, profileName: opts.ProfileName}
	if opts.Profile != nil {
		r.Pricing, err = Price(&Report{Dir: report.Dir, Findings: r.Findings}, opts.Profile)
		if err != nil {
			return nil, err
		}
	}
	if opts.Base != "" {
		progress("compiling %s at %s…", what, opts.Base)
		base, err := AnalyzeRevision(ctx, opts.Options, opts.Base)
		if err != nil {
			return nil, err
		}
		// A package that did not build at the base has no findings there,
		// so its current ones are not compared rather than all introduced.
		head := WithoutPackages(r.Findings, base.Failures)
		r.comparison = Compare(filter.Apply(base.Findings), head)
		r.comparison.Base = opts.Base
		r.Base, r.Introduced, r.Removed = opts.Base, r.comparison.Introduced, r.comparison.Removed
		r.BaseFailures = base.Failures
	}
	return r, nil
}

// NewHeapEscapes counts the heap escapes introduced since the base; 0
// without one.
func (r *Reviewed) NewHeapEscapes() int {
	if r.comparison == nil {
		return 0
	}
	return r.comparison.NewHeapEscapes()
}

// BuildError describes the packages that did not build in one line, or is
// nil when all did.
func (r *Reviewed) BuildError() error {
	n := len(r.Failures)
	if n == 0 {
		return nil
	}
	first := r.Failures[0]
	msg := firstLine(first.Output)
	if n == 1 {
		return fmt.Errorf("%s did not build: %s", first.Package, msg)
	}
	return fmt.Errorf("%d packages did not build (first: %s: %s)", n, first.Package, msg)
}

// BaseWarning says which packages did not build at the base, naming a
// few, so their escapes were not compared: "example.com/m/b did not build
// at main, so its escapes were not compared". It is "" when all built.
func (r *Reviewed) BaseWarning() string {
	failures := r.BaseFailures
	switch len(failures) {
	case 0:
		return ""
	case 1:
		return fmt.Sprintf("%s did not build at %s, so its escapes were not compared", failures[0].Package, r.Base)
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
	return fmt.Sprintf("%d packages did not build at %s (%s), so their escapes were not compared", len(failures), r.Base, list)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
