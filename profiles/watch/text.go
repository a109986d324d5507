package watch

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/leaklab/leaklab/internal/bytesize"
)

// WriteText writes the report as a person reads it: one block per
// suspect, with its evidence and the command to run next.
func WriteText(w io.Writer, r *Report) error {
	dur := r.Ended.Sub(r.Started).Round(time.Second)
	fmt.Fprintf(w, "Watched %s for %s: %d snapshots of heap and goroutines, every %s", r.Target, dur, r.Snapshots, time.Duration(r.Every*float64(time.Second)).Round(10*time.Millisecond))
	if r.Auto {
		fmt.Fprintf(w, " (--for auto: at least %s, until decided, at most %s)", time.Duration(r.For*float64(time.Second)), time.Duration(r.MaxFor*float64(time.Second)))
	}
	fmt.Fprintln(w, ".")
	from := ""
	if r.Own.Source != "" {
		from = ", from " + r.Own.Source
	}
	switch {
	case len(r.Own.Modules) > 0:
		fmt.Fprintf(w, "Own code: %s (and package main%s)\n", strings.Join(r.Own.Modules, ", "), from)
	case len(r.Own.Prefixes) > 0:
		fmt.Fprintf(w, "Own code: functions starting %s%s\n", strings.Join(r.Own.Prefixes, ", "), from)
	case r.Own.Source != "":
		fmt.Fprintf(w, "Own code: %s (the target did not say; --own names it)\n", r.Own.Source)
	}
	if r.Incomplete != "" {
		fmt.Fprintf(w, "The watch ended early: %s. The verdict covers what was seen until then.\n", r.Incomplete)
	}
	if len(r.Suspects) == 0 {
		fmt.Fprintln(w, "\nNo suspects: no allocation site or goroutine group kept growing.")
	} else {
		fmt.Fprintf(w, "\n%d suspect%s:\n", len(r.Suspects), plural(len(r.Suspects)))
	}
	for _, s := range r.Suspects {
		fmt.Fprintf(w, "\n  %s  %s  %s", strings.ToUpper(s.Confidence), s.Kind, s.Function)
		if s.WaitState != "" {
			fmt.Fprintf(w, "  [%s]", s.WaitState)
		}
		fmt.Fprintln(w)
		if s.SameLeakAs != "" {
			fmt.Fprintf(w, "      grows in lockstep with %s above (%s per minute): most likely the same leak\n", s.SameLeakAs, formatValue(s.GrowthPerMinute, s.Unit, true))
			if len(s.Stack) > 0 {
				fmt.Fprintf(w, "      stack (leaf first): %s\n", strings.Join(shortStack(s.Stack, 6), " ← "))
			}
			continue
		}
		e := s.Evidence
		fmt.Fprintf(w, "      grows %s per minute: %s → %s over %d snapshots (Mann–Kendall p=%s",
			formatValue(s.GrowthPerMinute, s.Unit, true), formatValue(e.First, s.Unit, false), formatValue(e.Last, s.Unit, false), e.N, formatP(e.P))
		if e.LateP < lateP {
			fmt.Fprint(w, ", still growing at the end")
		}
		fmt.Fprintln(w, ")")
		if s.Aggregated {
			at := s.Function
			if s.JudgedAt != "" {
				at = s.JudgedAt
			}
			fmt.Fprintf(w, "      judged over every heap sample whose stack passes through %s; the growth comes together here from %d site%s:\n", at, len(s.Parts), plural(len(s.Parts)))
			for i, p := range s.Parts {
				if i == 5 {
					fmt.Fprintf(w, "        ... %d more\n", len(s.Parts)-5)
					break
				}
				fmt.Fprintf(w, "        %3.0f%%  %s  (%s)\n", 100*p.Share, p.Function, formatValue(p.Growth, "bytes", true))
			}
		}
		if n := inLockstepWith(r.Suspects, s.Function); n > 0 {
			fmt.Fprintf(w, "      %d more goroutine site%s below grow%s in lockstep with it: most likely one leak that holds each of them\n", n, plural(n), map[bool]string{true: "s"}[n == 1])
		}
		if t := e.Turnover; t != nil {
			fmt.Fprintf(w, "      goroutine IDs: %d arrived and stayed, %d of those there at the start left (p=%s for a steady site)\n", t.Arrived, t.Departed, formatP(t.P))
		}
		if s.ProvenLeaked > 0 {
			fmt.Fprintf(w, "      the runtime's goroutineleak profile proves %d of these goroutines leaked\n", s.ProvenLeaked)
		}
		switch {
		case s.Connections != "":
			fmt.Fprintf(w, "      these are HTTP client connections held open (goroutines in %s, no own code on their stack),\n", s.Connections)
			fmt.Fprintln(w, "      most often by a response body that is never closed; own code sending HTTP requests (heap profile):")
			for _, c := range s.HTTPCallers {
				fmt.Fprintf(w, "        %3.0f%%  %s\n", 100*c.Share, c.Function)
			}
		case !s.OwnCode:
			fmt.Fprintln(w, "      no frame of this stack is the service's own code; the name is the first frame outside the runtime")
		}
		if len(s.Stack) > 0 {
			fmt.Fprintf(w, "      stack (leaf first): %s\n", strings.Join(shortStack(s.Stack, 6), " ← "))
		}
		writeRetainer(w, s)
		if next := NextCommand(r, s); next != "" {
			fmt.Fprintf(w, "      next: %s\n", next)
		}
	}
	if len(r.Undecided) > 0 {
		switch {
		case r.Auto:
			fmt.Fprintf(w, "\nGrowing, still undecided after the longest watch (%s, --max-for):\n", time.Duration(r.MaxFor*float64(time.Second)))
		default:
			fmt.Fprintln(w, "\nGrowing, not yet decided (too few samples so far; --for auto keeps watching until it can decide):")
		}
		for _, u := range r.Undecided {
			fmt.Fprintf(w, "  %s  %s", u.Kind, u.Function)
			if u.WaitState != "" {
				fmt.Fprintf(w, "  [%s]", u.WaitState)
			}
			fmt.Fprintf(w, "  %s per minute (Mann–Kendall p=%s over %d snapshots)\n", formatValue(u.GrowthPerMinute, u.Unit, true), formatP(u.Evidence.P), u.Evidence.N)
		}
	}
	if h := r.HeapTotal; h != nil && h.Evidence.N > 1 {
		fmt.Fprintf(w, "\nWhole heap (in use, from the heap profiles): %s → %s, %s per minute (p=%s).\n",
			formatValue(h.Evidence.First, "bytes", false), formatValue(h.Evidence.Last, "bytes", false), formatValue(h.GrowthPerMinute, "bytes", true), formatP(h.Evidence.P))
	}
	if l := r.LiveHeap; l != nil {
		fmt.Fprintf(w, "Live heap (exact, %s in /metrics, after a GC): %s → %s, %s per minute.\n",
			l.Metric, formatValue(l.First, "bytes", false), formatValue(l.Last, "bytes", false), formatValue(l.GrowthPerMinute, "bytes", true))
	}
	writeRetainersNote(w, r)
	if !r.GoroutineIDs && r.GoroutineIDsOff != "" {
		fmt.Fprintf(w, "\nGoroutines were judged by their counts alone (no goroutine IDs: %s).\n", r.GoroutineIDsOff)
	}
	if !r.GoroutineLeakProfile {
		fmt.Fprintln(w, "\nThe target has no goroutineleak profile; built with GOEXPERIMENT=goroutineleakprofile, it would let leaklab prove goroutine leaks.")
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func shortStack(stack []string, n int) []string {
	if len(stack) <= n {
		return stack
	}
	out := append([]string(nil), stack[:n]...)
	return append(out, fmt.Sprintf("... %d more", len(stack)-n))
}

func formatValue(v float64, unit string, signed bool) string {
	sign := ""
	if signed && v > 0 {
		sign = "+"
	}
	if unit == "bytes" {
		return sign + bytesize.Format(int64(v))
	}
	if v == 1 && strings.HasSuffix(unit, "s") {
		unit = strings.TrimSuffix(unit, "s")
	}
	return sign + strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64) + " " + unit
}

func formatP(p float64) string {
	if p < 0.0001 {
		return "<0.0001"
	}
	return strconv.FormatFloat(p, 'g', 2, 64)
}

// NextCommand is the command a person runs next on a suspect: the diff of
// the two stored snapshots its growth spans, focused on it (for client
// connections, the heap diff of the code that sends the requests). "" when
// the watch kept no snapshots.
func NextCommand(r *Report, s Suspect) string {
	focus := " --focus '" + focusPattern(s.Function) + "'"
	if s.Connections != "" {
		if r.FirstHeapSnapshot == "" || r.FirstHeapSnapshot == r.LastHeapSnapshot {
			return ""
		}
		// what the pinned connections keep alive, by the callers' stacks
		return "leaklab diff " + r.FirstHeapSnapshot + " " + r.LastHeapSnapshot + focus + " --by stack"
	}
	if s.FirstSnapshot == "" || s.LastSnapshot == "" || s.FirstSnapshot == s.LastSnapshot {
		return ""
	}
	next := "leaklab diff " + s.FirstSnapshot + " " + s.LastSnapshot + focus
	if s.Kind == KindHeap {
		return next + " --by stack"
	}
	if len(r.Own.Modules) > 0 {
		// so that the diff's leak sites are named as this suspect is
		next += " --own " + strings.Join(r.Own.Modules, ",")
	}
	return next
}

// WithNextCommands fills every suspect's Next, for renderers that write
// the suspects as they are (JSON).
func WithNextCommands(r *Report) *Report {
	for i := range r.Suspects {
		r.Suspects[i].Next = NextCommand(r, r.Suspects[i])
	}
	return r
}
