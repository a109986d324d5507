package watch

import (
	"slices"
	"sort"
)

// Diffuse growth. One growing structure (an index, a map of groups, a set
// of label strings) allocates at several sites: tree nodes, map buckets,
// strings, slices. Each may grow too slowly for its own samples to decide
// (one sample per 512 KiB), while together they clearly grow. So the
// detector also keeps a series per own-code function on the heap stacks,
// a call-graph node: the bytes of every sample whose stack passes through
// it. A node is judged by the same rules as a site. A dispatcher (a
// router, a middleware chain, a connection loop) is on every stack, and
// so allocates the garbage of every request as well: it keeps a small
// share of what it allocates and fails the retention test, while the
// own-code caller specific to the growing memory keeps most of it.

// WholeHeap names the series of the whole heap (every sample).
const WholeHeap = "(whole heap)"

// maxNodes bounds how many call-graph nodes a detector follows, so memory
// stays bounded on a target with a huge call graph.
const maxNodes = 2000

// minExplained is the share of a node's growth that suspects already
// named below it must explain for the node to add nothing: a node whose
// growth comes mostly from one named site is that site's, but a site that
// happens to pass among several that grow together (a sampled site's share
// wanders) must not hide where they come together.
const minExplained = 0.8

// mostlyExplained is the share that makes a growing node decided (not
// left undecided) once suspects below it are named.
const mostlyExplained = 0.5

// nodeSample accumulates, during one heap snapshot, a node's values.
type nodeSample struct {
	inuse, alloc, objs float64
	parts              map[string]float64 // in-use bytes by the site below it
	stack              []string
	weight             float64
}

// nodeAccumulator collects one heap snapshot's values per node.
type nodeAccumulator map[string]*nodeSample

// add counts one heap sample for every own-code function on its stack
// (each once, however often recursion repeats it).
func (d *Detector) addToNodes(acc nodeAccumulator, stack []string, site string, inuse, alloc, objs float64) {
	seen := map[string]bool{}
	for _, fn := range stack {
		if seen[fn] || !d.isOwn(fn) {
			continue
		}
		seen[fn] = true
		ns := acc[fn]
		if ns == nil {
			if _, known := d.nodes.sites[siteKey{kind: KindHeap, function: fn}]; !known && len(d.nodes.sites)+len(acc) >= maxNodes {
				continue
			}
			ns = &nodeSample{parts: map[string]float64{}}
			acc[fn] = ns
		}
		ns.inuse += inuse
		ns.alloc += alloc
		ns.objs += objs
		if inuse > 0 {
			ns.parts[site] += inuse
		}
		if inuse > ns.weight {
			ns.stack, ns.weight = stack, inuse
		}
	}
}

// recordNodes appends one heap snapshot to every node's series, and to
// the whole heap's.
func (d *Detector) recordNodes(t float64, acc nodeAccumulator, total nodeSample, id string) {
	ser := &d.nodes
	if d.total != nil {
		ser.replaceTail(d.total)
	} else {
		ser.replaceTail()
	}
	if d.total == nil {
		d.total = &site{key: siteKey{kind: KindHeap, function: WholeHeap}}
		for _, old := range d.nodes.times {
			d.total.points = append(d.total.points, Point{T: old})
			d.total.allocs = append(d.total.allocs, Point{T: old})
			d.total.allocObjs = append(d.total.allocObjs, Point{T: old})
		}
	}
	d.total.points = append(d.total.points, Point{T: t, V: total.inuse})
	d.total.allocs = append(d.total.allocs, Point{T: t, V: total.alloc})
	d.total.allocObjs = append(d.total.allocObjs, Point{T: t, V: total.objs})
	for fn, ns := range acc {
		k := siteKey{kind: KindHeap, function: fn}
		st := ser.sites[k]
		if st == nil {
			if ns.inuse == 0 {
				continue
			}
			st = &site{key: k, own: true}
			for _, old := range ser.times {
				st.points = append(st.points, Point{T: old})
				st.allocs = append(st.allocs, Point{T: old})
				st.allocObjs = append(st.allocObjs, Point{T: old})
			}
			st.partsFirst = ns.parts
			ser.sites[k] = st
		}
		if ns.weight > st.stackWeight || st.stack == nil {
			st.stack, st.stackWeight = ns.stack, ns.weight
		}
	}
	for k, st := range ser.sites {
		ns := acc[k.function]
		if ns == nil {
			ns = &nodeSample{}
		}
		st.points = append(st.points, Point{T: t, V: ns.inuse})
		st.allocs = append(st.allocs, Point{T: t, V: ns.alloc})
		st.allocObjs = append(st.allocObjs, Point{T: t, V: ns.objs})
		st.partsLast = ns.parts
		st.stackWeight *= 0.5
	}
	if ser.firstID == "" {
		ser.firstID = id
	}
	ser.lastID = id
	ser.appendTime(t, d.total)
}

