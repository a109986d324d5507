package scale

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/leaklab/leaklab/internal/opterr"
)

// Threshold is a pass/fail condition on a load run, in k6's spirit:
// "p99<200ms", "errors<1%", "rps>1000". A CI job sets the exit code from
// them.
type Threshold struct {
	// Expr is the threshold as written.
	Expr string
	// Metric is what is compared: a latency quantile (p50, p90, p95, p99,
	// p99.9...), max or mean latency, errors (a share when the limit ends
	// in %, else a count) or rps.
	Metric string
	// Op is one of <, <=, >, >=.
	Op string
	// Limit is in the metric's unit: seconds for latencies, a fraction
	// (0.01 for 1%) or a count for errors, requests per second for rps.
	Limit float64
	// quantile is the quantile (0..1) of a pNN metric.
	quantile float64
	// share is set for an errors threshold written with %.
	share bool
}

// ThresholdError says a threshold expression does not parse.
type ThresholdError struct {
	Expr   string
	Reason string
}

func (e *ThresholdError) Error() string {
	return fmt.Sprintf("invalid threshold %q: %s; want METRIC<VALUE or METRIC>VALUE, e.g. p99<200ms, errors<1%%, rps>1000 (metrics: p50, p90, p99, p99.9, max, mean, errors, rps)", e.Expr, e.Reason)
}

// ParseThreshold parses one threshold expression.
func ParseThreshold(expr string) (Threshold, error) {
	t := Threshold{Expr: expr}
	s := strings.ReplaceAll(expr, " ", "")
	i := strings.IndexAny(s, "<>")
	if i <= 0 {
		return t, &ThresholdError{expr, "no metric before < or >"}
	}
	t.Metric = strings.ToLower(s[:i])
	t.Op = s[i : i+1]
	rest := s[i+1:]
	if strings.HasPrefix(rest, "=") {
		t.Op += "="
		rest = rest[1:]
	}
	if rest == "" {
		return t, &ThresholdError{expr, "no value after " + t.Op}
	}
	if strings.ContainsAny(rest, "<>=") {
		return t, &ThresholdError{expr, "more than one comparison"}
	}
	switch m := t.Metric; {
	case m == "max" || m == "mean" || isQuantile(m):
		if isQuantile(m) {
			q, err := strconv.ParseFloat(m[1:], 64)
			if err != nil || q <= 0 || q > 100 {
				return t, &ThresholdError{expr, fmt.Sprintf("%s is not a percentile between p0 and p100", m)}
			}
			t.quantile = q / 100
		}
		d, err := time.ParseDuration(rest)
		if err != nil || d < 0 {
			return t, &ThresholdError{expr, fmt.Sprintf("latency %q is not a duration such as 200ms or 1.5s", rest)}
		}
		t.Limit = d.Seconds()
	case m == "errors":
		num, pct := strings.CutSuffix(rest, "%")
		v, err := strconv.ParseFloat(num, 64)
		if err != nil || v < 0 || math.IsInf(v, 0) || (pct && v > 100) {
			return t, &ThresholdError{expr, fmt.Sprintf("errors %q is not a percentage (1%%) or a count (10)", rest)}
		}
		if pct {
			t.Limit, t.share = v/100, true
		} else {
			t.Limit = v
		}
	case m == "rps":
		v, err := strconv.ParseFloat(rest, 64)
		if err != nil || v < 0 || math.IsInf(v, 0) {
			return t, &ThresholdError{expr, fmt.Sprintf("rps %q is not a number of requests per second", rest)}
		}
		t.Limit = v
	default:
		return t, &ThresholdError{expr, fmt.Sprintf("unknown metric %q", t.Metric)}
	}
	return t, nil
}

func isQuantile(m string) bool { return len(m) > 1 && m[0] == 'p' }

// ParseThresholds parses every expression, stopping at the first that
// does not parse: an *opterr.Error wrapping its *ThresholdError.
func ParseThresholds(exprs []string) ([]Threshold, error) {
	out := make([]Threshold, 0, len(exprs))
	for _, e := range exprs {
		t, err := ParseThreshold(e)
		if err != nil {
			return nil, &opterr.Error{Option: "thresholds", Err: err}
		}
		out = append(out, t)
	}
	return out, nil
}

// ThresholdResult is one threshold checked against a run.
type ThresholdResult struct {
	Threshold
	// Actual is the run's value of the metric, in the threshold's unit.
	Actual float64
	Passed bool
	// Why is set when the metric could not be measured (no response to
	// take a latency from, no request to take an error share from): such a
	// threshold fails.
	Why string
}

