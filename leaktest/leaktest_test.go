package leaktest_test

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leaklab/leaklab/leaktest"
)

// recorder is a testing.TB that keeps Check's verdict instead of failing
// the test, so that tests can assert on what a failing Check says.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
	logs   []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}

func (r *recorder) failure() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.errors, "\n")
}

// node is 64 bytes: a pointer and 56 bytes of payload.
type node struct {
	next    *node
	payload [56]byte
}

// retain64 keeps 64 bytes per call in a list it never trims.
type retainer struct {
	mu   sync.Mutex
	head *node
}

func (r *retainer) retain64() {
	r.mu.Lock()
	r.head = &node{next: r.head}
	r.mu.Unlock()
}

// scaled is n operations, a tenth of them with -short (CI's race run,
// where every allocation is slow): the checks are exact, so they hold at
// either size.
func scaled(n int) int {
	if testing.Short() {
		return max(n/10, 300)
	}
	return n
}

func mustFail(t *testing.T, rec *recorder, want ...string) {
	t.Helper()
	msg := rec.failure()
	if msg == "" {
		t.Fatalf("Check passed a leaky op; it logged: %q", rec.logs)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("the failure does not name %q:\n%s", w, msg)
		}
	}
}

func TestHeapLeakOf64BytesPerOpIsCaughtIn10000Ops(t *testing.T) {
	var r retainer
	rec := &recorder{TB: t}
	leaktest.Check(rec, r.retain64, leaktest.Ops(scaled(10000)))
	mustFail(t, rec, "heap: op keeps", "leaktest_test.(*retainer).retain64", "leaktest_test.go:")
	t.Log(rec.failure())
}

// blockForever parks until release closes.
func blockForever(release chan struct{}) { <-release }

func TestGoroutineLeakIsCaughtWithItsSiteAndWaitState(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	rec := &recorder{TB: t}
	leaktest.Check(rec, func() { go blockForever(release) }, leaktest.Ops(scaled(200)), leaktest.Settle(50*time.Millisecond))
	mustFail(t, rec, fmt.Sprintf("goroutines: %d started by op are still running", scaled(200)), "leaktest_test.blockForever [chan receive]")
	t.Log(rec.failure())
}

// A goroutine started by a goroutine the op started carries the label on.
func TestGoroutineLeakTwoGenerationsDown(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	rec := &recorder{TB: t}
	leaktest.Check(rec, func() {
		done := make(chan struct{})
		go func() { go blockForever(release); close(done) }()
		<-done
	}, leaktest.Ops(scaled(100)), leaktest.Settle(50*time.Millisecond))
	mustFail(t, rec, fmt.Sprintf("goroutines: %d started by op", scaled(100)), "leaktest_test.blockForever")
}

// A leak below the limit passes; the same leak above it fails.
func TestLimitsAreHonoured(t *testing.T) {
	var r retainer
	rec := &recorder{TB: t}
	leaktest.Check(rec, r.retain64, leaktest.Ops(scaled(2000)), leaktest.MaxRetainedPerOp(128))
	if msg := rec.failure(); msg != "" {
		t.Errorf("64 B/op under a 128 B/op limit failed:\n%s", msg)
	}
	release := make(chan struct{})
	defer close(release)
	var i int
	rec = &recorder{TB: t}
	leaktest.Check(rec, func() {
		if i%4 == 0 {
			go blockForever(release)
		}
		i++
	}, leaktest.Ops(scaled(400)), leaktest.MaxGoroutinesPerOp(0.5), leaktest.Settle(10*time.Millisecond))
	if msg := rec.failure(); msg != "" {
		t.Errorf("0.25 goroutines/op under a 0.5 limit failed:\n%s", msg)
	}
}

// sink defeats escape analysis so that clean ops really allocate; it is
// shared by parallel tests, hence atomic.
var sink atomic.Pointer[byte]

func keep(b []byte) { sink.Store(&b[0]) }

// boundedCache keeps the last 64 values: it fills during warm-up and then
// holds steady, which must not count as a leak.
type boundedCache struct {
	mu    sync.Mutex
	items map[int][]byte
	n     int
}

func (c *boundedCache) put() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.items[c.n] = make([]byte, 100)
	delete(c.items, c.n-64)
	c.n++
}

// The clean tests are the false-failure measurement: run them with
// `go test ./leaktest -run Clean -count=200`.

