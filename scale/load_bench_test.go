package scale

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/leaklab/leaklab/internal/testbin"
)

// BenchmarkClosedLoop compares the generator's raw HTTP/1.1 client with
// net/http's client, each driving b.N requests over 64 keep-alive
// connections to the same in-process hello server. It is why Load does
// not use net/http. Run:
//
//	go test -run '^$' -bench ClosedLoop -benchmem -count 5 ./scale/
//
// For the comparison with wrk (a separate server process), see
// scripts/bench-load.sh.
func BenchmarkClosedLoop(b *testing.B) {
	const conns = 64
	hello := []byte("Hello, World!\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(hello) }))
	defer srv.Close()

	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		res, err := Load(context.Background(), LoadOptions{URL: srv.URL, Connections: conns, Requests: int64(b.N)})
		if err != nil || res.Status[200] != int64(b.N) {
			b.Fatalf("%v, status %v, errors %v", err, res.Status, res.ErrorExamples)
		}
		b.ReportMetric(float64(res.Requests)/b.Elapsed().Seconds(), "req/s")
	})
	b.Run("net/http", func(b *testing.B) {
		b.ReportAllocs()
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}
		defer client.CloseIdleConnections()
		var next, failed atomic.Int64
		var wg sync.WaitGroup
		for range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(b.N) {
					resp, err := client.Get(srv.URL)
					if err != nil {
						failed.Add(1)
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}()
		}
		wg.Wait()
		if failed.Load() > 0 {
			b.Fatalf("%d requests failed", failed.Load())
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	})
}

// helloServerEnv makes the test binary serve hello world instead of
// running tests (see TestMain), so that BenchmarkGeneratorCPU's server
// runs in a process of its own and the generator's CPU time is its own.
const helloServerEnv = "LEAKLAB_TEST_HELLO_SERVER"

// serveHello is the net/http hello world of scripts/bench-load.sh; it
// prints its address as a JSON string and serves until killed.
func serveHello() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%q\n", ln.Addr().String())
	hello := []byte("Hello, World!\n")
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(hello) }))
}

// BenchmarkGeneratorCPU measures what the issue asks of the generator:
// its own CPU time per request (user+system, from getrusage, the same
// reading 'leaklab load' reports) over 64 keep-alive connections to a
// hello server in another process, and its allocations per request.
// Wall-clock rates on a shared machine vary; CPU time per request is the
// figure to compare. Run:
//
//	go test -run '^$' -bench GeneratorCPU -benchmem -count 5 ./scale/
func BenchmarkGeneratorCPU(b *testing.B) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helloServerEnv+"=1")
	var addr string
	testbin.StartJSON(b, cmd, &addr)
	url := "http://" + addr + "/"
	for _, engine := range []struct {
		name       string
		goroutines bool
	}{{"loops", false}, {"goroutines", true}} {
		b.Run(engine.name, func(b *testing.B) {
			b.ReportAllocs()
			res, err := Load(context.Background(), LoadOptions{URL: url, Connections: 64, Requests: int64(b.N), goroutineEngine: engine.goroutines})
			if err != nil || res.Status[200] != int64(b.N) {
				b.Fatalf("%v, status %v, errors %v", err, res.Status, res.ErrorExamples)
			}
			b.ReportMetric(float64(res.GeneratorCPU.Nanoseconds())/float64(res.Requests), "cpu-ns/req")
			b.ReportMetric(float64(res.Requests)/b.Elapsed().Seconds(), "req/s")
		})
	}
}