// Check compares the run against the threshold.
func (t Threshold) Check(r *LoadResult) ThresholdResult {
	res := ThresholdResult{Threshold: t}
	hasLatency := r.Latency != nil && r.Latency.TotalCount() > 0
	switch {
	case t.quantile > 0:
		res.Actual = r.LatencyAt(t.quantile).Seconds()
	case t.Metric == "max":
		res.Actual = r.MaxLatency().Seconds()
	case t.Metric == "mean":
		if hasLatency {
			res.Actual = r.Latency.Mean() / 1e9
		}
	case t.Metric == "errors" && t.share:
		if r.Requests == 0 {
			res.Why = "no request finished"
			return res
		}
		res.Actual = float64(r.Errors) / float64(r.Requests)
	case t.Metric == "errors":
		res.Actual = float64(r.Errors)
	case t.Metric == "rps":
		res.Actual = r.RPS
	}
	if (t.quantile > 0 || t.Metric == "max" || t.Metric == "mean") && !hasLatency {
		res.Why = "no response to measure a latency from"
		return res
	}
	switch t.Op {
	case "<":
		res.Passed = res.Actual < t.Limit
	case "<=":
		res.Passed = res.Actual <= t.Limit
	case ">":
		res.Passed = res.Actual > t.Limit
	case ">=":
		res.Passed = res.Actual >= t.Limit
	}
	return res
}

// CheckThresholds checks every threshold against the run.
func CheckThresholds(ts []Threshold, r *LoadResult) []ThresholdResult {
	out := make([]ThresholdResult, len(ts))
	for i, t := range ts {
		out[i] = t.Check(r)
	}
	return out
}

// FormatActual renders the measured value in the threshold's unit.
func (r ThresholdResult) FormatActual() string {
	if r.Why != "" {
		return "not measured: " + r.Why
	}
	switch {
	case r.Metric == "errors" && r.share:
		return fmt.Sprintf("%.3g%%", 100*r.Actual)
	case r.Metric == "errors":
		return strconv.FormatFloat(r.Actual, 'f', 0, 64)
	case r.Metric == "rps":
		return fmt.Sprintf("%.1f", r.Actual)
	}
	return time.Duration(r.Actual * float64(time.Second)).String()
}

// WriteThresholds lists each threshold as passed or failed.
func WriteThresholds(w io.Writer, checked []ThresholdResult) error {
	if len(checked) == 0 {
		return nil
	}
	fmt.Fprintln(w, "Thresholds:")
	for _, c := range checked {
		verdict := "passed"
		if !c.Passed {
			verdict = "FAILED"
		}
		if _, err := fmt.Fprintf(w, "  %-6s  %-16s  %s = %s\n", verdict, c.Expr, c.Metric, c.FormatActual()); err != nil {
			return err
		}
	}
	return nil
}

// ThresholdReports are checked as a LoadReport lists them, and how many
// of them failed.
func ThresholdReports(checked []ThresholdResult) (reports []ThresholdReport, failed int) {
	for _, c := range checked {
		reports = append(reports, ThresholdReport{Expr: c.Expr, Metric: c.Metric, Limit: c.Limit, Actual: c.Actual, Passed: c.Passed, Why: c.Why})
		if !c.Passed {
			failed++
		}
	}
	return reports, failed
}

// Judged is a load run checked against thresholds: its report with each
// threshold's outcome, and how many failed.
type Judged struct {
	Result  *LoadResult
	Report  LoadReport
	Checked []ThresholdResult
	Failed  int
}

// Judge checks res against ts. An interrupted run is judged too: it still
// reports what it measured, as wrk and hey do.
func Judge(res *LoadResult, ts []Threshold) *Judged {
	j := &Judged{Result: res, Report: res.Report(), Checked: CheckThresholds(ts, res)}
	j.Report.Thresholds, j.Failed = ThresholdReports(j.Checked)
	return j
}

// WriteText writes the run's text report, then the thresholds' outcomes.
func (j *Judged) WriteText(w io.Writer) error {
	if err := j.Result.WriteText(w); err != nil {
		return err
	}
	return WriteThresholds(w, j.Checked)
}

// Failure says why the run failed whatever its thresholds: nothing
// answered (an interrupted run's requests still in flight are not
// counted). It is nil when something did.
func (j *Judged) Failure() error {
	res := j.Result
	switch {
	case res.Requests > 0 && res.Responses == 0:
		return fmt.Errorf("no request got a response (%s); is the server up at %s?", res.ErrorSummary(), res.URL)
	case res.Interrupted && res.Responses == 0:
		return fmt.Errorf("interrupted before any request got a response; is the server at %s answering?", res.URL)
	}
	return nil
}
