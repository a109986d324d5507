package leaktest

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/leaklab/leaklab/internal/bytesize"
	"github.com/leaklab/leaklab/internal/growth"
)

// verdict is the judgement over all rounds.
type verdict struct {
	ops     int // operations measured (warm-up excluded)
	rounds  int
	elapsed time.Duration

	heapChecked bool
	heap        []int64 // live bytes attributed to the op, per measurement
	heapFit     growth.Fit
	heapFail    bool
	heapSites   []siteGrowth
	// unsure is growth in stacks that may or may not be the op's: heap of
	// goroutines whose entry function other goroutines run too, and stacks
	// too deep to reach the op's frame.
	unsure      int64
	unsureSites []siteGrowth

	goroutines     []int64 // goroutines under the op's label, per measurement
	goroutineGrown int64
	goroutineFail  bool
	goroutineSites []goroutineGrowth
}

type siteGrowth struct {
	site
	Bytes int64
}

type goroutineGrowth struct {
	goroutineSite
	Count int64
}

func (v verdict) failed() bool { return v.heapFail || v.goroutineFail }

type attribution int

const (
	notOurs attribution = iota
	ours
	unsure
)

func (c *checker) judge(ms []measurement) verdict {
	first, last := ms[0], ms[len(ms)-1]
	v := verdict{ops: last.ops, rounds: len(ms) - 1, heapChecked: first.heap != nil}
	ourEntries, otherEntries := map[string]bool{}, map[string]bool{}
	for _, m := range ms {
		for e := range m.ourEntries {
			ourEntries[e] = true
		}
		for e := range m.otherEntries {
			otherEntries[e] = true
		}
	}
	attribute := func(k stackKey) (attribution, *stackInfo) {
		si := c.info(k)
		switch {
		case si.runtimePool:
			return notOurs, si
		case si.slot == c.slot:
			return ours, si
		case si.slot >= 0:
			return notOurs, si // another Check's op
		case ourEntries[si.entry] && otherEntries[si.entry]:
			return unsure, si
		case ourEntries[si.entry]:
			return ours, si
		case si.truncated:
			return unsure, si
		}
		return notOurs, si
	}

	if v.heapChecked {
		for _, m := range ms {
			var total int64
			for k, b := range m.heap {
				if a, _ := attribute(k); a == ours {
					total += b
				}
			}
			v.heap = append(v.heap, total)
		}
		xs := make([]float64, len(ms))
		ys := make([]float64, len(ms))
		for i, m := range ms {
			xs[i], ys[i] = float64(m.ops), float64(v.heap[i])
		}
		v.heapFit = growth.Of(xs, ys)
		v.heapFail = v.heapFit.Exceeds(c.cfg.maxRetained)

		grown := map[site]int64{}
		unsureGrown := map[site]int64{}
		keys := map[stackKey]bool{}
		for k := range first.heap {
			keys[k] = true
		}
		for k := range last.heap {
			keys[k] = true
		}
		for k := range keys {
			d := last.heap[k] - first.heap[k]
			if d == 0 {
				continue
			}
			switch a, si := attribute(k); a {
			case ours:
				grown[si.site] += d
			case unsure:
				unsureGrown[si.site] += d
				v.unsure += d
			}
		}
		v.heapSites = topSites(grown)
		v.unsureSites = topSites(unsureGrown)
	}

	for _, m := range ms {
		var n int64
		for _, c := range m.goroutines {
			n += c
		}
		v.goroutines = append(v.goroutines, n)
	}
	v.goroutineGrown = v.goroutines[len(ms)-1] - v.goroutines[0]
	v.goroutineFail = float64(v.goroutineGrown) > c.cfg.maxGoroutines*float64(v.ops)
	gs := map[goroutineSite]int64{}
	for s, n := range last.goroutines {
		gs[s] += n
	}
	for s, n := range first.goroutines {
		gs[s] -= n
	}
	for s, n := range gs {
		if n > 0 {
			v.goroutineSites = append(v.goroutineSites, goroutineGrowth{s, n})
		}
	}
	slices.SortFunc(v.goroutineSites, func(a, b goroutineGrowth) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Function, b.Function), cmp.Compare(a.Wait, b.Wait))
	})
	return v
}

// topSites keeps the sites that grew, largest first.
func topSites(m map[site]int64) []siteGrowth {
	var out []siteGrowth
	for s, b := range m {
		if b > 0 {
			out = append(out, siteGrowth{s, b})
		}
	}
	slices.SortFunc(out, func(a, b siteGrowth) int {
		return cmp.Or(cmp.Compare(b.Bytes, a.Bytes), cmp.Compare(a.Function, b.Function), cmp.Compare(a.Line, b.Line))
	})
	return out
}