func TestCleanGarbageOnly(t *testing.T) {
	t.Parallel()
	leaktest.Check(t, func() { keep(make([]byte, 256)) }, leaktest.Ops(scaled(10000)))
}

func TestCleanBoundedCache(t *testing.T) {
	t.Parallel()
	c := &boundedCache{items: map[int][]byte{}}
	leaktest.Check(t, c.put, leaktest.Ops(scaled(5000)), leaktest.Warmup(100)) // past its 64 items
}

// Goroutines that finish a little later than the op returns are not leaks.
func TestCleanShortLivedGoroutines(t *testing.T) {
	t.Parallel()
	leaktest.Check(t, func() {
		results := make(chan []byte, 1)
		go func() {
			time.Sleep(200 * time.Microsecond)
			results <- make([]byte, 64)
		}()
	}, leaktest.Ops(scaled(500)))
}

func TestCleanSyncPool(t *testing.T) {
	t.Parallel()
	pool := sync.Pool{New: func() any { return make([]byte, 4096) }}
	leaktest.Check(t, func() {
		b := pool.Get().([]byte)
		keep(b[:10])
		pool.Put(b)
	}, leaktest.Ops(scaled(5000)))
}

// Leaky neighbours running in parallel must not fail clean tests: each
// clean subtest fails the test for real if Check blames it, and each leaky
// one must still be caught.
func TestCleanBesideParallelLeaks(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	for i := range 2 {
		t.Run(fmt.Sprintf("leaky-heap-%d", i), func(t *testing.T) {
			t.Parallel()
			var r retainer
			rec := &recorder{TB: t}
			leaktest.Check(rec, r.retain64, leaktest.Ops(scaled(2000)))
			mustFail(t, rec, "(*retainer).retain64")
		})
		t.Run(fmt.Sprintf("leaky-goroutines-%d", i), func(t *testing.T) {
			t.Parallel()
			rec := &recorder{TB: t}
			leaktest.Check(rec, func() { go blockForever(release) }, leaktest.Ops(scaled(300)), leaktest.Settle(50*time.Millisecond))
			mustFail(t, rec, "blockForever")
		})
		t.Run(fmt.Sprintf("clean-%d", i), func(t *testing.T) {
			t.Parallel()
			c := &boundedCache{items: map[int][]byte{}}
			leaktest.Check(t, func() {
				c.put()
				done := make(chan struct{})
				go func() { keep(make([]byte, 32)); close(done) }()
				<-done
			}, leaktest.Ops(scaled(2000)), leaktest.Warmup(100)) // past the cache's 64 items
		})
	}
}

// The cost of a check on a cheap op, for the docs: run with -v to see it.
// Nothing here asserts on time.
func TestCleanMicrosecondOpOverhead(t *testing.T) {
	var buf [64]byte
	op := func() {
		for i := range 1400 { // about a microsecond of work
			buf[i%64] += byte(i)
		}
		keep(make([]byte, 32))
	}
	start := time.Now()
	for range 12000 {
		op()
	}
	alone := time.Since(start)
	start = time.Now()
	leaktest.Check(t, op, leaktest.Ops(scaled(10000)))
	checked := time.Since(start)
	t.Logf("12,000 calls of the op alone (10,000 + warm-up): %v; under Check: %v; added: %v", alone, checked, checked-alone)
}

// hoarder keeps what its workers hand it.
type hoarder struct {
	mu    sync.Mutex
	items [][]byte
}

// hoard is a worker: it keeps 128 bytes and waits for release.
func hoard(release chan struct{}, h *hoarder) {
	b := make([]byte, 128)
	h.mu.Lock()
	h.items = append(h.items, b)
	h.mu.Unlock()
	<-release
}

// Heap kept by goroutines that run the same function inside and outside
// op cannot be attributed: the failure says so rather than guess.
func TestUnattributableHeapIsReportedNotCounted(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	h := &hoarder{}
	go hoard(release, h) // outside op: no label
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		h.mu.Lock()
		n := len(h.items)
		h.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker outside op never started")
		}
	}
	rec := &recorder{TB: t}
	leaktest.Check(rec, func() { go hoard(release, h) }, leaktest.Ops(scaled(1000)), leaktest.Settle(10*time.Millisecond))
	mustFail(t, rec, "cannot be told apart from other goroutines'", "leaktest_test.hoard", "goroutines: ")
	t.Log(rec.failure())
}
