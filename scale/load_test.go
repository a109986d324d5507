package scale

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/opterr"
	"github.com/leaklab/leaklab/internal/testbin"
	"go.uber.org/goleak"
)

// scaleTestParallel is how many parallel tests run at once unless
// -parallel says otherwise: most wait on clusters starting, on start
// timeouts (the launch refusals, 2 s each) or on stalls they inject. At
// the default, GOMAXPROCS, they queued two at a time, and this package,
// the last go test ./... runs, ran alone for its last 8 s (ab9). Not
// under -race, where their clusters and load generators compute far
// more: six at once there, beside the dashboards' 38 services, a reuseport
// worker missed its deadline to report and a closed-model load saw the
// stall it should hide (CI, ci20).
const scaleTestParallel = 6

func TestMain(m *testing.M) {
	if os.Getenv(helloServerEnv) == "1" {
		serveHello() // the test binary re-executed as BenchmarkGeneratorCPU's server
		return
	}
	testbin.WaitingParallel(scaleTestParallel, 0)
	goleak.VerifyTestMain(m)
}

// load runs Load and fails the test on an error.
func load(t *testing.T, opts LoadOptions) *LoadResult {
	t.Helper()
	res, err := Load(context.Background(), opts)
	if err != nil {
		t.Fatalf("Load(%s): %v", opts.URL, err)
	}
	return res
}

// engines are the ways Load can drive connections; tests of behaviour
// the engines share run on each. The event loops run wherever Load
// picks them (Linux, closed model, plain HTTP); the goroutine engine is
// forced for the rest.
var engines = []struct {
	name       string
	goroutines bool
}{{EngineLoops, false}, {EngineGoroutines, true}}

// loadOn runs Load on the engine named, failing the test when Load picked
// another one.
func loadOn(t *testing.T, engine string, opts LoadOptions) *LoadResult {
	t.Helper()
	opts.goroutineEngine = engine == EngineGoroutines
	res := load(t, opts)
	if want := engine; res.Engine != want && !(want == EngineLoops && runtime.GOOS != "linux") {
		t.Fatalf("Load ran on %s, want %s", res.Engine, want)
	}
	return res
}

// delayServer answers 200 after a fixed delay.
func delayServer(t *testing.T, delay time.Duration) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		io.WriteString(w, "ok\n")
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestLoadReportsInjectedDelay(t *testing.T) {
	const delay = 50 * time.Millisecond
	// The value reported must be the delay plus loopback overhead; the
	// tolerance is on the latency value, generous for a busy race build.
	const tolerance = 30 * time.Millisecond
	srv := delayServer(t, delay)
	for _, tc := range []struct {
		name string
		opts LoadOptions
	}{
		{"closed", LoadOptions{URL: srv.URL, Connections: 4, Requests: 40}},
		{"open", LoadOptions{URL: srv.URL, Connections: 8, Rate: 40, Duration: time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The open model measures from each request's scheduled time
			// (no coordinated omission), so a generator starved of CPU by
			// a busy machine reports the time its requests waited to be
			// sent too. A run that sent late is tried again, up to three
			// times; a run that kept its schedule must be right at once.
			var res *LoadResult
			for try := 1; ; try++ {
				res = load(t, tc.opts)
				if res.Responses == 0 || res.Errors != 0 {
					t.Fatalf("responses %d, errors %d (%v)", res.Responses, res.Errors, res.ErrorExamples)
				}
				p50 := res.LatencyAt(0.5)
				t.Logf("%d responses, p50 %v, p99 %v, %d sent late", res.Responses, p50, res.LatencyAt(0.99), res.Late)
				if p50 >= delay && p50 <= delay+tolerance {
					break
				}
				if res.Late == 0 || try == 3 {
					t.Errorf("p50 = %v, want %v..%v", p50, delay, delay+tolerance)
					break
				}
			}
			if res.Status[200] != res.Responses {
				t.Errorf("status counts %v, want all %d responses 200", res.Status, res.Responses)
			}
		})
	}
}

