// Package leaktest checks, inside a Go test, that an operation leaves
// nothing behind: no heap it keeps alive and no goroutine it leaves
// running, per operation.
//
//	func TestHandlerDoesNotLeak(t *testing.T) {
//		t.Parallel()
//		h := newHandler()
//		leaktest.Check(t, func() {
//			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/product?id=1", nil))
//		}, leaktest.Ops(2000))
//	}
//
// Check warms the operation up, then runs it in rounds. After each round
// it forces a garbage collection and measures exactly what the operation
// still holds: the live bytes of every allocation made on a stack through
// the operation (the heap profile, recorded for every allocation while a
// Check runs), and the goroutines the operation started that are still
// alive (they inherit a profiler label Check gives the operation). It fits
// the growth per operation and fails the test, naming the allocation sites
// and goroutine sites that grew, when the growth exceeds the limits.
//
// It sits beside leaklab's other leak finders: 'leaklab watch' and
// 'leaklab check' look at a running service over HTTP; leaktest looks at
// one operation inside the test binary, where the profiles can be read
// exactly and each test's share can be told apart.
//
// # Parallel tests
//
// Check is safe in tests that call t.Parallel: goroutines are attributed
// by their profiler label, allocations by a frame that only this Check's
// operation runs under, so a leak in one test does not fail another.
// Heap allocated by goroutines the operation started is attributed by the
// function those goroutines run; when goroutines outside the operation run
// the same function, that heap cannot be told apart and the report says so
// instead of counting it.
//
// Per-goroutine state the runtime keeps for reuse after a goroutine exits
// (its g, its sleep timer, sudogs) is not counted as the operation's heap:
// it follows the peak number of goroutines alive at once, and goroutines
// that stay are caught by the goroutine check.
//
// # Costs and caveats
//
// While a Check runs, runtime.MemProfileRate is 1 (every allocation of the
// process is recorded with its stack), which slows allocation-heavy code,
// including other tests running in parallel. Heap profiles written by the
// same process afterwards mis-scale the allocations recorded in that
// window, so Check skips the heap part (and says so) when the test binary
// was asked for -test.memprofile at a rate other than 1. Code that reads
// runtime.MemProfileRate in another goroutine while a Check runs (a
// /debug/pprof/heap handler, for instance) is a data race the race
// detector reports.
package leaktest

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leaklab/leaklab/profiles"
)

// Defaults for the options.
const (
	// DefaultOps is how many times the operation runs while measured.
	DefaultOps = 1000
	// DefaultRounds is how many measurements the growth is fitted to.
	DefaultRounds = 10
	// DefaultWarmupFraction of Ops runs before the first measurement, so
	// that bounded caches, pools and lazily started goroutines fill up.
	DefaultWarmupFraction = 0.2
	// DefaultMaxRetainedPerOp is the heap, in bytes per operation, an
	// operation may keep alive: small enough to catch a leaked map entry.
	DefaultMaxRetainedPerOp = 16
	// DefaultMaxGoroutinesPerOp is how many goroutines per operation may
	// stay: none.
	DefaultMaxGoroutinesPerOp = 0
	// DefaultSettle is how long Check waits, when the last measurement
	// exceeds a limit, re-measuring, for goroutines still finishing their
	// work (and what they hold) to go before it fails the test: a leak's
	// failure comes that much later.
	DefaultSettle = 2 * time.Second
)

// LabelKey is the profiler label Check runs the operation under; its value
// is unique to one Check call. Goroutines the operation starts inherit it.
const LabelKey = "leaktest"

// Option configures Check.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// Ops sets how many times the operation runs while measured (DefaultOps).
func Ops(n int) Option { return optionFunc(func(c *config) { c.ops = n }) }

// Warmup sets how many times the operation runs before the first
// measurement (DefaultWarmupFraction of Ops).
func Warmup(n int) Option { return optionFunc(func(c *config) { c.warmup = n }) }

// Rounds sets how many measurements Check takes (DefaultRounds).
func Rounds(n int) Option { return optionFunc(func(c *config) { c.rounds = n }) }

// MaxRetainedPerOp sets the heap, in bytes per operation, the operation may
// keep alive (DefaultMaxRetainedPerOp).
func MaxRetainedPerOp(bytes float64) Option {
	return optionFunc(func(c *config) { c.maxRetained = bytes })
}

// MaxGoroutinesPerOp sets how many goroutines per operation may stay
// running (DefaultMaxGoroutinesPerOp).
func MaxGoroutinesPerOp(n float64) Option {
	return optionFunc(func(c *config) { c.maxGoroutines = n })
}

// Settle sets how long Check waits for goroutines still winding down,
// and what they hold, before it fails (DefaultSettle).
func Settle(d time.Duration) Option { return optionFunc(func(c *config) { c.settle = d }) }

// OwnCode sets the function-name prefixes (module or package paths) that
// are the code under test, for naming sites; by default everything outside
// the standard library and well-known libraries is.
func OwnCode(prefixes ...string) Option {
	return optionFunc(func(c *config) { c.own = profiles.OwnCodeFor(prefixes...) })
}

