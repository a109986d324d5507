package watch

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/leaklab/leaklab/profiles"
	"github.com/leaklab/leaklab/profiles/retainers"
)

// Attributions of a heap suspect's retainer chain.
const (
	// AttributionAllocation: the chain holds objects that the heap
	// profile sampled in allocation stacks through the suspect's function.
	AttributionAllocation = "allocation"
	// AttributionOverall: no growing chain held such an object; the chain
	// is the one that grew most overall.
	AttributionOverall = "overall"
)

// RetainerOptions turn on retainer snapshots (package retainers) at the
// first and the last heap snapshot of a watch of a process on this
// machine, which tie each heap suspect to the reference chain that keeps
// its memory alive. Each snapshot stops the target for a moment.
type RetainerOptions struct {
	// MaxPause refuses a snapshot whose estimated pause is longer; 0 means
	// no limit (retainers.Options.MaxPause).
	MaxPause time.Duration
}

// Retainers reports a watch's retainer snapshots.
type Retainers struct {
	PID int `json:"pid,omitempty"`
	// FirstID and LastID are the snapshots' store IDs, when stored.
	FirstID string `json:"first_id,omitempty"`
	LastID  string `json:"last_id,omitempty"`
	// PauseSeconds is how long each snapshot stopped the target.
	PauseSeconds []float64 `json:"pause_seconds"`
	// Off says why suspects carry no chain, when they do not.
	Off   string            `json:"off,omitempty"`
	first *retainers.Report // the first snapshot, until the last
	scan  func() (*retainers.Report, error)
}

// SuspectRetainer is the reference chain that grew with a heap suspect
// between the first and the last retainer snapshot.
type SuspectRetainer struct {
	Chain         []string `json:"chain"` // root first
	BytesGrowth   int64    `json:"bytes_growth"`
	ObjectsGrowth int64    `json:"objects_growth"`
	// Attribution is AttributionAllocation or AttributionOverall.
	Attribution string `json:"attribution"`
}

// startRetainers prepares the snapshots of the process listening at
// base; a target that is not on this machine turns them off with the
// reason, not the watch.
func startRetainers(ctx context.Context, base string, opts Options, rep *Report) {
	if opts.Retainers == nil {
		return
	}
	r := &Retainers{PauseSeconds: []float64{}}
	rep.Retainers = r
	pid, err := retainers.PIDForURL(base)
	if err != nil {
		// a watch has no PID to be given instead
		r.Off = strings.TrimSuffix(err.Error(), "; give its PID")
		return
	}
	r.PID = pid
	r.scan = func() (*retainers.Report, error) {
		return retainers.Scan(ctx, pid, retainers.Options{MaxPause: opts.Retainers.MaxPause})
	}
}

// takeRetainers takes the first or the last retainer snapshot, stores it
// and keeps what attribution needs.
func takeRetainers(opts Options, rep *Report, last bool) {
	r := rep.Retainers
	if r == nil || r.scan == nil || r.Off != "" || (last && r.first == nil) {
		return
	}
	snap, err := r.scan()
	if err != nil {
		// the refusals name the retainers command's flag
		r.Off = "the retainer snapshot failed: " + strings.ReplaceAll(oneLine(err.Error()), "--max-pause", "--retainers-max-pause")
		return
	}
	r.PauseSeconds = append(r.PauseSeconds, round(snap.PauseSeconds))
	id := ""
	if opts.Store != nil {
		meta, err := opts.Store.Save(snap.Captured(rep.Target))
		if err != nil {
			r.Off = "saving the retainer snapshot: " + oneLine(err.Error())
			return
		}
		id = meta.ID
	}
	if !last {
		r.first, r.FirstID = snap, id
		return
	}
	r.LastID = id
	if !attributeRetainers(rep.Suspects, r.first, snap) {
		r.Off = "no reference chain grew between the two retainer snapshots"
	}
	r.first = nil
}

