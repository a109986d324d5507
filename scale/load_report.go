package scale

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// LoadReport is a load run as the JSON contract of 'leaklab load'
// (DESIGN.md) has it; fields may be added, never renamed.
type LoadReport struct {
	URL                  string            `json:"url"`
	Method               string            `json:"method"`
	Model                Model             `json:"model"`
	Connections          int               `json:"connections"`
	Rate                 float64           `json:"rate,omitempty"`
	Requests             int64             `json:"requests"`
	Responses            int64             `json:"responses"`
	Errors               int64             `json:"errors"`
	ErrorClasses         map[string]int64  `json:"error_classes"`
	ErrorExamples        map[string]string `json:"error_examples,omitempty"`
	DurationSeconds      float64           `json:"duration_seconds"`
	RPS                  float64           `json:"rps"`
	Latency              LatencySeconds    `json:"latency_seconds"`
	Status               map[string]int64  `json:"status"`
	Schedule             *LoadSchedule     `json:"schedule,omitempty"` // open model only
	Connects             int64             `json:"connects"`
	CPUSeconds           float64           `json:"generator_cpu_seconds"`
	CPUSecondsPerRequest float64           `json:"generator_cpu_seconds_per_request"`
	Interrupted          bool              `json:"interrupted,omitempty"`
	Engine               string            `json:"engine"`
	Thresholds           []ThresholdReport `json:"thresholds,omitempty"`
}

// ThresholdReport is one --threshold, checked at the end of the run.
type ThresholdReport struct {
	Expr   string  `json:"expr"`
	Metric string  `json:"metric"`
	Limit  float64 `json:"limit"`
	Actual float64 `json:"actual"`
	Passed bool    `json:"passed"`
	Why    string  `json:"why,omitempty"`
}

// LoadSchedule says how well the open model kept its schedule.
type LoadSchedule struct {
	Scheduled        int64   `json:"scheduled"`
	Late             int64   `json:"late"`
	Unsent           int64   `json:"unsent"`
	LateAfterSeconds float64 `json:"late_after_seconds"`
}

// LatencySeconds are latency quantiles in seconds.
type LatencySeconds struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Report returns the run as its JSON contract.
func (res *LoadResult) Report() LoadReport {
	r := LoadReport{
		URL: res.URL, Method: res.Method, Model: res.Model, Connections: res.Connections, Rate: res.Rate,
		Requests: res.Requests, Responses: res.Responses, Errors: res.Errors,
		ErrorClasses: map[string]int64{}, Status: map[string]int64{},
		DurationSeconds: res.Duration.Seconds(), RPS: res.RPS,
		Latency: LatencySeconds{
			P50: res.LatencyAt(0.50).Seconds(), P90: res.LatencyAt(0.90).Seconds(), P99: res.LatencyAt(0.99).Seconds(),
			P999: res.LatencyAt(0.999).Seconds(), Max: res.MaxLatency().Seconds(),
		},
		Connects:   res.Connects,
		CPUSeconds: res.GeneratorCPU.Seconds(), CPUSecondsPerRequest: res.CPUPerRequest().Seconds(),
		Interrupted: res.Interrupted, Engine: res.Engine,
	}
	if res.Model == Open {
		r.Schedule = &LoadSchedule{Scheduled: res.Scheduled, Late: res.Late, Unsent: res.Unsent, LateAfterSeconds: LateAfter.Seconds()}
	}
	if res.Latency.TotalCount() > 0 {
		r.Latency.Mean = res.Latency.Mean() / 1e9
	}
	for _, c := range ErrorClasses() {
		r.ErrorClasses[c.String()] = res.ErrorsByClass[c]
	}
	if len(res.ErrorExamples) > 0 {
		r.ErrorExamples = map[string]string{}
		for c, msg := range res.ErrorExamples {
			r.ErrorExamples[c.String()] = msg
		}
	}
	for code, n := range res.Status {
		r.Status[strconv.Itoa(code)] = n
	}
	return r
}

// WriteText writes the run laid out like wrk's report, so its users find
// things where they expect them.
func (res *LoadResult) WriteText(w io.Writer) error {
	model := fmt.Sprintf("%d connections, closed model", res.Connections)
	if res.Model == Open {
		model = fmt.Sprintf("%g requests/s on %d connections, open model", res.Rate, res.Connections)
	}
	fmt.Fprintf(w, "%s %s\n  %s\n", res.Method, res.URL, model)
	if res.Interrupted {
		fmt.Fprintln(w, "  interrupted: partial results")
	}
	if res.Responses > 0 {
		fmt.Fprintln(w, "  Latency Distribution")
		for _, q := range []struct {
			label string
			d     time.Duration
		}{
			{"50%", res.LatencyAt(0.50)}, {"90%", res.LatencyAt(0.90)}, {"99%", res.LatencyAt(0.99)},
			{"99.9%", res.LatencyAt(0.999)}, {"max", res.MaxLatency()}, {"mean", time.Duration(res.Latency.Mean())},
		} {
			fmt.Fprintf(w, "  %7s  %9s\n", q.label, formatLatency(q.d))
		}
		if res.Model == Open {
			fmt.Fprintln(w, "  (measured from each request's scheduled time)")
		}
	}
	fmt.Fprintf(w, "  %d requests in %.2fs, %d errors\n", res.Requests, res.Duration.Seconds(), res.Errors)
	if len(res.Status) > 0 {
		codes := make([]string, 0, len(res.Status))
		for _, c := range sortedStatusCodes(res.Status) {
			codes = append(codes, fmt.Sprintf("[%d] %d", c, res.Status[c]))
		}
		fmt.Fprintf(w, "  Status codes:   %s\n", strings.Join(codes, ", "))
	}
	if res.Errors > 0 {
		fmt.Fprintf(w, "  Errors:         %s\n", res.ErrorSummary())
		for _, c := range ErrorClasses() {
			if msg, ok := res.ErrorExamples[c]; ok {
				fmt.Fprintf(w, "    first %s: %s\n", c, msg)
			}
		}
	}
	if res.Model == Open {
		fmt.Fprintf(w, "  Schedule:       %d scheduled, %d sent late (>%s after their time), %d not sent before the end\n",
			res.Scheduled, res.Late, LateAfter, res.Unsent)
	}
	fmt.Fprintf(w, "  Generator:      %s CPU per request (%.2fs in all), %d connections opened, %s\n",
		formatLatency(res.CPUPerRequest()), res.GeneratorCPU.Seconds(), res.Connects, res.Engine)
	_, err := fmt.Fprintf(w, "Requests/sec: %10.2f\n", res.RPS)
	return err
}

// ErrorSummary lists the non-zero error classes: "refused 10, timeout 2",
// or "none".
func (res *LoadResult) ErrorSummary() string {
	var parts []string
	for _, c := range ErrorClasses() {
		if n := res.ErrorsByClass[c]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", c, n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func sortedStatusCodes(m map[int]int64) []int {
	codes := make([]int, 0, len(m))
	for c := range m {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	return codes
}

// formatLatency prints a duration with two decimals in a unit that suits it.
func formatLatency(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.2fus", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}
