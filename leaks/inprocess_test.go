package leaks_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/leaks"
	"go.uber.org/goleak"
)

// TestFixedVariantsCleanUp runs every fixed variant in-process, sends
// concurrent traffic to all of its endpoints (under -race in CI, this is
// where data races in the services would show), shuts it down, and checks
// with goleak that the fixed code left no goroutine behind.
func TestFixedVariantsCleanUp(t *testing.T) {
	for _, svc := range leaks.All() {
		t.Run(svc.Name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			srv, err := leaks.Start(context.Background(), svc, leaks.Options{Addr: "127.0.0.1:0", Fixed: true})
			if err != nil {
				t.Fatal(err)
			}
			hammer(t, srv.URL(), svc, 40)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			if err := srv.Wait(); err != nil {
				t.Fatalf("serve: %v", err)
			}
		})
	}
}

// TestLeakCap checks that a leaky service stops leaking at --max-leak and
// says so in its metrics.
func TestLeakCap(t *testing.T) {
	svc, _ := leaks.Lookup("unbounded-cache")
	var logged testbin.SyncBuffer
	logger := slog.New(slog.NewTextHandler(&logged, nil))
	srv, err := leaks.Start(context.Background(), svc, leaks.Options{Addr: "127.0.0.1:0", MaxLeak: 1 << 20, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	hammer(t, srv.URL(), svc, 100) // 100 pages of 32 KiB: 3.2 MiB wanted, 1 MiB allowed
	// The cap is said once, as a warning naming the flag that raises it.
	if log := logged.String(); strings.Count(log, "leak cap reached") != 1 || !strings.Contains(log, "level=WARN") || !strings.Contains(log, "--max-leak") {
		t.Errorf("log after the cap: %q; want one warning naming --max-leak", log)
	}
	metrics := string(get(t, srv.URL()+"/metrics"))
	for _, want := range []string{
		`leaklab_leak_capped{service="unbounded-cache",variant="leaky"} 1`,
		`leaklab_leak_retained_bytes{service="unbounded-cache",variant="leaky"} 1.048576e+06`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// The godeltaprof endpoints Pyroscope's agent reads serve real profiles:
// delta heap, mutex and block, each a pprof profile of its kind.
func TestDeltaProfileEndpoints(t *testing.T) {
	svc, _ := leaks.Lookup("global-mutex")
	srv, err := leaks.Start(context.Background(), svc, leaks.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	hammer(t, srv.URL(), svc, 50)
	for path, want := range map[string]string{"delta_heap": "inuse_space", "delta_mutex": "delay", "delta_block": "delay"} {
		p, err := profile.ParseData(get(t, srv.URL()+"/debug/pprof/"+path))
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		found := false
		for _, st := range p.SampleType {
			found = found || st.Type == want
		}
		if !found {
			t.Errorf("%s: sample types %v, want %s among them", path, p.SampleType, want)
		}
	}
}

// TestStartRefusesPublicAddress keeps /debug/pprof off the network by default.
func TestStartRefusesPublicAddress(t *testing.T) {
	svc, _ := leaks.Lookup("unbounded-cache")
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0"} {
		if srv, err := leaks.Start(context.Background(), svc, leaks.Options{Addr: addr}); err == nil {
			srv.Shutdown(context.Background())
			t.Errorf("Start(%q) listened; want a refusal without Public", addr)
		}
	}
}

// hammer sends n requests spread over all of a service's endpoints,
// eight at a time.
func hammer(t *testing.T, base string, svc *leaks.Service, n int) {
	t.Helper()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		ep := svc.Endpoints[i%len(svc.Endpoints)]
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			req, err := ep.Request(base, i)
			if err != nil {
				t.Error(err)
				return
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Errorf("%s %s: %v", req.Method, req.URL, err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	wg.Wait()
}

// A request that never finishes (an upload whose body never comes) does
// not stop a shutdown: it is cut off when the grace period ends.
func TestShutdownCutsOffHungRequests(t *testing.T) {
	svc, _ := leaks.Lookup("upload-buffer")
	srv, err := leaks.Start(context.Background(), svc, leaks.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /upload?name=slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\npartial")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(string(get(t, srv.URL()+"/metrics")), `leaklab_http_requests_in_flight{service="upload-buffer",variant="leaky"} 1`) {
		if time.Now().After(deadline) {
			t.Fatal("the slow upload never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown with a hung request: %v, want nil", err)
	}
	if err := srv.Wait(); err != nil {
		t.Errorf("Wait: %v", err)
	}
}
