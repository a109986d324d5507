package scale

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/leaklab/leaklab/internal/opterr"
)

func TestJudge(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	res := load(t, LoadOptions{URL: srv.URL + "/", Connections: 1, Requests: 20})
	ts, err := ParseThresholds([]string{"errors<1", "rps<0.001"})
	if err != nil {
		t.Fatal(err)
	}
	j := Judge(res, ts)
	if j.Failed != 1 || len(j.Report.Thresholds) != 2 || !j.Report.Thresholds[0].Passed || j.Report.Thresholds[1].Passed {
		t.Errorf("judged %d failed, thresholds %+v; want errors<1 passed and rps<0.001 failed", j.Failed, j.Report.Thresholds)
	}
	if err := j.Failure(); err != nil {
		t.Errorf("every request answered, yet Failure = %v", err)
	}
	var text bytes.Buffer
	if err := j.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "Requests/sec:") || !strings.Contains(text.String(), "FAILED  rps<0.001") {
		t.Errorf("text lacks the run or the failed threshold:\n%s", &text)
	}

	if _, err := ParseThresholds([]string{"rps>1", "p99<<1"}); !opterr.Is(err) || !errors.As(err, new(*ThresholdError)) {
		t.Errorf("ParseThresholds on a bad expression: %v, want an option error wrapping a ThresholdError", err)
	}

	// Nothing answered: a failure whatever the thresholds say.
	for _, res := range []*LoadResult{
		{URL: srv.URL, Requests: 3, Errors: 3},
		{URL: srv.URL, Interrupted: true},
	} {
		if err := (&Judged{Result: res}).Failure(); err == nil || !strings.Contains(err.Error(), srv.URL) {
			t.Errorf("%+v: Failure = %v, want one naming the server", res, err)
		}
	}
}
