package profiles

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ScanMetrics asks base's /metrics for the Prometheus text exposition and
// calls line with each of its lines, until line returns false, the body
// ends or limit bytes have been read. It is the one reader of targets'
// /metrics (own code from go_build_info, the live heap for watch, the
// runtime's totals for check, a process's identity for collect), so each
// asks for the same format and bounds what it reads the same way.
func ScanMetrics(ctx context.Context, client *http.Client, base string, timeout time.Duration, limit int64, line func(string) bool) error {
	if client == nil {
		client = http.DefaultClient
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/metrics", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := client.Do(req)
	if err != nil {
		return describeNetError(ctx, err, timeout)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // so the connection can be reused
		return fmt.Errorf("%s/metrics answered %s", strings.TrimRight(base, "/"), resp.Status)
	}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, limit))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if !line(sc.Text()) {
			return nil
		}
	}
	return sc.Err()
}

// MetricValue reads an unlabelled sample line, "name value" with an
// optional timestamp after it.
func MetricValue(line, name string) (float64, bool) {
	rest, ok := strings.CutPrefix(line, name+" ")
	if !ok {
		return 0, false
	}
	if i := strings.IndexByte(rest, ' '); i >= 0 {
		rest = rest[:i] // a timestamp follows
	}
	v, err := strconv.ParseFloat(rest, 64)
	return v, err == nil
}
