package collect

import (
	"bufio"
	"context"
	"io"
	"strings"
	"time"

	"github.com/leaklab/leaklab/profiles"
)

// probe asks the target's /metrics for its process start time
// (process_start_time_seconds, client_golang's process collector) and main
// module (go_build_info's path label), which tell a restarted or replaced
// process from the one before, and its own code. Best effort: a target
// without them, or that does not answer, gives zero values, and restarts
// are then told by its heap profiles alone.
func (f *fleet) probe(ctx context.Context, target string, timeout time.Duration) process {
	var pr process
	profiles.ScanMetrics(ctx, f.client, target, min(timeout, 5*time.Second), probeLimit, func(line string) bool {
		pr.read(line)
		return pr.start == 0 || pr.module == ""
	})
	return pr
}

// parseProcessMetrics reads the two metrics of a process's identity from
// Prometheus text exposition, stopping once both are found.
func parseProcessMetrics(r io.Reader) process {
	var pr process
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() && (pr.start == 0 || pr.module == "") {
		pr.read(sc.Text())
	}
	return pr
}

// read takes a process's start time or main module from one line of
// Prometheus text exposition, when the line gives one.
func (pr *process) read(line string) {
	switch {
	case strings.HasPrefix(line, "process_start_time_seconds "):
		if v, ok := profiles.MetricValue(line, "process_start_time_seconds"); ok && v > 0 {
			pr.start = v
		}
	case strings.HasPrefix(line, "go_build_info{"):
		if i := strings.Index(line, `path="`); i >= 0 {
			rest := line[i+len(`path="`):]
			if j := strings.IndexByte(rest, '"'); j > 0 {
				pr.module = rest[:j]
			}
		}
	}
}