// Part is one site below an aggregated suspect, with its share of the
// growth.
type Part struct {
	Function string  `json:"function"`
	Growth   float64 `json:"growth_bytes"`
	Share    float64 `json:"share"`
}

// partsOf lists the sites below a node that grew between its first
// snapshot and its last, largest first.
func partsOf(st *site) ([]Part, float64) {
	var parts []Part
	total := 0.0
	for fn, last := range st.partsLast {
		if g := last - st.partsFirst[fn]; g > 0 {
			parts = append(parts, Part{Function: fn, Growth: g})
			total += g
		}
	}
	sort.Slice(parts, func(i, j int) bool {
		if parts[i].Growth != parts[j].Growth {
			return parts[i].Growth > parts[j].Growth
		}
		return parts[i].Function < parts[j].Function
	})
	for i := range parts {
		parts[i].Share = round(parts[i].Growth / total)
		parts[i].Growth = round(parts[i].Growth)
	}
	return parts, total
}

// named is heap growth already named by a suspect: the sites it covers
// (one for a site, its parts for an aggregated suspect) and how much they
// grew.
type named struct {
	parts  map[string]bool
	growth float64
}

// namedOf returns the heap growth the suspects name, those of the given
// confidences only when any are given.
func namedOf(suspects []Suspect, confidences ...string) []named {
	var out []named
	for _, s := range suspects {
		if s.Kind != KindHeap || (len(confidences) > 0 && !slices.Contains(confidences, s.Confidence)) {
			continue
		}
		n := named{parts: map[string]bool{s.Function: true}, growth: s.Evidence.Last - s.Evidence.First}
		if s.Aggregated {
			n.parts, n.growth = map[string]bool{}, 0
			for _, p := range s.Parts {
				n.parts[p.Function] = true
				n.growth += p.Growth
			}
		}
		out = append(out, n)
	}
	return out
}

// explains says whether what is already named explains at least share
// of a node's growth: the named growth whose sites all lie below the node.
func explains(already []named, parts []Part, growth, share float64) bool {
	in := map[string]bool{}
	for _, p := range parts {
		in[p.Function] = true
	}
	explained := 0.0
	for _, a := range already {
		inside := true
		for fn := range a.parts {
			if !in[fn] {
				inside = false
				break
			}
		}
		if inside {
			explained += a.growth
		}
	}
	return explained >= share*growth
}

// nodeSuspects judges the call-graph nodes and returns those whose growth
// the heap suspects already named (sites) do not explain, most specific
// first: nodes are taken in order of how much they allocated, so a
// function specific to the growing memory is named before its callers,
// and a caller adds nothing when what grew below it is already named.
func (d *Detector) nodeSuspects(sites []Suspect) []Suspect {
	accepted := namedOf(sites)
	type candidate struct {
		s         Suspect
		allocated float64
		parts     []Part
		growth    float64
	}
	var cands []candidate
	for _, st := range d.nodes.sites {
		s, ok := d.judge(&d.nodes, st)
		if !ok {
			continue
		}
		parts, growth := partsOf(st)
		n := len(st.allocs)
		cands = append(cands, candidate{s: s, allocated: st.allocs[n-1].V - st.allocs[0].V, parts: parts, growth: growth})
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].allocated != cands[j].allocated {
			return cands[i].allocated < cands[j].allocated
		}
		return cands[i].s.Function < cands[j].s.Function
	})
	var out []Suspect
	for _, c := range cands {
		if c.growth <= 0 || explains(accepted, c.parts, c.growth, minExplained) {
			continue
		}
		c.s.Parts = c.parts
		c.s.Aggregated = true
		if m := d.specificNode(c.s.Function, c.parts, c.growth); m != nil {
			c.s.JudgedAt = c.s.Function
			c.s.Function, c.s.Stack = m.key.function, dedupe(m.stack)
		}
		out = append(out, c.s)
		accepted = append(accepted, namedOf([]Suspect{c.s})...)
	}
	return out
}

// minCovered is the share of a suspect node's growth that a deeper node
// must hold to be named in its place.
const minCovered = 0.9

// specificNode returns, for a node judged to grow, the deepest node on its
// heaviest stack (leaf first, below the node) that holds nearly all of its
// growth (minCovered): the own code specific to the growing memory, where
// a caller on every stack (a router, a middleware, a thin wrapper) passed
// the test because it holds the growth too. nil when no node below it does.
func (d *Detector) specificNode(judged string, parts []Part, growth float64) *site {
	st := d.nodes.sites[siteKey{kind: KindHeap, function: judged}]
	if st == nil {
		return nil
	}
	for _, fn := range st.stack {
		if fn == judged {
			return nil
		}
		m := d.nodes.sites[siteKey{kind: KindHeap, function: fn}]
		if m == nil {
			continue
		}
		held := 0.0
		for _, p := range parts {
			held += max(0, m.partsLast[p.Function]-m.partsFirst[p.Function])
		}
		if held >= minCovered*growth {
			return m
		}
	}
	return nil
}
