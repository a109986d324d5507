package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/leaklab/leaklab/leaks"
)

// startSample runs a catalog service in-process on 127.0.0.1:0.
func startSample(t *testing.T, name string, fixed bool) string {
	t.Helper()
	svc, err := leaks.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := leaks.Start(context.Background(), svc, leaks.Options{Addr: "127.0.0.1:0", Fixed: fixed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return srv.URL()
}

// Thresholds against a real sample service: a generous set passes (exit
// 0), an impossible one fails (exit 3), each listed as passed or failed
// in the text and the JSON report.
func TestLoadThresholdsAgainstSampleService(t *testing.T) {
	url := startSample(t, "unbounded-cache", true) + "/product?id={i}"

	streams, out, errOut := testStreams()
	code := run([]string{"load", "-n", "200", "-c", "2", "--threshold", "p99<10s", "--threshold", "errors<1%", "--threshold", "rps>1", url}, streams)
	if code != exitOK {
		t.Fatalf("exit %d with thresholds any run meets; stderr %q\n%s", code, errOut, out)
	}
	for _, want := range []string{"Thresholds:", "passed  p99<10s", "passed  errors<1%", "passed  rps>1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}

	streams, out, errOut = testStreams()
	code = run([]string{"load", "-n", "200", "-c", "2", "--output", "json", "--threshold", "p50<1ns", "--threshold", "errors<=0", url}, streams)
	if code != exitFound {
		t.Fatalf("exit %d with p50<1ns, want %d; stderr %q", code, exitFound, errOut)
	}
	var report struct {
		Requests   int64 `json:"requests"`
		Thresholds []struct {
			Expr   string  `json:"expr"`
			Actual float64 `json:"actual"`
			Passed bool    `json:"passed"`
		} `json:"thresholds"`
	}
	if err := json.Unmarshal(out.Bytes(), &report); err != nil {
		t.Fatalf("no JSON report: %v\n%s", err, out)
	}
	if report.Requests != 200 || len(report.Thresholds) != 2 {
		t.Fatalf("report %+v: want 200 requests and 2 thresholds", report)
	}
	if th := report.Thresholds[0]; th.Expr != "p50<1ns" || th.Passed || th.Actual <= 0 {
		t.Errorf("p50<1ns: %+v, want failed with a positive p50", th)
	}
	if th := report.Thresholds[1]; th.Expr != "errors<=0" || !th.Passed {
		t.Errorf("errors<=0: %+v, want passed", th)
	}
}

// A threshold that does not parse: one line, exit 2, and no load sent
// (the target below would refuse every request and exit 1).
func TestLoadBadThresholdIsUsageError(t *testing.T) {
	for _, expr := range []string{"p99", "p99<fast", "latency<1s", "errors<1%%"} {
		streams, out, errOut := testStreams()
		code := run([]string{"load", "-n", "5", "--threshold", "p99<1s", "--threshold", expr, "http://127.0.0.1:1/"}, streams)
		if code != exitUsage {
			t.Errorf("--threshold %q: exit %d, want %d", expr, code, exitUsage)
		}
		msg := strings.TrimSpace(errOut.String())
		if !strings.Contains(msg, "invalid threshold") || strings.Contains(msg, "\n") {
			t.Errorf("--threshold %q: stderr %q, want one line naming the threshold", expr, msg)
		}
		if out.Len() != 0 {
			t.Errorf("--threshold %q: a report was written: %q", expr, out)
		}
	}
}
