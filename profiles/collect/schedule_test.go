package collect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/profiles"
)

// smallProfile is a valid gzipped heap-like profile with n samples.
func smallProfile(t *testing.T, n int) []byte {
	t.Helper()
	fn := &profile.Function{ID: 1, Name: "main.leak"}
	loc := &profile.Location{ID: 1, Line: []profile.Line{{Function: fn, Line: 7}}}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "inuse_space", Unit: "bytes"}},
		Function:   []*profile.Function{fn},
		Location:   []*profile.Location{loc},
	}
	for i := range n {
		p.Sample = append(p.Sample, &profile.Sample{Location: []*profile.Location{loc}, Value: []int64{int64(i + 1)}})
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestFailureReason feeds failureReason the errors real fetches return,
// from a real service and from loopback servers that misbehave, so the
// reasons follow the profiles package's error types and not its wording.
func TestFailureReason(t *testing.T) {
	svc := startService(t, "abandoned-worker", true, leaks.Options{})
	bomb := gzipBomb(t, 100<<20)
	eleven := smallProfile(t, 11)
	mux := http.NewServeMux()
	mux.HandleFunc("/bomb/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) { w.Write(bomb) })
	mux.HandleFunc("/eleven/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) { w.Write(eleven) })
	mux.HandleFunc("/html/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html><body>sign in</body></html>"))
	})
	mux.HandleFunc("/busy/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) {
		// A status line that happens to use the words the collector once
		// matched: still a status failure.
		http.Error(w, "over the limit (a gzip bomb?)", http.StatusTooManyRequests)
	})
	mux.HandleFunc("/hang/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	refused := "http://" + testbin.FreeAddr(t)

	for _, tc := range []struct {
		name   string
		target string
		limits profiles.Limits
		want   string
	}{
		{"gzip bomb", srv.URL + "/bomb", profiles.Limits{MaxDecompressed: DefaultMaxDecompressed}, "too_large"},
		{"bomb under a small decompressed limit", srv.URL + "/bomb", profiles.Limits{MaxDecompressed: 1 << 20}, "too_large"},
		{"real profile over MaxBytes", svc.URL(), profiles.Limits{MaxBytes: 512}, "too_large"},
		{"too many samples", srv.URL + "/eleven", profiles.Limits{MaxSamples: 10}, "too_large"},
		{"html page", srv.URL + "/html", profiles.Limits{}, "not_profile"},
		{"429 saying 'the limit'", srv.URL + "/busy", profiles.Limits{}, "status"},
		{"hangs", srv.URL + "/hang", profiles.Limits{}, "timeout"},
		{"refused", refused, profiles.Limits{}, "unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			timeout := 20 * time.Second
			if tc.want == "timeout" {
				timeout = 300 * time.Millisecond
			}
			_, err := profiles.Fetch(context.Background(), tc.target, profiles.FetchOptions{
				Type: profiles.TypeHeap, Timeout: timeout, Limits: tc.limits, NoServiceName: true,
			})
			if err == nil {
				t.Fatal("the fetch succeeded")
			}
			if got := failureReason(err); got != tc.want {
				t.Errorf("failureReason(%q) = %s, want %s", err, got, tc.want)
			}
			// Wrapped once more, as a caller might, it is still told apart.
			if got := failureReason(fmt.Errorf("round: %w", err)); got != tc.want {
				t.Errorf("wrapped: failureReason = %s, want %s", got, tc.want)
			}
		})
	}
	// The words alone no longer make an error "too large".
	if got := failureReason(errors.New("profile is larger than 10 bytes, the limit")); got != "unreachable" {
		t.Errorf("an untyped error with the words: %s, want unreachable", got)
	}
}