// stallServer answers at once, except that the first request after
// stallAfter freezes every request for stallFor, as a GC pause or a lock
// held too long would.
func stallServer(t *testing.T, stallAfter, stallFor time.Duration) *httptest.Server {
	var mu sync.Mutex
	var began time.Time
	var stallUntil time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		now := time.Now()
		if began.IsZero() {
			began = now
		}
		if stallUntil.IsZero() && now.Sub(began) >= stallAfter {
			stallUntil = now.Add(stallFor)
		}
		wait := stallUntil.Sub(now)
		mu.Unlock()
		if wait > 0 {
			time.Sleep(wait)
		}
		io.WriteString(w, "ok\n")
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestOpenModelShowsStallClosedModelHidesIt(t *testing.T) {
	t.Parallel() // mostly waiting out the stall, with a second of margin
	const stall = time.Second
	t.Run("open", func(t *testing.T) {
		t.Parallel()
		srv := stallServer(t, 500*time.Millisecond, stall)
		res := load(t, LoadOptions{URL: srv.URL, Connections: 8, Rate: 200, Duration: 2500 * time.Millisecond})
		t.Logf("open: %d responses, p50 %v p99 %v max %v, late %d", res.Responses, res.LatencyAt(0.5), res.LatencyAt(0.99), res.MaxLatency(), res.Late)
		// About a fifth of the schedule falls in the stall, so p99 is the
		// stall itself: the requests waited from their scheduled time.
		if p99 := res.LatencyAt(0.99); p99 < stall/2 {
			t.Errorf("open model p99 = %v, want at least %v: the stall is hidden", p99, stall/2)
		}
		if res.Late == 0 {
			t.Errorf("no request counted late although every connection was stuck for %v", stall)
		}
		if res.Requests+res.Unsent != res.Scheduled {
			t.Errorf("requests %d + unsent %d != scheduled %d", res.Requests, res.Unsent, res.Scheduled)
		}
	})
	t.Run("closed", func(t *testing.T) {
		t.Parallel()
		srv := stallServer(t, 500*time.Millisecond, stall)
		res := load(t, LoadOptions{URL: srv.URL, Connections: 2, Duration: 2500 * time.Millisecond})
		t.Logf("closed: %d responses, p50 %v p99 %v max %v", res.Responses, res.LatencyAt(0.5), res.LatencyAt(0.99), res.MaxLatency())
		// The stall happened (max shows it) but only the two requests in
		// flight waited: the generator stalled with the server and the
		// percentiles look fine. That is coordinated omission.
		if max := res.MaxLatency(); max < stall*9/10 {
			t.Fatalf("closed model max = %v: the stall never happened", max)
		}
		if p99 := res.LatencyAt(0.99); p99 >= stall/2 {
			t.Errorf("closed model p99 = %v over %d responses; expected the stall hidden", p99, res.Responses)
		}
		if res.Late != 0 || res.Scheduled != 0 {
			t.Errorf("closed model has a schedule: late %d scheduled %d", res.Late, res.Scheduled)
		}
	})
}

// rawServer accepts connections and hands each to serve, in its own
// goroutine, until the test ends.
func rawServer(t *testing.T, serve func(net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/"
}

// readRequestHead reads until the blank line ending a request head.
func readRequestHead(c net.Conn) error {
	var window []byte
	buf := make([]byte, 1)
	for {
		if _, err := c.Read(buf); err != nil {
			return err
		}
		window = append(window, buf[0])
		if n := len(window); n >= 4 && string(window[n-4:]) == "\r\n\r\n" {
			return nil
		}
	}
}

func refusedURL(t *testing.T) string {
	return "http://" + testbin.FreeAddr(t) + "/"
}

func TestLoadClassifiesFailures(t *testing.T) {
	t.Parallel()
	const n = 20
	for _, tc := range []struct {
		name    string
		url     func(t *testing.T) string
		timeout time.Duration
		want    ErrorClass
		// responses is whether the failures still carry a response.
		responses bool
	}{
		{name: "refused", url: refusedURL, want: ErrRefused},
		{name: "reset", want: ErrReset, url: func(t *testing.T) string {
			return rawServer(t, func(c net.Conn) {
				readRequestHead(c)
				c.(*net.TCPConn).SetLinger(0) // close with a RST
			})
		}},
		{name: "closed before response", want: ErrReset, url: func(t *testing.T) string {
			return rawServer(t, func(c net.Conn) { readRequestHead(c) })
		}},
		{name: "truncated body", want: ErrReset, url: func(t *testing.T) string {
			return rawServer(t, func(c net.Conn) {
				readRequestHead(c)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
			})
		}},
		{name: "slower than timeout", want: ErrTimeout, timeout: 100 * time.Millisecond, url: func(t *testing.T) string {
			release := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-release:
				}
			}))
			t.Cleanup(srv.Close)
			t.Cleanup(func() { close(release) })
			return srv.URL
		}},
		{name: "malformed response", want: ErrOther, url: func(t *testing.T) string {
			return rawServer(t, func(c net.Conn) {
				readRequestHead(c)
				io.WriteString(c, "SMTP ready\r\n\r\n")
			})
		}},
		{name: "non-2xx", want: ErrNon2xx, responses: true, url: func(t *testing.T) string {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "overloaded", http.StatusServiceUnavailable)
			}))
			t.Cleanup(srv.Close)
			return srv.URL
		}},
	} {
		for _, engine := range engines {
			t.Run(tc.name+"/"+engine.name, func(t *testing.T) {
				t.Parallel()
				res := loadOn(t, engine.name, LoadOptions{URL: tc.url(t), Connections: 2, Requests: n, Timeout: tc.timeout})
				if res.Requests != n || res.Errors != n || res.ErrorsByClass[tc.want] != n {
					t.Fatalf("requests %d, errors %d, by class %v; want all %d %s (examples %v)",
						res.Requests, res.Errors, res.ErrorsByClass, n, tc.want, res.ErrorExamples)
				}
				if res.ErrorExamples[tc.want] == "" {
					t.Errorf("no example message for %s", tc.want)
				}
				if got := res.Responses == n; got != tc.responses {
					t.Errorf("responses = %d, want responses counted: %v", res.Responses, tc.responses)
				}
				if !tc.responses && res.Latency.TotalCount() != 0 {
					t.Errorf("failed requests recorded %d latencies", res.Latency.TotalCount())
				}
			})
		}
	}
}

func TestLoadRejectsBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts LoadOptions
	}{
		{"empty URL", LoadOptions{}},
		{"no scheme", LoadOptions{URL: "127.0.0.1:8080/"}},
		{"ftp", LoadOptions{URL: "ftp://127.0.0.1/"}},
		{"no host", LoadOptions{URL: "http:///path"}},
		{"bad port", LoadOptions{URL: "http://127.0.0.1:99999/"}},
		{"placeholder in host", LoadOptions{URL: "http://{i}.localhost/"}},
		{"remote without permission", LoadOptions{URL: "http://192.0.2.1/"}},
		{"bad method", LoadOptions{URL: "http://127.0.0.1/", Method: "GET /x"}},
		{"header with newline", LoadOptions{URL: "http://127.0.0.1/", Header: http.Header{"X-A": {"a\r\nX-B: b"}}}},
		{"content-length header", LoadOptions{URL: "http://127.0.0.1/", Header: http.Header{"Content-Length": {"3"}}}},
		{"negative connections", LoadOptions{URL: "http://127.0.0.1/", Connections: -1}},
		{"too many connections", LoadOptions{URL: "http://127.0.0.1/", Connections: MaxConnections + 1}},
		{"negative rate", LoadOptions{URL: "http://127.0.0.1/", Rate: -5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Load(context.Background(), tc.opts)
			var optErr *opterr.Error
			if !errors.As(err, &optErr) || res != nil {
				t.Fatalf("Load = %v, %v; want an *opterr.Error and no result", res, err)
			}
		})
	}
}

func TestLoadCountBoundIsExact(t *testing.T) {
	srv := delayServer(t, 0)
	for _, tc := range []struct {
		name string
		opts LoadOptions
	}{
		{"closed", LoadOptions{URL: srv.URL, Connections: 7, Requests: 1000}},
		{"more connections than requests", LoadOptions{URL: srv.URL, Connections: 50, Requests: 5}},
		{"open", LoadOptions{URL: srv.URL, Connections: 4, Requests: 60, Rate: 300}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := load(t, tc.opts)
			if res.Requests != tc.opts.Requests || res.Status[200] != tc.opts.Requests {
				t.Errorf("requests %d, status %v; want exactly %d 200s", res.Requests, res.Status, tc.opts.Requests)
			}
		})
	}
}

func TestLoadOpenModelAccountsForEveryScheduledRequest(t *testing.T) {
	srv := delayServer(t, 0)
	res := load(t, LoadOptions{URL: srv.URL, Connections: 4, Rate: 100, Duration: time.Second})
	if res.Scheduled != 100 {
		t.Errorf("scheduled = %d, want 100 (100/s for 1s)", res.Scheduled)
	}
	if res.Requests+res.Unsent != res.Scheduled {
		t.Errorf("requests %d + unsent %d != scheduled %d", res.Requests, res.Unsent, res.Scheduled)
	}
	if res.Model != Open || res.Rate != 100 {
		t.Errorf("model %s rate %v", res.Model, res.Rate)
	}
}