// finishRetainers says why there are no chains when the watch ended
// before its last snapshot.
func finishRetainers(rep *Report) {
	if r := rep.Retainers; r != nil && r.Off == "" && len(r.PauseSeconds) < 2 {
		r.Off = "the watch ended before its last retainer snapshot"
		r.first = nil
	}
}

// attributeRetainers gives each heap suspect the chain whose growth is
// most its own: among the chains that grew, the one with the most growth
// times the share of its sampled objects allocated under the suspect's
// function; when no growing chain holds such an object, the chain that
// grew most overall. It reports whether any chain grew.
func attributeRetainers(suspects []Suspect, first, last *retainers.Report) bool {
	grown := retainers.Growth(first.Chains, last.Chains)
	if len(grown) == 0 {
		return false
	}
	sampled := map[string]retainers.Chain{}
	for _, c := range last.Chains {
		if c.SampledBytes > 0 {
			sampled[strings.Join(c.Chain, "\x00")] = c
		}
	}
	for i := range suspects {
		s := &suspects[i]
		if s.Kind != KindHeap {
			continue
		}
		best, bestScore := -1, 0.0
		for j, g := range grown {
			c := sampled[strings.Join(g.Chain, "\x00")]
			if c.AllocatedIn[s.Function] == 0 {
				continue
			}
			if score := float64(g.DeltaBytes) * float64(c.AllocatedIn[s.Function]) / float64(c.SampledBytes); score > bestScore {
				best, bestScore = j, score
			}
		}
		attribution := AttributionAllocation
		if best < 0 {
			best, attribution = 0, AttributionOverall
		}
		g := grown[best]
		s.Retainer = &SuspectRetainer{Chain: g.Chain, BytesGrowth: g.DeltaBytes, ObjectsGrowth: g.DeltaObjects, Attribution: attribution}
	}
	return true
}

func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// writeRetainer writes a heap suspect's chain line of the text report.
func writeRetainer(w interface{ Write([]byte) (int, error) }, s Suspect) {
	r := s.Retainer
	if r == nil {
		return
	}
	fmt.Fprintf(w, "      held by: %s objects, %s growth via %s\n", signed(r.ObjectsGrowth), formatValue(float64(r.BytesGrowth), "bytes", true), strings.Join(shortChain(r.Chain, 8), " → "))
	if r.Attribution == AttributionOverall {
		fmt.Fprintf(w, "      (not attributed: no growing chain holds an object the heap profile sampled under %s; this is the chain that grew most overall)\n", profiles.ShortName(s.Function))
		return
	}
	fmt.Fprintf(w, "      (attributed by allocation site: this chain holds objects the heap profile sampled under %s)\n", profiles.ShortName(s.Function))
}

func signed(n int64) string {
	if n > 0 {
		return fmt.Sprintf("+%d", n)
	}
	return fmt.Sprint(n)
}

// shortChain keeps a long chain's root and its last hops: where the
// memory is held, and from where.
func shortChain(chain []string, n int) []string {
	if len(chain) <= n {
		return chain
	}
	out := []string{chain[0], fmt.Sprintf("… %d hops …", len(chain)-n)}
	return append(out, chain[len(chain)-n+1:]...)
}

// writeRetainersNote writes the report's line about retainer snapshots.
func writeRetainersNote(w interface{ Write([]byte) (int, error) }, r *Report) {
	rs := r.Retainers
	if rs == nil {
		return
	}
	if rs.Off != "" {
		fmt.Fprintf(w, "\nNo reference chains: %s.\n", strings.TrimSuffix(rs.Off, "."))
		return
	}
	pauses := make([]string, len(rs.PauseSeconds))
	for i, p := range rs.PauseSeconds {
		pauses[i] = time.Duration(p * float64(time.Second)).Round(time.Millisecond).String()
	}
	fmt.Fprintf(w, "\nRetainer snapshots of PID %d at the first and the last heap snapshot (paused it %s)", rs.PID, strings.Join(pauses, " and "))
	if rs.FirstID != "" {
		fmt.Fprintf(w, "; compare them: leaklab diff %s %s --by stack", rs.FirstID, rs.LastID)
	}
	fmt.Fprintln(w, ".")
}
