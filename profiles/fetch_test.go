package profiles

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/testbin"
)

// A real capture from a real service: the leak shows up between two
// captures, and the metadata says where the profile came from.
func TestFetchFromSampleService(t *testing.T) {
	t.Parallel()
	svc := testbin.StartService(t, "unbounded-cache", false)
	ctx := context.Background()
	base, err := Fetch(ctx, svc.URL, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 400 {
		resp, err := http.Get(fmt.Sprintf("%s/product?id=%d", svc.URL, i))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	cur, err := Fetch(ctx, svc.URL+"/debug/pprof/heap", FetchOptions{Labels: map[string]string{"env": "test"}})
	if err != nil {
		t.Fatal(err)
	}
	if cur.Type != TypeHeap || cur.Target != svc.URL || cur.Service != "unbounded-cache" || cur.Labels["env"] != "test" || cur.Labels["variant"] != "leaky" || cur.Time.IsZero() {
		t.Errorf("metadata %+v", cur.Meta)
	}
	rep, err := Diff(base, cur, DiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const culprit = "github.com/leaklab/leaklab/leaks.(*pageCache).render"
	// 400 pages of 32 KiB (12.5 MiB), after a GC; heap profiles are
	// sampled, so ask for a third of it.
	if rep.Rows[0].Function != culprit || rep.Rows[0].Delta < 4<<20 {
		t.Errorf("top row %+v, want %s growing by ≥4 MiB", rep.Rows[0], culprit)
	}

	gr, err := Fetch(ctx, svc.URL, FetchOptions{Type: TypeGoroutine})
	if err != nil {
		t.Fatal(err)
	}
	if gr.Type != TypeGoroutine || gr.Samples == 0 {
		t.Errorf("goroutine capture %+v", gr.Meta)
	}
	_, err = Fetch(ctx, svc.URL, FetchOptions{Type: TypeGoroutineLeak})
	if !errors.Is(err, ErrNoGoroutineLeakProfile) || !strings.HasPrefix(err.Error(), svc.URL+"/debug/pprof/goroutineleak") {
		t.Errorf("goroutineleak without the experiment: %v", err)
	}
}

func TestProfileURL(t *testing.T) {
	cases := []struct {
		target  string
		opts    FetchOptions
		url     string
		base    string
		typ     string
		wantErr string
	}{
		{target: "http://127.0.0.1:8080", url: "http://127.0.0.1:8080/debug/pprof/heap?gc=1", base: "http://127.0.0.1:8080", typ: "heap"},
		{target: "127.0.0.1:8080/", url: "http://127.0.0.1:8080/debug/pprof/heap?gc=1", base: "http://127.0.0.1:8080", typ: "heap"},
		{target: "http://h:1", opts: FetchOptions{NoGC: true}, url: "http://h:1/debug/pprof/heap", base: "http://h:1", typ: "heap"},
		{target: "http://h:1", opts: FetchOptions{Type: "cpu"}, url: "http://h:1/debug/pprof/profile?seconds=10", base: "http://h:1", typ: "cpu"},
		{target: "http://h:1", opts: FetchOptions{Type: "allocs", Seconds: 5}, url: "http://h:1/debug/pprof/allocs?seconds=5", base: "http://h:1", typ: "allocs"},
		{target: "http://h:1/debug/pprof/goroutine?debug=2", url: "http://h:1/debug/pprof/goroutine", base: "http://h:1", typ: "goroutine"},
		{target: "http://h:1/svc/debug/pprof/profile?seconds=3", url: "http://h:1/svc/debug/pprof/profile?seconds=3", base: "http://h:1/svc", typ: "cpu"},
		{target: "http://h:1/debug/pprof/", opts: FetchOptions{Type: "mutex"}, url: "http://h:1/debug/pprof/mutex", base: "http://h:1", typ: "mutex"},
		{target: "http://h:1/debug/pprof/heap", opts: FetchOptions{Type: "goroutine"}, wantErr: "the URL asks for heap but the type asked for is goroutine"},
		{target: "http://h:1", opts: FetchOptions{Type: "threads"}, wantErr: `unknown profile type "threads"`},
		{target: "ftp://h:1", wantErr: "unsupported scheme"},
		{target: "http://", wantErr: "not a URL"},
	}
	for _, tc := range cases {
		t.Run(tc.target, func(t *testing.T) {
			u, base, typ, err := ProfileURL(tc.target, tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || u != tc.url || base != tc.base || typ != tc.typ {
				t.Errorf("got %q %q %q %v; want %q %q %q", u, base, typ, err, tc.url, tc.base, tc.typ)
			}
		})
	}
}

// The default timeout grows with the profile's own duration.
func TestFetchTimeout(t *testing.T) {
	for _, tc := range []struct {
		seconds  int
		explicit time.Duration
		want     time.Duration
	}{
		{0, 0, DefaultTimeout},
		{60, 0, 60*time.Second + DefaultTimeout},
		{60, time.Second, time.Second},
	} {
		if got := fetchTimeout(tc.seconds, tc.explicit); got != tc.want {
			t.Errorf("fetchTimeout(%d, %v) = %v, want %v", tc.seconds, tc.explicit, got, tc.want)
		}
	}
}

// badTargets are HTTP servers on loopback that answer the way broken or
// misconfigured services do. They stand in for services that cannot be
// made to misbehave on demand; each sends real bytes over a real socket.
func badTargets(t *testing.T) map[string]string {
	t.Helper()
	valid, err := os.ReadFile(filepath.Join("testdata", "heap-current.pb.gz"))
	if err != nil {
		t.Fatal(err)
	}
	bomb := testbin.GzipBomb(64 << 20)
	many := gzipBytes(t, manySamplesProfile(DefaultMaxSamples+1))
	mux := http.NewServeMux()
	mux.HandleFunc("/notfound/", http.NotFound)
	mux.HandleFunc("/error/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "Could not enable CPU profiling: cpu profiling already in use", http.StatusInternalServerError)
	})
	mux.HandleFunc("/html/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<!DOCTYPE html><html><body><h1>Login</h1></body></html>")
	})
	mux.HandleFunc("/json/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"status":"ok"}`)
	})
	mux.HandleFunc("/empty/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/truncated/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) {
		w.Write(valid[:len(valid)/2])
	})
	mux.HandleFunc("/bomb/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) {
		w.Write(bomb)
	})
	mux.HandleFunc("/many/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) {
		w.Write(many)
	})
	mux.HandleFunc("/loop/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.String(), http.StatusFound)
	})
	mux.HandleFunc("/slow/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers
	})
	mux.HandleFunc("/cut/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		w.Write(valid[:100])
		panic(http.ErrAbortHandler) // drop the connection mid-body
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	refused := "http://" + testbin.FreeAddr(t)

	return map[string]string{
		"refused":   refused,
		"dns":       "http://leaklab-no-such-host.invalid:8080",
		"notfound":  srv.URL + "/notfound",
		"error":     srv.URL + "/error",
		"html":      srv.URL + "/html",
		"json":      srv.URL + "/json",
		"empty":     srv.URL + "/empty",
		"truncated": srv.URL + "/truncated",
		"bomb":      srv.URL + "/bomb",
		"many":      srv.URL + "/many",
		"loop":      srv.URL + "/loop",
		"slow":      srv.URL + "/slow",
		"cut":       srv.URL + "/cut",
	}
}

