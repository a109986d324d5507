package scale

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText writes the report as the tables 'leaklab scale' prints.
func (r *Report) WriteText(w io.Writer) error {
	ka := "keep-alive"
	if !r.KeepAlive {
		ka = "a new connection per request"
	}
	fmt.Fprintf(w, "%s: GET %s, %d connections (%s), %d runs per strategy of %s after %s warm-up, interleaved\n\n",
		r.Target, r.Path, r.Connections, ka, r.RunsPerStrategy, seconds(r.DurationSeconds), seconds(r.WarmupSeconds))

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "strategy\tprocesses\treq/s median\t95% CI\tp50\tp99\tCPU/req\tpeak RSS\terrors\trestarts\t")
	for _, s := range r.Results {
		ci := fmt.Sprintf("%.0f–%.0f", s.RPSCILow, s.RPSCIHigh)
		if s.RPSCIConfidence < Confidence {
			ci += fmt.Sprintf(" (%.0f%%)", 100*s.RPSCIConfidence)
		}
		fmt.Fprintf(tw, "%s\t%d × GOMAXPROCS=%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t\n",
			s.Strategy, s.Workers, s.GOMAXPROCS, s.RPSMedian, ci,
			dur(s.P50SecondsMedian), dur(s.P99SecondsMedian), dur(s.CPUSecondsPerRequestMedian),
			mib(s.PeakRSSBytesMax), s.Errors, s.Restarts)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range r.Results {
		if s.WorkersGivenUp > 0 {
			fmt.Fprintf(w, "%s: %d worker(s) crashed %d times in a row and were not restarted; those runs had fewer workers than asked\n",
				s.Strategy, s.WorkersGivenUp, crashLoopLimit)
		}
		if s.MasterCPUSeconds > 0 {
			fmt.Fprintf(w, "%s: CPU/req includes the master's, which accepted every connection and handed it on: %.0f%% of the total (its memory is in leaklab's process, not in peak RSS)\n",
				s.Strategy, 100*s.MasterCPUSeconds/(s.MasterCPUSeconds+s.WorkerCPUSeconds))
		}
		if s.WarmupRestarts > 0 {
			fmt.Fprintf(w, "%s: %d worker restart(s) during the warm-ups (not in the restarts column)\n", s.Strategy, s.WarmupRestarts)
		}
	}

	var cmp []StrategyResult
	for _, s := range r.Results {
		if s.VsBaseline != nil {
			cmp = append(cmp, s)
		}
	}
	if len(cmp) > 0 {
		fmt.Fprintf(w, "\nagainst %s (Mann-Whitney U test, alpha 0.05):\n", r.Baseline)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, s := range cmp {
			fmt.Fprintf(tw, "  %s\treq/s %s\tp99 %s\n", s.Strategy, s.VsBaseline.RPS.Text, s.VsBaseline.P99.Text)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	fmt.Fprintf(w, "\nspread over the workers (share of connections / of requests, all runs):\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range r.Results {
		if s.Spread == nil {
			fmt.Fprintf(tw, "  %s\tunknown: the workers do not report counts (%s)\n", s.Strategy, EnvStatsFD)
			continue
		}
		var parts []string
		for _, ws := range s.Spread {
			parts = append(parts, fmt.Sprintf("#%d %2.0f%% / %2.0f%%", ws.Index, 100*ws.ConnectionShare, 100*ws.RequestShare))
		}
		fmt.Fprintf(tw, "  %s\t%s\n", s.Strategy, strings.Join(parts, "   "))
	}
	return tw.Flush()
}

func seconds(s float64) string { return (time.Duration(s * float64(time.Second))).String() }

// dur prints a duration in seconds with three significant digits.
func dur(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d == 0:
		return "0"
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("%.3gµs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.3gms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.3gs", d.Seconds())
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