func TestLoadSendsSequenceNumbersMethodHeadersAndBody(t *testing.T) {
	type seen struct {
		method, header, body, contentLength string
	}
	var mu sync.Mutex
	ids := map[int]int{}
	var first seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id, err := strconv.Atoi(r.URL.Query().Get("id"))
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		ids[id]++
		first = seen{r.Method, r.Header.Get("X-Leaklab-Test"), string(body), r.Header.Get("Content-Length")}
	}))
	t.Cleanup(srv.Close)

	const n = 100
	for _, engine := range engines {
		mu.Lock()
		clear(ids)
		mu.Unlock()
		res := loadOn(t, engine.name, LoadOptions{
			URL: srv.URL + "/item/{i}?id={i}", Method: http.MethodPost, Connections: 3, Requests: n,
			Header: http.Header{"X-Leaklab-Test": {"yes"}}, Body: []byte(`{"a":1}`),
		})
		if res.Errors != 0 {
			t.Fatalf("%s: errors %v %v", engine.name, res.ErrorsByClass, res.ErrorExamples)
		}
		mu.Lock()
		for i := 0; i < n; i++ {
			if ids[i] != 1 {
				t.Errorf("%s: id %d seen %d times, want once", engine.name, i, ids[i])
			}
		}
		want := seen{"POST", "yes", `{"a":1}`, "7"}
		if first != want {
			t.Errorf("%s: server saw %+v, want %+v", engine.name, first, want)
		}
		mu.Unlock()
	}
}

func TestLoadKeepAlive(t *testing.T) {
	const n = 30
	srv := delayServer(t, 0)
	for _, tc := range []struct {
		name        string
		url         string
		noKeepAlive bool
		// wantConnects is exact when positive; -k means 1 to k, for
		// kept-alive runs where one worker may take every request before
		// the other starts.
		wantConnects int64
	}{
		{"kept alive", srv.URL, false, -2},
		{"keep-alive off", srv.URL, true, n},
		// The server answers one request per connection and then closes it
		// without saying so, like an idle-timeout close: the second request
		// on each connection is retried on a new one, not counted an error.
		{"server drops idle connections", rawServer(t, func(c net.Conn) {
			readRequestHead(c)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}), false, n},
		// A chunked body and a close-delimited body are read to their end.
		{"chunked", rawServer(t, func(c net.Conn) {
			for readRequestHead(c) == nil {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;ext=1\r\n!!!\r\n0\r\nX-Trailer: t\r\n\r\n")
			}
		}), false, -2},
		{"HTTP/1.0 close-delimited", rawServer(t, func(c net.Conn) {
			readRequestHead(c)
			io.WriteString(c, "HTTP/1.0 200 OK\r\n\r\nbody until close")
		}), false, n},
	} {
		for _, engine := range engines {
			t.Run(tc.name+"/"+engine.name, func(t *testing.T) {
				res := loadOn(t, engine.name, LoadOptions{URL: tc.url, Connections: 2, Requests: n, DisableKeepAlive: tc.noKeepAlive})
				if res.Errors != 0 || res.Status[200] != n {
					t.Fatalf("errors %v %v, status %v", res.ErrorsByClass, res.ErrorExamples, res.Status)
				}
				if want := tc.wantConnects; (want > 0 && res.Connects != want) || (want < 0 && (res.Connects < 1 || res.Connects > -want)) {
					t.Errorf("connections opened = %d, want %d (negative: at most)", res.Connects, want)
				}
			})
		}
	}
}

func TestLoadHTTPS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "secure\n")
	}))
	t.Cleanup(srv.Close)
	roots := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	res := load(t, LoadOptions{URL: srv.URL, Connections: 2, Requests: 20, TLSConfig: &tls.Config{RootCAs: roots}})
	if res.Status[200] != 20 {
		t.Errorf("status %v, errors %v", res.Status, res.ErrorExamples)
	}
	// Without the test CA the certificate is not trusted: an error, not a hang.
	res = load(t, LoadOptions{URL: srv.URL, Connections: 1, Requests: 2})
	if res.ErrorsByClass[ErrOther] != 2 {
		t.Errorf("untrusted certificate: errors %v", res.ErrorsByClass)
	}
}

