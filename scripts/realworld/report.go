package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// summary counts the verdicts of a set of watches.
type summary struct {
	leakWatches, found, right   int
	healthyWatches, falseAlarms int
	errors                      int
	grew, leakMeasured          int // leak watches whose growth the independent measure confirmed
	// by kind of growth: watches of cases growing that way, those with a
	// suspect of that kind, and those with a right one
	kind map[string]*kindCount
}

type kindCount struct {
	watches, found, right int
	// decided: watches that left nothing undecided, and of those the ones
	// with a right suspect of the kind.
	decided, decidedRight int
}

// minHeapGrowth and minGoroutineGrowth are the growth per minute, measured
// independently, below which a leak case did not really leak in a watch.
const (
	minHeapGrowth      = 1 << 20
	minGoroutineGrowth = 10
)

// grew says whether the independent measure confirms the case's growth.
func grew(r result) bool {
	ok := true
	if strings.Contains(r.c.leak, "heap") {
		ok = ok && r.heapPerMin >= minHeapGrowth
	}
	if strings.Contains(r.c.leak, "goroutine") {
		ok = ok && r.goroutinesPerMin >= minGoroutineGrowth
	}
	return ok
}

func summarize(rs []result) summary {
	s := summary{kind: map[string]*kindCount{"heap": {}, "goroutine": {}}}
	for _, r := range rs {
		if r.err != nil {
			s.errors++
			continue
		}
		if r.c.leak == "" {
			s.healthyWatches++
			if r.verdict == verdictFalseAlarm {
				s.falseAlarms++
			}
			continue
		}
		s.leakWatches++
		s.leakMeasured++
		for kind, k := range s.kind {
			if !strings.Contains(r.c.leak, kind) {
				continue
			}
			k.watches++
			found, right := false, false
			for _, sus := range r.watch.Suspects {
				if sus.Kind == kind {
					found = true
					right = right || matchesCulprit(sus.Function, r.c.culprits)
				}
			}
			if found {
				k.found++
			}
			if right {
				k.right++
			}
			if r.watch.decided() {
				k.decided++
				if right {
					k.decidedRight++
				}
			}
		}
		if grew(r) {
			s.grew++
		}
		switch r.verdict {
		case verdictRight:
			s.found++
			s.right++
		case verdictWrong:
			s.found++
		}
	}
	return s
}

func (s summary) recall() float64 { return ratio(s.found, s.leakWatches) }

