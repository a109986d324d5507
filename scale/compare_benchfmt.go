package scale

import (
	"fmt"
	"io"
	"runtime"
)

// WriteBenchfmt writes every run in the Go benchmark format, one line per
// run, so that benchstat can read it: 'benchstat -col /strategy FILE'
// puts the strategies side by side. The iteration count is the number of
// requests; the values are req/s, p50-sec, p99-sec, cpu-sec/req and
// peak-RSS-B.
func (r *Report) WriteBenchfmt(w io.Writer) error {
	fmt.Fprintf(w, "goos: %s\ngoarch: %s\npkg: github.com/leaklab/leaklab/scale\n", runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "target: %s\npath: %s\nconnections: %d\nkeep-alive: %t\nduration: %s\n",
		r.Target, r.Path, r.Connections, r.KeepAlive, seconds(r.DurationSeconds))
	name := "BenchmarkScale"
	for _, run := range r.Runs {
		procs, maxprocs := r.Workers, r.ProcsPerWorker
		if run.Strategy == Single {
			procs, maxprocs = 1, r.Workers
		}
		if _, err := fmt.Fprintf(w, "%s/strategy=%s/procs=%dx%d %d %.2f req/s %.6g p50-sec %.6g p99-sec %.6g cpu-sec/req %d peak-RSS-B\n",
			name, run.Strategy, procs, maxprocs, max(run.Requests, 1), run.RPS, run.P50, run.P99, run.CPUPerRequest, run.PeakRSSBytes); err != nil {
			return err
		}
	}
	return nil
}