func TestLoadInterruptReturnsPartialResult(t *testing.T) {
	release := make(chan struct{})
	var arrived atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if arrived.Add(1) > 3 {
			select { // hang until the client goes away
			case <-r.Context().Done():
			case <-release:
			}
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	ctx, cancel := context.WithCancel(context.Background())
	type outcome struct {
		res *LoadResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := Load(ctx, LoadOptions{URL: srv.URL, Connections: 1, Duration: time.Minute, Timeout: time.Minute})
		done <- outcome{res, err}
	}()
	waitFor(t, func() bool { return arrived.Load() > 3 })
	cancel()
	select {
	case o := <-done:
		if !errors.Is(o.err, context.Canceled) || o.res == nil || !o.res.Interrupted {
			t.Fatalf("Load after cancel = %+v, %v; want the partial result and context.Canceled", o.res, o.err)
		}
		if o.res.Status[200] != 3 || o.res.Errors != 0 {
			t.Errorf("partial result: status %v errors %v; want the 3 answered requests and no error for the cut one",
				o.res.Status, o.res.ErrorsByClass)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Load did not return within 30s of its context being cancelled (its timeout is a minute)")
	}
}

func TestLoadProgress(t *testing.T) {
	srv := delayServer(t, time.Millisecond)
	var mu sync.Mutex
	var seen []LoadProgress
	res := load(t, LoadOptions{URL: srv.URL, Connections: 2, Duration: 600 * time.Millisecond, ProgressEvery: 100 * time.Millisecond,
		Progress: func(p LoadProgress) {
			mu.Lock()
			seen = append(seen, p)
			mu.Unlock()
		}})
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 {
		t.Fatal("progress was never reported")
	}
	for i := 1; i < len(seen); i++ {
		if seen[i].Requests < seen[i-1].Requests || seen[i].Elapsed <= seen[i-1].Elapsed {
			t.Errorf("progress went backwards: %+v then %+v", seen[i-1], seen[i])
		}
	}
	if last := seen[len(seen)-1]; last.Requests > res.Requests {
		t.Errorf("progress reported %d requests, result has %d", last.Requests, res.Requests)
	}
}

// waitFor polls cond until it holds or 20 seconds pass.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ExampleLoad() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	res, err := Load(context.Background(), LoadOptions{URL: srv.URL + "/?id={i}", Connections: 4, Requests: 100})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Requests, res.Status[200], res.Errors)
	// Output: 100 100 0
}

// Bodies larger than the socket buffers both ways: the request is written
// in parts as the server reads it (the event loops wait for epoll to say
// there is room), the response read over many reads, as a fixed length
// and chunked.
func TestLoadLargeBodies(t *testing.T) {
	const size = 4 << 20
	big := bytes.Repeat([]byte("x"), size)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil || n != size {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if r.URL.Query().Get("chunked") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(size))
		}
		w.Write(big)
	}))
	t.Cleanup(srv.Close)
	for _, engine := range engines {
		for _, query := range []string{"", "?chunked=1"} {
			res := loadOn(t, engine.name, LoadOptions{URL: srv.URL + "/" + query, Method: http.MethodPost, Body: big,
				Connections: 2, Requests: 6, Timeout: 30 * time.Second})
			if res.Status[200] != 6 || res.Errors != 0 {
				t.Errorf("%s %s: status %v, errors %v", engine.name, query, res.Status, res.ErrorExamples)
			}
		}
	}
}

// The event loops drive the closed model over plain HTTP (on Linux); TLS
// and the open model are left to the goroutine engine.
func TestLoadEngineChoice(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the event loops are Linux only")
	}
	srv := delayServer(t, 0)
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(tlsSrv.Close)
	roots := tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	for _, tc := range []struct {
		name string
		opts LoadOptions
		want string
	}{
		{"closed http", LoadOptions{URL: srv.URL, Requests: 10}, EngineLoops},
		{"open http", LoadOptions{URL: srv.URL, Requests: 10, Rate: 1000}, EngineGoroutines},
		{"https", LoadOptions{URL: tlsSrv.URL, Requests: 10, TLSConfig: &tls.Config{RootCAs: roots}}, EngineGoroutines},
	} {
		if res := load(t, tc.opts); res.Engine != tc.want || res.Status[200] != 10 {
			t.Errorf("%s: engine %s, status %v; want %s and 10 200s", tc.name, res.Engine, res.Status, tc.want)
		}
	}
}
