// Command synthprofile writes a synthetic pair of heap profiles for the
// diff benchmark (scripts/bench-diff.sh): many distinct stacks over a
// large function table, shaped like Go heap profiles (four sample values,
// a bytes label), the current one grown from the base. It is a benchmark
// input generator, not a test fixture: nothing it writes is committed.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"

	"github.com/google/pprof/profile"
)

func main() {
	stacks := flag.Int("stacks", 200_000, "distinct stacks per profile")
	functions := flag.Int("functions", 40_000, "distinct functions")
	locations := flag.Int("locations", 150_000, "distinct locations (program counters)")
	depth := flag.Int("depth", 32, "mean stack depth")
	seed := flag.Uint64("seed", 1, "random seed")
	base := flag.String("base", "base.pb.gz", "base profile to write")
	cur := flag.String("current", "current.pb.gz", "current profile to write")
	flag.Parse()
	if err := run(*stacks, *functions, *locations, *depth, *seed, *base, *cur); err != nil {
		fmt.Fprintln(os.Stderr, "synthprofile:", err)
		os.Exit(1)
	}
}

func run(nStacks, nFuncs, nLocs, depth int, seed uint64, basePath, curPath string) error {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	funcs := make([]*profile.Function, nFuncs)
	for i := range funcs {
		pkg := fmt.Sprintf("github.com/acme/shop/internal/pkg%03d", i%500)
		funcs[i] = &profile.Function{
			ID:         uint64(i + 1),
			Name:       fmt.Sprintf("%s.(*Type%d).Method%d", pkg, i%97, i),
			SystemName: fmt.Sprintf("%s.(*Type%d).Method%d", pkg, i%97, i),
			Filename:   fmt.Sprintf("/src/shop/internal/pkg%03d/file%d.go", i%500, i%13),
		}
	}
	mapping := &profile.Mapping{ID: 1, Start: 0x400000, Limit: 0x4000000, File: "/usr/local/bin/shop", HasFunctions: true}
	locs := make([]*profile.Location, nLocs)
	for i := range locs {
		locs[i] = &profile.Location{
			ID: uint64(i + 1), Mapping: mapping, Address: 0x400000 + uint64(i)*16,
			Line: []profile.Line{{Function: funcs[rng.IntN(nFuncs)], Line: int64(1 + rng.IntN(900))}},
		}
	}
	// Distinct stacks are random walks down a call graph in which each
	// location calls one of a few others, as real programs do: stacks
	// differ, while caller→callee edges stay few.
	const fanout = 4
	callees := make([][]*profile.Location, nLocs)
	for i := range callees {
		for range fanout {
			callees[i] = append(callees[i], locs[rng.IntN(nLocs)])
		}
	}
	type stack struct {
		locs    []*profile.Location
		objects int64
		size    int64
	}
	seen := map[string]bool{}
	all := make([]stack, 0, nStacks+nStacks/20)
	for len(all) < nStacks+nStacks/20 {
		d := depth/2 + rng.IntN(depth)
		walk := make([]*profile.Location, 0, d)
		at := locs[rng.IntN(64)] // a few entry points (main, goroutine starts)
		key := make([]byte, 0, 4*d)
		for range d {
			walk = append(walk, at)
			key = fmt.Appendf(key, "%d,", at.ID)
			at = callees[at.ID-1][rng.IntN(fanout)]
		}
		if seen[string(key)] {
			continue
		}
		seen[string(key)] = true
		// Leaf first, as profile.proto stores stacks.
		for i, j := 0, len(walk)-1; i < j; i, j = i+1, j-1 {
			walk[i], walk[j] = walk[j], walk[i]
		}
		size := int64(1) << (4 + rng.IntN(12))
		all = append(all, stack{locs: walk, objects: int64(1 + rng.IntN(64)), size: size})
	}
	build := func(stacks []stack, grow func(i int, objects int64) int64) *profile.Profile {
		p := &profile.Profile{
			SampleType: []*profile.ValueType{
				{Type: "alloc_objects", Unit: "count"}, {Type: "alloc_space", Unit: "bytes"},
				{Type: "inuse_objects", Unit: "count"}, {Type: "inuse_space", Unit: "bytes"},
			},
			DefaultSampleType: "inuse_space",
			PeriodType:        &profile.ValueType{Type: "space", Unit: "bytes"},
			Period:            512 * 1024,
			Mapping:           []*profile.Mapping{mapping},
			Location:          locs,
			Function:          funcs,
		}
		for i, s := range stacks {
			inuse := grow(i, s.objects)
			p.Sample = append(p.Sample, &profile.Sample{
				Location: s.locs,
				Value:    []int64{s.objects * 4, s.objects * 4 * s.size, inuse, inuse * s.size},
				NumLabel: map[string][]int64{"bytes": {s.size}},
				NumUnit:  map[string][]string{"bytes": {"bytes"}},
			})
		}
		return p
	}
	bp := build(all[:nStacks], func(_ int, objects int64) int64 { return objects })
	// The current profile: a tenth of the stacks grew, a few shrank, and
	// one stack in twenty is new.
	cp := build(all[nStacks/20:], func(i int, objects int64) int64 {
		switch i % 10 {
		case 0:
			return objects * 3
		case 1:
			return objects / 2
		}
		return objects
	})
	for _, out := range []struct {
		path string
		p    *profile.Profile
	}{{basePath, bp}, {curPath, cp}} {
		f, err := os.Create(out.path)
		if err != nil {
			return err
		}
		if err := out.p.Write(f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}
