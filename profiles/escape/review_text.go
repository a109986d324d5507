package escape

import (
	"fmt"
	"io"
	"strings"

	"github.com/leaklab/leaklab/internal/bytesize"
)

// WriteText writes the review as a reader would like it: findings grouped
// by file and function, each with the compiler's words, the flow that
// explains it and, when one applies, what usually fixes it; the priced
// ranking first, and with a base only what changed.
func (r *Reviewed) WriteText(w io.Writer) error {
	if r.Pricing != nil {
		writePricing(w, r.Pricing, r.profileName)
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

func writeFailures(w io.Writer, title string, failures []Failure) {
	fmt.Fprintf(w, "\n%s\n", title)
	for _, fl := range failures {
		fmt.Fprintf(w, "  %s\n", fl.Package)
		for _, line := range strings.Split(strings.TrimSpace(fl.Output), "\n") {
			fmt.Fprintf(w, "    %s\n", line)
		}
	}
}

func writeFindings(w io.Writer, fs []Finding) {
	if len(fs) == 0 {
		fmt.Fprintln(w, "No findings.")
		return
	}
	counts := map[Kind]int{}
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
		len(fs), funcs, counts[KindMovedToHeap], counts[KindEscapes], counts[KindLeakingParam], counts[KindDoesNotEscape])
}

func writeFinding(w io.Writer, x Finding, indent string) {
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

func writePricing(w io.Writer, p *Pricing, name string) {
	share := 0.0
	if p.TotalBytes > 0 {
		share = 100 * float64(p.MatchedBytes) / float64(p.TotalBytes)
	}
	fmt.Fprintf(w, "Priced with %s: %s allocated in all, %.0f%% of it at the lines below.\n", name, bytesize.Format(p.TotalBytes), share)
	if len(p.Ranked) == 0 {
		fmt.Fprintln(w, "  (the profile saw none of these findings allocate)")
	}
	for i, x := range p.Ranked {
		fmt.Fprintf(w, "%3d. %10s %10d objects  %s:%d  %s  %s\n", i+1, bytesize.Format(x.Cost.AllocBytes), x.Cost.AllocObjects, x.File, x.Line, x.Function, x.Message)
	}
	fmt.Fprintln(w)
}

func writeComparison(w io.Writer, c *Comparison) {
	fmt.Fprintf(w, "Compared with %s: %d introduced (%d heap escapes), %d removed.\n", c.Base, len(c.Introduced), c.NewHeapEscapes(), len(c.Removed))
	for _, part := range []struct {
		title string
		fs    []Finding
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
