package collect

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// probe asks the target's /metrics for its process start time
// (process_start_time_seconds, client_golang's process collector) and main
// module (go_build_info's path label), which tell a restarted or replaced
// process from the one before, and its own code. Best effort: a target
// without them, or that does not answer, gives zero values, and restarts
// are then told by its heap profiles alone.
func (f *fleet) probe(ctx context.Context, target string, timeout time.Duration) process {
	ctx, cancel := context.WithTimeout(ctx, min(timeout, 5*time.Second))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(target, "/")+"/metrics", nil)
	if err != nil {
		return process{}
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := f.client.Do(req)
	if err != nil {
		return process{}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return process{}
	}
	return parseProcessMetrics(io.LimitReader(resp.Body, probeLimit))
}

// parseProcessMetrics reads the two metrics of a process's identity from
// Prometheus text exposition, stopping once both are found.
func parseProcessMetrics(r io.Reader) process {
	var pr process
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() && (pr.start == 0 || pr.module == "") {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "process_start_time_seconds "):
			if v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, "process_start_time_seconds ")), 64); err == nil && v > 0 {
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
	return pr
}
