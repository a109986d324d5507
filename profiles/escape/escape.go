// Package escape runs the Go compiler's escape analysis on packages and
// turns what it says into findings a person can act on: where a value is
// allocated on the heap instead of the stack, in which function, and the
// chain of assignments that forced it there.
//
// It sits beside the profile pipeline: Analyze reads source, Price joins its
// findings with an allocation profile (so the escapes worth fixing come
// first) and Compare diffs two analyses (so CI can refuse new escapes).
//
// The compiler reports in two forms and each carries something the other
// lacks. The -m=2 text has every decision, including "does not escape" and
// the distinction between "moved to heap" and "escapes to heap"; the
// structured log (-json=0,DIR) has the flow explanations with exact
// positions, including where inlined code came from. Analyze asks for both
// in one compile and joins them by position.
package escape

import (
	"fmt"
	"strings"
)

// Kind is the compiler's verdict on one value.
type Kind string

// The kinds of finding, as named in the JSON contract (DESIGN.md).
const (
	// KindMovedToHeap is a variable the compiler allocates on the heap
	// ("moved to heap: x").
	KindMovedToHeap Kind = "moved-to-heap"
	// KindEscapes is a value (a composite literal, make, new, a boxed
	// interface value, a closure) allocated on the heap ("x escapes to heap").
	KindEscapes Kind = "escapes"
	// KindLeakingParam is a parameter whose pointer flows out of the
	// function (to the heap or a result), so callers' arguments may escape.
	KindLeakingParam Kind = "leaking-param"
	// KindDoesNotEscape is a value the compiler proved stays on the stack.
	KindDoesNotEscape Kind = "does-not-escape"
)

// Kinds lists every kind, in the order reports use.
var Kinds = []Kind{KindMovedToHeap, KindEscapes, KindLeakingParam, KindDoesNotEscape}

// ParseKind checks a kind name given by a user.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if string(k) == s {
			return k, nil
		}
	}
	names := make([]string, len(Kinds))
	for i, k := range Kinds {
		names[i] = string(k)
	}
	return "", fmt.Errorf("unknown kind %q (kinds: %s)", s, strings.Join(names, ", "))
}

// Heap reports whether findings of this kind are heap allocations.
func (k Kind) Heap() bool { return k == KindMovedToHeap || k == KindEscapes }

// Position is a place in a source file. Line and Column are 1-based, the
// column counted in bytes, as the compiler counts them.
type Position struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
}

func (p Position) String() string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column) }

// Finding is one escape-analysis decision.
type Finding struct {
	// File is relative to the analysed directory when it lies under it,
	// else absolute.
	File   string `json:"file"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
	// Function encloses the position, named as pprof and the compiler name
	// it within its package: F, T.M, (*T).M, F.func1 for a closure.
	Function string `json:"function"`
	// Package is the import path of the package whose compilation reported
	// the finding.
	Package string `json:"package"`
	Kind    Kind   `json:"kind"`
	// Message is the compiler's own words, as -m prints them.
	Message string `json:"message"`
	// Flow is the compiler's explanation of why (empty when it gives none,
	// as for does-not-escape).
	Flow []Flow `json:"flow"`
	// InlinedFrom is where the code really is when the finding's position
	// is a call site it was inlined into.
	InlinedFrom *Position `json:"inlined_from,omitempty"`
	// Hint says in plain words what the flow means and the usual fix.
	Hint string `json:"hint,omitempty"`
	// Cost is what the allocation profile recorded at this line (Price).
	Cost *Cost `json:"cost,omitempty"`
}

// Position returns where the finding is.
func (f *Finding) Position() Position { return Position{File: f.File, Line: f.Line, Column: f.Column} }

// Flow is one edge of the compiler's data-flow explanation: the value of
// From flows into To, through the expressions in Steps.
type Flow struct {
	To    string `json:"to"`
	From  string `json:"from"`
	Steps []Step `json:"steps"`
}

// Step is one expression on a flow and why it moves the value along
// (the compiler's reason: return, address-of, call parameter, ...).
type Step struct {
	Expr   string `json:"expr"`
	Reason string `json:"reason"`
	Position
	InlinedFrom *Position `json:"inlined_from,omitempty"`
}

// String renders the flow the way the compiler's -m=2 text does, on one
// line: "~r0 ← &t: from &t (address-of) at 9:9, from return &t (return) at 9:2".
func (fl Flow) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s ← %s", fl.To, fl.From)
	for i, s := range fl.Steps {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "from %s (%s)", s.Expr, s.Reason)
		if s.Line > 0 {
			fmt.Fprintf(&b, " at %d:%d", s.Line, s.Column)
		}
	}
	return b.String()
}

// Failure is a package that did not build, with the compiler's (or the go
// command's) own message.
type Failure struct {
	Package string `json:"package"`
	Output  string `json:"output"`
}

// Report is the result of one analysis.
type Report struct {
	// Dir is the directory the analysis ran in.
	Dir      string    `json:"dir"`
	Findings []Finding `json:"findings"`
	// Failures lists packages that did not build; the findings of the others
	// are still reported.
	Failures []Failure `json:"failures,omitempty"`
}
