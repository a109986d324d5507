package retainers

import (
	"fmt"
	"io"

	"github.com/leaklab/leaklab/internal/bytesize"
)

// Shown is a scan's report as 'leaklab retainers' shows it: the report,
// cut to its top chains, plus where the snapshot was saved. As JSON it is
// an output contract.
type Shown struct {
	*Report
	ID   string `json:"id,omitempty"`
	File string `json:"file,omitempty"`
	// TotalChains counts the chains before the cut.
	TotalChains int `json:"total_chains"`
}

// Show is r with at most top chains (all when top is 0), saved as id in
// the store and as file (either may be empty). r is not changed.
func Show(r *Report, top int, id, file string) Shown {
	s := Shown{Report: r, ID: id, File: file, TotalChains: len(r.Chains)}
	if top > 0 && len(r.Chains) > top {
		cp := *r
		cp.Chains = cp.Chains[:top]
		s.Report = &cp
	}
	return s
}

// WriteText writes the scan's summary line, then each chain, root first.
func (r Shown) WriteText(w io.Writer) error {
	share := 0.0
	if r.HeapBytes > 0 {
		share = 100 * float64(r.BytesAttributed) / float64(r.HeapBytes)
	}
	fmt.Fprintf(w, "PID %d (%s, %s): paused %.2fs; %s of %s allocated heap reachable (%.0f%%) from %d roots in %d goroutines\n",
		r.PID, r.Command, r.GoVersion, r.PauseSeconds, bytesize.Format(r.BytesAttributed), bytesize.Format(int64(r.HeapBytes)), share, r.Roots, r.Goroutines)
	if r.ID != "" {
		fmt.Fprintf(w, "saved as %s\n", r.ID)
	}
	for i, c := range r.Chains {
		fmt.Fprintf(w, "\n#%d  %s in %d objects\n", i+1, bytesize.Format(c.Bytes), c.Objects)
		for j, hop := range c.Chain {
			switch {
			case len(c.Chain) == 1:
				fmt.Fprintf(w, "──→ %s\n", hop)
			case j == 0:
				fmt.Fprintf(w, "┬── %s\n", hop)
			case j == len(c.Chain)-1:
				fmt.Fprintf(w, "╰─→ %s\n", hop)
			default:
				fmt.Fprintf(w, "├── %s\n", hop)
			}
		}
	}
	if len(r.Chains) == 0 {
		fmt.Fprintln(w, "\nno heap object is reachable from a root")
	} else if len(r.Chains) < r.TotalChains {
		fmt.Fprintf(w, "\n(%d of %d chains; --top 0 shows all)\n", len(r.Chains), r.TotalChains)
	}
	return nil
}
