package scale

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
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
