package scale

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestParseThreshold(t *testing.T) {
	for _, tc := range []struct {
		expr   string
		metric string
		op     string
		limit  float64
	}{
		{"p99<200ms", "p99", "<", 0.2},
		{"p50 < 1.5s", "p50", "<", 1.5},
		{"p99.9<=20ms", "p99.9", "<=", 0.02},
		{"max<1s", "max", "<", 1},
		{"mean<300us", "mean", "<", 0.0003},
		{"errors<1%", "errors", "<", 0.01},
		{"errors<=10", "errors", "<=", 10},
		{"rps>1000", "rps", ">", 1000},
		{"RPS>=0.5", "rps", ">=", 0.5},
	} {
		th, err := ParseThreshold(tc.expr)
		if err != nil {
			t.Errorf("ParseThreshold(%q): %v", tc.expr, err)
			continue
		}
		if th.Metric != tc.metric || th.Op != tc.op || th.Limit != tc.limit {
			t.Errorf("ParseThreshold(%q) = %s %s %g, want %s %s %g", tc.expr, th.Metric, th.Op, th.Limit, tc.metric, tc.op, tc.limit)
		}
	}
}

func TestParseThresholdRejects(t *testing.T) {
	for _, expr := range []string{"", "p99", "<200ms", "p99<", "p99<200", "p99<fast", "p0<1s", "p101<1s", "px<1s",
		"errors<1%%", "errors<-1", "errors<150%", "rps>lots", "latency<1s", "p99<<1s", "p99<1s>2s", "p99=1s"} {
		_, err := ParseThreshold(expr)
		var te *ThresholdError
		if !errors.As(err, &te) {
			t.Errorf("ParseThreshold(%q) = %v, want a ThresholdError", expr, err)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "e.g. p99<200ms") {
			t.Errorf("ParseThreshold(%q): %q, want one line with an example", expr, msg)
		}
	}
}

// Thresholds are checked against a real run on a server that answers in
// about 20 ms and fails the requests whose number ends in 3 (one in ten).
func TestThresholdsAgainstARun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		if r.URL.Query().Get("i") != "" && strings.HasSuffix(r.URL.Query().Get("i"), "3") {
			http.Error(w, "no", http.StatusInternalServerError)
			return
		}
	}))
	defer srv.Close()
	res := load(t, LoadOptions{URL: srv.URL + "/?i={i}", Connections: 1, Requests: 40})
	ts, err := ParseThresholds([]string{"p50<10ms", "p50<5s", "max<5s", "errors<1%", "errors<50%", "errors<=4", "rps>100000", "rps>1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []bool{false, true, true, false, true, true, false, true}
	for i, r := range CheckThresholds(ts, res) {
		if r.Passed != want[i] {
			t.Errorf("%s: passed=%v with %s, want %v", r.Expr, r.Passed, r.FormatActual(), want[i])
		}
	}
	// No response at all: a latency threshold cannot pass.
	empty := &LoadResult{Requests: 3, Errors: 3}
	if r := ts[1].Check(empty); r.Passed || r.Why == "" {
		t.Errorf("p50<5s on a run without responses: %+v, want failed with a reason", r)
	}
}

// FirstSeq numbers {i} from where a previous run stopped.
func TestLoadFirstSeq(t *testing.T) {
	seen := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen <- r.URL.Path }))
	defer srv.Close()
	load(t, LoadOptions{URL: srv.URL + "/k/{i}", Connections: 1, Requests: 3, FirstSeq: 100})
	close(seen)
	var got []string
	for p := range seen {
		got = append(got, p)
	}
	if strings.Join(got, ",") != "/k/100,/k/101,/k/102" {
		t.Errorf("paths %v, want /k/100, /k/101, /k/102", got)
	}
}

// ThresholdReports lists every checked threshold and counts the failed.
func TestThresholdReports(t *testing.T) {
	if reps, failed := ThresholdReports(nil); reps != nil || failed != 0 {
		t.Errorf("no thresholds: %v, %d failed; want none (omitted from the JSON)", reps, failed)
	}
	ok, err := ParseThreshold("p99<100ms")
	if err != nil {
		t.Fatal(err)
	}
	bad, err := ParseThreshold("errors<1")
	if err != nil {
		t.Fatal(err)
	}
	reps, failed := ThresholdReports([]ThresholdResult{
		{Threshold: ok, Actual: 0.05, Passed: true},
		{Threshold: bad, Actual: 3, Why: ""},
	})
	if failed != 1 || len(reps) != 2 || reps[0].Expr != "p99<100ms" || !reps[0].Passed || reps[1].Passed || reps[1].Actual != 3 || reps[1].Metric != "errors" {
		t.Errorf("reports %+v, %d failed", reps, failed)
	}
}
