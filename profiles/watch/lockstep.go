package watch

import "math"

// One leak, several goroutines. A leaked unit of work often holds more
// than one goroutine: a gRPC watch stream holds its handler, a send loop
// and, through a gateway, a client's receive loop; a network connection
// holds a read loop and a write loop. Each is a goroutine site of its
// own, and each grows by the same count at every snapshot. Listing them
// as six suspects reads as six leaks; they are one, and the report says
// so: the sites that grow in lockstep are listed together, after the one
// that names the leak best.

// Lockstep tolerances: the counts of two sites that are one leak differ,
// at a snapshot, only by the units caught half set up (a goroutine
// profile is taken at once, but a unit's goroutines start one by one).
const (
	lockstepSlack    = 2    // goroutines
	lockstepRelSlack = 0.05 // of the growth so far
	lockstepMinGrow  = 5    // goroutines, over the watch: less is too few steps to compare
	lockstepMaxRatio = 4    // goroutines of one site per goroutine of the other
)

// groupLockstep marks the goroutine suspects that grow in lockstep with
// an earlier one (SameLeakAs) and moves each group together, behind the
// member that names it best: own code first (a stack in own code, or HTTP
// client connections named after the own code that sends the requests),
// then the detector's ranking. Suspects outside any group keep their
// order.
func groupLockstep(suspects []Suspect) []Suspect {
	groups := [][]int{} // indices into suspects, in ranking order
	member := make([]int, len(suspects))
	for i := range member {
		member[i] = -1
	}
	for i, s := range suspects {
		if s.Kind != KindGoroutine {
			continue
		}
		for g, idx := range groups {
			if inLockstep(suspects[idx[0]], s) {
				groups[g] = append(groups[g], i)
				member[i] = g
				break
			}
		}
		if member[i] < 0 {
			member[i] = len(groups)
			groups = append(groups, []int{i})
		}
	}
	out := make([]Suspect, 0, len(suspects))
	for i, s := range suspects {
		g := member[i]
		if g < 0 || len(groups[g]) == 1 {
			out = append(out, s)
			continue
		}
		idx := groups[g]
		if i != idx[0] {
			continue // listed with the group, at its first member's place
		}
		lead := idx[0]
		for _, j := range idx {
			if namesOwnCode(suspects[j]) {
				lead = j
				break
			}
		}
		out = append(out, suspects[lead])
		name := suspects[lead].Function
		for _, j := range idx {
			if j != lead {
				f := suspects[j]
				f.SameLeakAs = name
				out = append(out, f)
			}
		}
	}
	return out
}

// namesOwnCode says whether a suspect is named after the service's own
// code.
func namesOwnCode(s Suspect) bool { return s.OwnCode || s.Connections != "" }

// inLockstep says whether two goroutine suspects' counts moved together at
// every snapshot: the same growth so far, or a small whole multiple of it
// (a unit may hold two goroutines of one site), within a unit or two.
func inLockstep(a, b Suspect) bool {
	if a.Kind != KindGoroutine || b.Kind != KindGoroutine || len(a.Points) != len(b.Points) || len(a.Points) < MinSnapshots {
		return false
	}
	n := len(a.Points)
	ga, gb := a.Points[n-1].V-a.Points[0].V, b.Points[n-1].V-b.Points[0].V
	if ga < lockstepMinGrow || gb < lockstepMinGrow {
		return false
	}
	ratio := ga / gb
	whole := math.Round(math.Max(ratio, 1/ratio))
	if whole > lockstepMaxRatio {
		return false
	}
	if ratio < 1 {
		ratio = 1 / whole
	} else {
		ratio = whole
	}
	for i := range a.Points {
		if a.Points[i].T != b.Points[i].T {
			return false
		}
		da := a.Points[i].V - a.Points[0].V
		db := b.Points[i].V - b.Points[0].V
		if math.Abs(da-ratio*db) > math.Max(1, ratio)*lockstepSlack+lockstepRelSlack*math.Abs(da) {
			return false
		}
	}
	return true
}

// inLockstepWith counts the suspects marked as the same leak as function.
func inLockstepWith(suspects []Suspect, function string) int {
	n := 0
	for _, s := range suspects {
		if s.SameLeakAs == function {
			n++
		}
	}
	return n
}