// badTargetWant is what each bad target's one-line error must say.
var badTargetWant = map[string]string{
	"refused":   "connection refused",
	"dns":       `cannot resolve host "leaklab-no-such-host.invalid"`,
	"notfound":  "HTTP 404 Not Found (does the target serve net/http/pprof",
	"error":     "HTTP 500 Internal Server Error: Could not enable CPU profiling",
	"html":      "not a pprof profile (an HTML page)",
	"json":      "not a pprof profile (JSON)",
	"empty":     "not a pprof profile (empty)",
	"truncated": "truncated gzip",
	"bomb":      "gzip bomb",
	"many":      "more than 1048576 samples",
	"loop":      "redirect loop",
	"slow":      "no complete answer within 2s",
	"cut":       "closed before the profile was complete",
}

func TestFetchBadTargets(t *testing.T) {
	t.Parallel() // the slow target's two seconds are waiting
	targets := badTargets(t)
	for name, target := range targets {
		t.Run(name, func(t *testing.T) {
			_, err := Fetch(context.Background(), target, FetchOptions{Timeout: 2 * time.Second})
			if name != "slow" && err != nil && strings.Contains(err.Error(), "no complete answer") {
				t.Skipf("machine too loaded for a 2s timeout: %v", err)
			}
			want := badTargetWant[name]
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want one containing %q", err, want)
			}
			if !strings.HasPrefix(err.Error(), target) {
				t.Errorf("error %q does not start with the target", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			// Callers (the collector's failure reasons) tell the kinds
			// apart by type, not by the words.
			var tooLarge *LimitError
			if isLimit := errors.As(err, &tooLarge); isLimit != (name == "bomb" || name == "many") {
				t.Errorf("%s: errors.As LimitError = %v", name, isLimit)
			}
			var timeout *TimeoutError
			if isTimeout := errors.As(err, &timeout); isTimeout != (name == "slow") {
				t.Errorf("%s: errors.As TimeoutError = %v", name, isTimeout)
			}
		})
	}
}