// maxSites bounds the sites a report lists.
const maxSites = 5

func (c *checker) report(v verdict) string {
	var b strings.Builder
	fmt.Fprintf(&b, "leaktest: op leaks: %d ops measured in %d rounds after %d warm-up ops\n", v.ops, v.rounds, c.cfg.warmup)
	if v.heapFail {
		fmt.Fprintf(&b, "heap: op keeps %.1f B/op alive (limit %g B/op; floor %.1f, later half %.1f B/op); live bytes through op per round: %s\n",
			v.heapFit.Slope, c.cfg.maxRetained, v.heapFit.Floor, v.heapFit.Late, formatSeries(v.heap, true))
		writeHeapSites(&b, "  grew at (first own-code frame, leaf first):", v.heapSites, v.ops)
	}
	if v.goroutineFail {
		fmt.Fprintf(&b, "goroutines: %d started by op are still running (%.3g/op, limit %g/op); per round: %s\n",
			v.goroutineGrown, float64(v.goroutineGrown)/float64(v.ops), c.cfg.maxGoroutines, formatSeries(v.goroutines, false))
		b.WriteString("  grew at (first own-code frame, and wait state):\n")
		for i, g := range v.goroutineSites {
			if i == maxSites {
				fmt.Fprintf(&b, "    ... and %d more sites\n", len(v.goroutineSites)-i)
				break
			}
			fmt.Fprintf(&b, "    +%d  %s", g.Count, g.Function)
			if g.Wait != "" {
				fmt.Fprintf(&b, " [%s]", g.Wait)
			}
			fmt.Fprintf(&b, "  %s%s\n", location(g.site), notOwn(g.site))
		}
	}
	if v.heapChecked && v.heapFail != v.goroutineFail {
		// Say what the other half found, so a reader knows it was looked at.
		if !v.heapFail {
			fmt.Fprintf(&b, "heap: within the limit (%.1f B/op, limit %g B/op)\n", v.heapFit.Slope, c.cfg.maxRetained)
		} else {
			fmt.Fprintf(&b, "goroutines: within the limit (%+d; per round: %s)\n", v.goroutineGrown, formatSeries(v.goroutines, false))
		}
	}
	c.writeNotes(&b, v)
	return strings.TrimRight(b.String(), "\n")
}

func (c *checker) summary(v verdict) string {
	var b strings.Builder
	fmt.Fprintf(&b, "leaktest: no leak in %d ops (%d rounds, %s): ", v.ops, v.rounds, v.elapsed.Round(time.Millisecond))
	if v.heapChecked {
		fmt.Fprintf(&b, "heap %.2f B/op (limit %g), ", v.heapFit.Slope, c.cfg.maxRetained)
	}
	fmt.Fprintf(&b, "goroutines %+d (limit %g/op)\n", v.goroutineGrown, c.cfg.maxGoroutines)
	c.writeNotes(&b, v)
	return strings.TrimRight(b.String(), "\n")
}

// writeNotes says what could not be measured or attributed.
func (c *checker) writeNotes(b *strings.Builder, v verdict) {
	if c.heapSkipped != "" {
		fmt.Fprintf(b, "note: %s\n", c.heapSkipped)
	}
	if v.heapChecked && float64(v.unsure) > c.cfg.maxRetained*float64(v.ops) {
		fmt.Fprintf(b, "note: %s more grew in stacks that cannot be told apart from other goroutines' (goroutines outside op run the same function, or the stack is deeper than the profile records); not counted above:\n",
			bytesize.Format(v.unsure))
		writeHeapSites(b, "", v.unsureSites, v.ops)
	}
}

func writeHeapSites(b *strings.Builder, title string, sites []siteGrowth, ops int) {
	if title != "" {
		b.WriteString(title + "\n")
	}
	for i, s := range sites {
		if i == maxSites {
			fmt.Fprintf(b, "    ... and %d more sites\n", len(sites)-i)
			break
		}
		fmt.Fprintf(b, "    +%s (%.1f B/op)  %s  %s%s\n", bytesize.Format(s.Bytes), float64(s.Bytes)/float64(ops), s.Function, location(s.site), notOwn(s.site))
	}
}

func location(s site) string {
	if s.File == "" {
		return ""
	}
	return fmt.Sprintf("%s:%d", filepath.Base(s.File), s.Line)
}

func notOwn(s site) string {
	if s.OwnCode {
		return ""
	}
	return " (no own code on the stack)"
}

func formatSeries(xs []int64, bytes bool) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		if bytes {
			parts[i] = bytesize.Format(x)
		} else {
			parts[i] = fmt.Sprint(x)
		}
	}
	return strings.Join(parts, " → ")
}
