package profiles

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// FormatValue renders a sample value in its unit: bytes as KiB/MiB/GiB,
// nanoseconds as a duration, counts as they are. Deltas keep their sign.
func FormatValue(v int64, unit string, signed bool) string {
	sign := ""
	if signed && v > 0 {
		sign = "+"
	}
	if v < 0 {
		sign = "-"
		v = -v
	}
	switch unit {
	case "bytes":
		const k = 1024
		switch {
		case v >= k*k*k:
			return fmt.Sprintf("%s%.2f GiB", sign, float64(v)/(k*k*k))
		case v >= k*k:
			return fmt.Sprintf("%s%.2f MiB", sign, float64(v)/(k*k))
		case v >= k:
			return fmt.Sprintf("%s%.1f KiB", sign, float64(v)/k)
		}
		return fmt.Sprintf("%s%d B", sign, v)
	case "nanoseconds":
		return sign + time.Duration(v).Round(time.Microsecond).String()
	}
	return fmt.Sprintf("%s%d", sign, v)
}

// WriteText writes the report as a table for people: leak sites first for
// goroutine profiles, then the rows.
func (r *DiffReport) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "%s (%s): base %s, current %s, delta %s\n", r.SampleType, r.Unit,
		FormatValue(r.BaseTotal, r.Unit, false), FormatValue(r.CurrentTotal, r.Unit, false),
		FormatValue(r.CurrentTotal-r.BaseTotal, r.Unit, true))
	if len(r.LeakSites) > 0 {
		fmt.Fprintln(w, "\nby leak site (first frame of the target's own code, with the wait state):")
		for _, s := range r.LeakSites {
			fmt.Fprintf(w, "  %s goroutines in %s at %s (%d → %d)\n",
				FormatValue(s.Delta, "count", true), s.WaitState, ShortName(s.Function), s.Base, s.Current)
		}
		fmt.Fprintln(w)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "delta\tbase\tcurrent\tdelta cum\t %s\n", map[string]string{ByFunction: "function", ByLine: "line", ByStack: "stack (leaf first)"}[r.By])
	for _, row := range r.Rows {
		label := row.Function
		switch r.By {
		case ByLine:
			label = fmt.Sprintf("%s %s:%d", row.Function, row.File, row.Line)
		case ByStack:
			label = stackLabel(row.Stack)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t %s\n",
			FormatValue(row.Delta, r.Unit, true), FormatValue(row.Base, r.Unit, false),
			FormatValue(row.Current, r.Unit, false), FormatValue(row.DeltaCum, r.Unit, true), label)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.TotalRows > len(r.Rows) {
		fmt.Fprintf(w, "(%d of %d rows; --top 0 shows all)\n", len(r.Rows), r.TotalRows)
	}
	return nil
}

// ShortName drops the import path before the package name, as pprof's
// graphs do: github.com/x/y/leaks.(*T).m → leaks.(*T).m.
func ShortName(fn string) string {
	slash := strings.LastIndexByte(fn, '/')
	if slash < 0 {
		return fn
	}
	// Keep a slash inside a parenthesised receiver intact.
	if paren := strings.IndexByte(fn, '('); paren >= 0 && paren < slash {
		return fn
	}
	return fn[slash+1:]
}

// stackLabel joins a stack leaf first with short names, folding runs of
// the same frame (recursion) into "f ×N".
func stackLabel(stack []string) string {
	var parts []string
	for i := 0; i < len(stack); {
		j := i
		for j < len(stack) && stack[j] == stack[i] {
			j++
		}
		part := ShortName(stack[i])
		if j-i > 1 {
			part += fmt.Sprintf(" ×%d", j-i)
		}
		parts = append(parts, part)
		i = j
	}
	return strings.Join(parts, " ← ")
}
