package collect

import (
	"fmt"
	"io"
	"time"

	"github.com/leaklab/leaklab/internal/bytesize"
)

// WriteText writes the summary: the totals on one line, then a line per
// pull target.
func (s Summary) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "collected for %s: %d captures, %d failures, %s stored", time.Duration(s.Seconds*float64(time.Second)).Round(time.Second), s.Captures, s.Failures, bytesize.Format(s.Bytes))
	if s.Pushes > 0 || s.PushesRejected > 0 {
		fmt.Fprintf(w, "; %d pushes accepted, %d rejected", s.Pushes, s.PushesRejected)
	}
	if s.Forwarded > 0 || s.ForwardFailed > 0 {
		fmt.Fprintf(w, "; %d forwarded, %d not", s.Forwarded, s.ForwardFailed)
	}
	if s.Pruned > 0 {
		fmt.Fprintf(w, "; %d pruned by retention", s.Pruned)
	}
	if s.Discarded > 0 {
		fmt.Fprintf(w, "; %d in-flight captures discarded at shutdown", s.Discarded)
	}
	fmt.Fprintln(w)
	for _, su := range s.Suspects {
		fmt.Fprintf(w, "suspect %s %s %s (%s, %s)\n", su.Target, su.Kind, su.Function, su.Confidence, suspectGrowth(su))
	}
	for _, t := range s.Targets {
		line := fmt.Sprintf("  %-32s %5d captures %5d failures %10s", t.Target, t.Captures, t.Failures, bytesize.Format(t.Bytes))
		if t.Service != "" {
			line += "  " + t.Service
		}
		if t.LastError != "" && t.Failures > 0 {
			line += "  last error: " + t.LastError
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}

func suspectGrowth(s Suspect) string {
	if s.Unit == "bytes" {
		return bytesize.Format(int64(s.GrowthPerMinute)) + "/min"
	}
	return fmt.Sprintf("%.1f %s/min", s.GrowthPerMinute, s.Unit)
}