type config struct {
	ops, warmup, rounds int
	maxRetained         float64
	maxGoroutines       float64
	settle              time.Duration
	own                 profiles.OwnCode
}

func newConfig(opts []Option) config {
	c := config{ops: DefaultOps, warmup: -1, rounds: DefaultRounds, maxRetained: DefaultMaxRetainedPerOp,
		maxGoroutines: DefaultMaxGoroutinesPerOp, settle: DefaultSettle}
	for _, o := range opts {
		o.apply(&c)
	}
	c.ops = max(c.ops, 1)
	c.rounds = min(max(c.rounds, 2), c.ops)
	if c.warmup < 0 {
		c.warmup = max(1, int(DefaultWarmupFraction*float64(c.ops)))
	}
	return c
}

// Check runs op repeatedly and fails t when op leaves heap or goroutines
// behind beyond the limits; see the package documentation.
func Check(t testing.TB, op func(), opts ...Option) {
	t.Helper()
	cfg := newConfig(opts)
	c := &checker{cfg: cfg, label: fmt.Sprintf("%s#%d", t.Name(), checkSeq.Add(1)), stacks: map[stackKey]*stackInfo{}}

	heapOK, why := heapCheckPossible()
	c.heapSkipped = why
	if heapOK {
		raiseMemProfileRate()
		defer restoreMemProfileRate()
	}
	c.slot = acquireSlot()
	defer releaseSlot(c.slot)

	start := time.Now()
	c.run(op, cfg.warmup)
	var rounds []measurement
	rounds = append(rounds, c.measure(heapOK))
	done := 0
	for r := 1; r <= cfg.rounds; r++ {
		n := cfg.ops*r/cfg.rounds - done
		c.run(op, n)
		done += n
		m := c.measure(heapOK)
		m.ops = done
		rounds = append(rounds, m)
	}
	v := c.judge(rounds)
	// Goroutines op started may still be finishing (a worker sleeping out
	// its timeout), and what they hold with them: give them until the
	// settle deadline, re-measuring the last round, before judging for
	// good. A real leak pays the wait; a clean op must never fail on a
	// moment's state.
	deadline := time.Now().Add(cfg.settle)
	for wait := time.Millisecond; v.failed() && time.Now().Before(deadline); wait = min(2*wait, 100*time.Millisecond) {
		time.Sleep(wait)
		m := c.measure(heapOK)
		m.ops = done
		rounds[len(rounds)-1] = m
		v = c.judge(rounds)
	}
	// What op holds on to is what is being measured: keep it reachable
	// until the last measurement, or a leak into op's own closure would
	// look like it went away.
	runtime.KeepAlive(op)
	v.elapsed = time.Since(start)
	if v.failed() {
		t.Errorf("%s", c.report(v))
		return
	}
	t.Logf("%s", c.summary(v))
}

var checkSeq atomic.Int64

type checker struct {
	cfg         config
	label       string
	slot        int
	heapSkipped string
	stacks      map[stackKey]*stackInfo
}

// run calls op n times under this check's label and slot frame.
func (c *checker) run(op func(), n int) {
	if n <= 0 {
		return
	}
	pprof.Do(context.Background(), pprof.Labels(LabelKey, c.label), func(context.Context) {
		slotFuncs[c.slot](func() {
			for range n {
				op()
			}
		})
	})
}

// The memory profile rate is process-wide; concurrent Checks share one
// raise to 1 and the last to finish puts the old rate back.
var (
	rateMu    sync.Mutex
	rateUsers int
	savedRate int
)

func raiseMemProfileRate() {
	rateMu.Lock()
	defer rateMu.Unlock()
	if rateUsers == 0 {
		savedRate = runtime.MemProfileRate
		runtime.MemProfileRate = 1
	}
	rateUsers++
}

func restoreMemProfileRate() {
	rateMu.Lock()
	defer rateMu.Unlock()
	rateUsers--
	if rateUsers == 0 {
		runtime.MemProfileRate = savedRate
	}
}

// heapCheckPossible says whether Check may change the memory profile rate:
// not when the test binary writes a heap profile at another rate, which
// the change would distort.
func heapCheckPossible() (bool, string) {
	f := flag.Lookup("test.memprofile")
	if f == nil || f.Value.String() == "" {
		return true, ""
	}
	if r := flag.Lookup("test.memprofilerate"); r != nil && r.Value.String() == "1" {
		return true, ""
	}
	return false, "heap not checked: -test.memprofile is set, and recording every allocation would distort that profile (add -test.memprofilerate=1 to check both)"
}

// Slots: one slot function per Check running at once.
var slotPool = func() chan int {
	ch := make(chan int, len(slotFuncs))
	for i := range slotFuncs {
		ch <- i
	}
	return ch
}()

func acquireSlot() int  { return <-slotPool }
func releaseSlot(i int) { slotPool <- i }