func (s summary) accuracy() float64 { return ratio(s.right, s.found) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func (s summary) String() string {
	return fmt.Sprintf("leak watches %d: found %d (recall %.0f%%), culprit right %d (accuracy %.0f%% of found); "+
		"growth confirmed independently in %d of %d; healthy watches %d: false alarms %d; errors %d",
		s.leakWatches, s.found, 100*s.recall(), s.right, 100*s.accuracy(), s.grew, s.leakMeasured,
		s.healthyWatches, s.falseAlarms, s.errors) + s.byKind()
}

func (s summary) byKind() string {
	var b strings.Builder
	for _, kind := range []string{"heap", "goroutine"} {
		k := s.kind[kind]
		if k == nil || k.watches == 0 {
			continue
		}
		fmt.Fprintf(&b, "; %s growth: %d watches, a %s suspect in %d, right in %d, decided in %d (right in %d of those)",
			kind, k.watches, kind, k.found, k.right, k.decided, k.decidedRight)
	}
	return b.String()
}

func mib(b float64) string { return fmt.Sprintf("%.1f", b/(1<<20)) }

// describeSite renders a suspect or growing site in one cell.
func describeSite(s site, withConfidence bool) string {
	fn := shortFunc(s.Function)
	growth := fmt.Sprintf("%+.0f/min", s.GrowthPerMinute)
	if s.Unit == "bytes" {
		growth = fmt.Sprintf("%+.1f MiB/min", s.GrowthPerMinute/(1<<20))
	}
	if withConfidence && s.SameLeakAs != "" {
		return fmt.Sprintf("%s `%s` %s, %s, in lockstep with `%s`", s.Kind, fn, s.Confidence, growth, shortFunc(s.SameLeakAs))
	}
	if withConfidence {
		return fmt.Sprintf("%s `%s` %s, %s", s.Kind, fn, s.Confidence, growth)
	}
	return fmt.Sprintf("%s `%s` %s p=%.2g", s.Kind, fn, growth, s.Evidence.P)
}

// shortFunc drops the module directories of a function name, keeping the
// last path element: go.etcd.io/etcd/mvcc.(*treeIndex).Put → mvcc.(*treeIndex).Put.
func shortFunc(fn string) string {
	if i := strings.LastIndex(fn, "/"); i >= 0 {
		return fn[i+1:]
	}
	return fn
}

// writeMarkdown writes the per-watch table, the summary and the heap diffs.
func writeMarkdown(w io.Writer, rs []result, command string) {
	fmt.Fprintf(w, "Command: `%s`\n\n", command)
	fmt.Fprintf(w, "| case | run | live heap at start MiB | live heap growth MiB/min | goroutines/min | watch suspects | top_growing (first 3) | verdict |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		if r.err != nil {
			fmt.Fprintf(w, "| %s | %d | | | | | | error: %s |\n", r.c.name, r.run, cell(r.err.Error()))
			continue
		}
		var sus, top []string
		for _, s := range r.watch.Suspects {
			sus = append(sus, describeSite(s, true))
		}
		for i, s := range r.watch.TopGrowing {
			if i == 3 {
				break
			}
			top = append(top, describeSite(s, false))
		}
		if len(sus) == 0 {
			sus = []string{"none"}
		}
		verdict := r.verdict
		if !r.watch.decided() {
			var und []string
			for _, u := range r.watch.Undecided {
				und = append(und, describeSite(u, false))
			}
			verdict += " — undecided: " + strings.Join(und, "; ")
		}
		if r.c.leak != "" && !grew(r) {
			verdict += " (growth below the floor)"
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %+.0f | %s | %s | %s |\n", r.c.name, r.run, mib(r.heapStart), mib(r.heapPerMin),
			r.goroutinesPerMin, cell(strings.Join(sus, "; ")), cell(strings.Join(top, "; ")), verdict)
	}
	fmt.Fprintf(w, "\n**Summary:** %s.\n", summarize(rs))
	fmt.Fprintf(w, "\n### Heap diff of each leak watch (first → last snapshot: top functions, flat, then top stacks, leaf first)\n\n")
	for _, r := range rs {
		if r.c.leak == "" || r.err != nil || len(r.diff) == 0 {
			continue
		}
		fmt.Fprintf(w, "- **%s** run %d (module `%s`):", r.c.name, r.run, r.module)
		for i, d := range r.diff {
			if i == 5 {
				break
			}
			fmt.Fprintf(w, " `%s` %+.1f MiB;", d.Function, d.Delta/(1<<20))
		}
		fmt.Fprintln(w)
		for i, d := range r.stacks {
			if i == 3 || d.Delta <= 0 {
				break
			}
			frames := d.Stack
			if len(frames) > 10 {
				frames = append(frames[:10:10], "…")
			}
			for k, f := range frames {
				frames[k] = shortFunc(f)
			}
			fmt.Fprintf(w, "  - stack %+.1f MiB: %s\n", d.Delta/(1<<20), strings.Join(frames, " ← "))
		}
	}
}

func cell(s string) string {
	s = strings.ReplaceAll(s, "|", "\\|")
	return strings.ReplaceAll(s, "\n", " ")
}

// watchRecord is one watch in the -json output.
type watchRecord struct {
	Case             string     `json:"case"`
	Server           string     `json:"server"`
	Module           string     `json:"module"`
	Leak             string     `json:"leak,omitempty"` // "" for a healthy case
	Culprits         []string   `json:"culprits,omitempty"`
	Run              int        `json:"run"`
	Error            string     `json:"error,omitempty"`
	HeapStart        float64    `json:"heap_start_bytes"`
	HeapPerMinute    float64    `json:"heap_growth_bytes_per_minute"`
	GoroutinesPerMin float64    `json:"goroutine_growth_per_minute"`
	Suspects         []site     `json:"suspects"`
	TopGrowing       []site     `json:"top_growing"`
	Undecided        []site     `json:"undecided"`
	WatchedSeconds   float64    `json:"watched_seconds"`
	OwnCode          ownCodeRep `json:"own_code,omitempty"`
	Verdict          string     `json:"verdict"`
	HeapDiff         []diffRow  `json:"heap_diff,omitempty"`
	HeapDiffStacks   []diffRow  `json:"heap_diff_stacks,omitempty"`
}

// writeJSON writes every watch's record, in case order.
func writeJSON(w io.Writer, rs []result) error {
	recs := make([]watchRecord, 0, len(rs))
	for _, r := range rs {
		rec := watchRecord{
			Case: r.c.name, Server: r.c.server, Module: r.module, Leak: r.c.leak, Culprits: r.c.culprits, Run: r.run,
			HeapStart: r.heapStart, HeapPerMinute: r.heapPerMin, GoroutinesPerMin: r.goroutinesPerMin,
			Suspects: r.watch.Suspects, TopGrowing: r.watch.TopGrowing, Undecided: r.watch.Undecided, WatchedSeconds: r.watch.watched(),
			OwnCode: r.watch.Own, Verdict: r.verdict,
			HeapDiff: r.diff, HeapDiffStacks: r.stacks,
		}
		if r.err != nil {
			rec.Error = r.err.Error()
		}
		recs = append(recs, rec)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(recs)
}
