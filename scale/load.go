// Package scale generates HTTP load and measures how services behave under
// it. It sits at the "drive the service" end of leaklab's data flow: leak
// watching, the exercises and the multi-process comparison all call Load to
// put steady, measurable traffic on a service while something else watches.
//
// Load never prints and never exits; it takes a context and LoadOptions and
// returns a LoadResult (HDR latency histogram, status codes, classified
// errors, the generator's own CPU time).
package scale

import (
	"context"
	"crypto/tls"
	"errors"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/leaklab/leaklab/internal/opterr"
	"github.com/leaklab/leaklab/internal/proccpu"
)

// Defaults for LoadOptions fields left zero.
const (
	DefaultConnections   = 10
	MaxConnections       = 10000
	DefaultDuration      = 10 * time.Second
	DefaultTimeout       = 5 * time.Second
	DefaultProgressEvery = time.Second
	// LateAfter is how far past its scheduled time an open-model request may
	// be sent before it counts as late: a late request found every
	// connection busy (the server stalled or -c is too small for the
	// rate), or the generator woke up late to send it (a starved CPU).
	LateAfter = time.Millisecond
	// SeqPlaceholder in a URL is replaced by each request's sequence number
	// (0, 1, 2, ...), so a service keyed by request data sees new keys.
	SeqPlaceholder = "{i}"
)

// Model is how requests are paced.
type Model string

const (
	// Closed: each connection sends its next request as soon as the
	// previous response is in. Maximum throughput; a stalled server slows
	// the generator down with it, which hides the stall from percentiles.
	Closed Model = "closed"
	// Open: requests are scheduled at a fixed rate regardless of responses
	// and latency is measured from each request's scheduled time, so a
	// stall shows up in the percentiles (no coordinated omission).
	Open Model = "open"
)

// LoadOptions says what to send, how fast and for how long.
type LoadOptions struct {
	// URL is the target, http:// or https://. Any SeqPlaceholder in its
	// path or query is replaced by the request's sequence number.
	URL    string
	Method string // GET when empty
	Header http.Header
	Body   []byte

	// Connections is the number of connections (and so the most requests
	// in flight). DefaultConnections when zero.
	Connections int
	// Duration bounds the run in time; Requests bounds it in count. When
	// both are set the first reached ends the run; when neither is,
	// Duration is DefaultDuration. Requests in flight at the end may finish,
	// within Timeout.
	Duration time.Duration
	Requests int64
	// FirstSeq is the sequence number of the first request: runs that
	// continue one another (rounds of 'leaklab check') keep sending new
	// keys instead of starting over at 0.
	FirstSeq int64
	// Rate, when positive, selects the open model at that many requests per
	// second; zero is the closed model.
	Rate float64
	// Timeout bounds each request, connecting included. DefaultTimeout
	// when zero.
	Timeout time.Duration

	DisableKeepAlive bool
	// TLSConfig is used for https URLs (nil: the system roots).
	TLSConfig *tls.Config
	// AllowRemote permits a target that is not on a loopback address.
	// Without it Load refuses, so a typo cannot load someone else's server.
	AllowRemote bool

	// goroutineEngine makes Load use a goroutine per connection even where
	// the event loops could run, so that tests cover both engines.
	goroutineEngine bool

	// Progress, when set, is called every ProgressEvery from a goroutine of
	// its own with the counts so far; it must return quickly.
	Progress      func(LoadProgress)
	ProgressEvery time.Duration
}

// LoadProgress is a running count, for live display.
type LoadProgress struct {
	Elapsed  time.Duration
	Requests int64 // finished, with a response or an error
	Errors   int64 // transport errors and non-2xx responses
}

// LoadResult is what a run measured.
type LoadResult struct {
	URL         string
	Method      string
	Model       Model
	Connections int
	Rate        float64 // open model only

	// Requests finished, with a response or an error; Responses is the
	// part that got a response (any status).
	Requests  int64
	Responses int64
	// Errors counts requests without a 2xx response: transport errors plus
	// non-2xx responses; ErrorsByClass splits them.
	Errors        int64
	ErrorsByClass map[ErrorClass]int64
	// ErrorExamples holds the first error message seen in each class.
	ErrorExamples map[ErrorClass]string
	Status        map[int]int64

	// Duration is from the start until the last request finished.
	Duration time.Duration
	// RPS is Requests per second of Duration.
	RPS float64
	// Latency holds every response's latency in nanoseconds: from the send
	// in the closed model, from the scheduled time in the open model.
	// Transport errors are not in it. It keeps three significant digits
	// (two above 256 connections).
	Latency *hdrhistogram.Histogram

	// Open model only: requests scheduled within the bounds; those sent
	// more than LateAfter after their time (no connection was free, or the
	// generator's timer woke late); and those never sent because no
	// connection was free before the run ended.
	Scheduled int64
	Late      int64
	Unsent    int64

	// Connects is how many connections were opened (more than Connections
	// when the server closed some or keep-alive is off).
	Connects int64
	// GeneratorCPU is the CPU time (user+system) this process used during
	// the run; with nothing else running in the process it is the
	// generator's cost.
	GeneratorCPU time.Duration
	// Interrupted is set when the context ended the run early.
	Interrupted bool
	// Engine is what drove the connections: EngineLoops or
	// EngineGoroutines.
	Engine string
}

// The engines Load drives connections with.
const (
	// EngineLoops is one epoll event loop per CPU, each with a share of
	// the connections (Linux; the closed model over plain HTTP to a
	// target with one address).
	EngineLoops = "event-loops"
	// EngineGoroutines is a goroutine per connection: everywhere else
	// (HTTPS, the open model, other systems).
	EngineGoroutines = "goroutines"
)

// LatencyAt returns the latency at quantile q (0..1), 0 with no responses.
func (r *LoadResult) LatencyAt(q float64) time.Duration {
	if r.Latency == nil || r.Latency.TotalCount() == 0 {
		return 0
	}
	return time.Duration(r.Latency.ValueAtPercentile(q * 100))
}

// MaxLatency returns the largest latency recorded.
func (r *LoadResult) MaxLatency() time.Duration {
	if r.Latency == nil || r.Latency.TotalCount() == 0 {
		return 0
	}
	return time.Duration(r.Latency.Max())
}

// CPUPerRequest is the generator's CPU time per finished request.
func (r *LoadResult) CPUPerRequest() time.Duration {
	if r.Requests == 0 {
		return 0
	}
	return r.GeneratorCPU / time.Duration(r.Requests)
}

func optionErrorf(option, format string, args ...any) error {
	return opterr.Errorf(option, format, args...)
}

// Load runs the load described by opts and returns what it measured. It
// returns an *opterr.Error before sending anything when opts are
// invalid. When ctx ends first it returns the partial result (Interrupted
// set) together with ctx's error.
func Load(ctx context.Context, opts LoadOptions) (*LoadResult, error) {
	plan, err := newLoadPlan(ctx, opts)
	if err != nil {
		return nil, err
	}
	run := &loadRun{plan: plan, engine: EngineLoops}
	start := prepareEventLoops(ctx, run)
	if start == nil {
		run.engine = EngineGoroutines
		// The goroutine engine: one worker per connection.
		run.workers = make([]*loadWorker, plan.connections)
		for i := range run.workers {
			run.workers[i] = newLoadWorker(run, plan)
		}
		start = func(ctx context.Context, wg *sync.WaitGroup) {
			for _, w := range run.workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					w.loop(ctx)
				}()
			}
		}
	}

	cpuBefore := proccpu.Self()
	run.start = time.Now()
	if plan.duration > 0 {
		run.end = run.start.Add(plan.duration)
	}
	stopWatch := context.AfterFunc(ctx, run.interrupt)
	defer stopWatch()

	var wg sync.WaitGroup
	start(ctx, &wg)
	progressDone := run.reportProgress(opts.Progress, opts.ProgressEvery)
	wg.Wait()
	finished := time.Now()
	close(progressDone)
	cpu := proccpu.Self() - cpuBefore

	res := run.result(finished.Sub(run.start), cpu)
	if ctx.Err() != nil {
		res.Interrupted = true
		return res, ctx.Err()
	}
	return res, nil
}

// loadRun is the state shared by the workers of one run.
type loadRun struct {
	plan    *loadPlan
	engine  string
	workers []*loadWorker
	start   time.Time
	end     time.Time // zero without a duration bound
	tickets atomic.Int64
	stopped atomic.Bool
}

// interrupt stops the run now: workers stop taking requests and the
// requests in flight fail at once (their connections' deadlines pass).
func (r *loadRun) interrupt() {
	r.stopped.Store(true)
	for _, w := range r.workers {
		w.abort()
	}
}

// scheduledAt is the open model's send time for request seq.
func (r *loadRun) scheduledAt(seq int64) time.Time {
	return r.start.Add(time.Duration(float64(seq) * float64(time.Second) / r.plan.rate))
}

// scheduledWithinBounds counts the open model's requests whose time falls
// before the end (or within the count bound).
func (r *loadRun) scheduledWithinBounds() int64 {
	if r.end.IsZero() {
		return r.plan.requests
	}
	n := int64(math.Ceil(r.plan.duration.Seconds() * r.plan.rate))
	for n > 0 && !r.scheduledAt(n-1).Before(r.end) {
		n--
	}
	for r.scheduledAt(n).Before(r.end) {
		n++
	}
	if r.plan.requests > 0 && n > r.plan.requests {
		n = r.plan.requests
	}
	return n
}

func (r *loadRun) reportProgress(progress func(LoadProgress), every time.Duration) chan struct{} {
	done := make(chan struct{})
	if progress == nil {
		return done
	}
	if every <= 0 {
		every = DefaultProgressEvery
	}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				p := LoadProgress{Elapsed: now.Sub(r.start)}
				for _, w := range r.workers {
					p.Requests += w.finished.Load()
					p.Errors += w.failed.Load()
				}
				progress(p)
			}
		}
	}()
	return done
}

func (r *loadRun) result(elapsed, cpu time.Duration) *LoadResult {
	p := r.plan
	res := &LoadResult{
		URL: p.rawURL, Method: p.method, Model: Closed, Connections: p.connections,
		ErrorsByClass: map[ErrorClass]int64{}, ErrorExamples: map[ErrorClass]string{}, Status: map[int]int64{},
		Duration: elapsed, Latency: newLatencyHistogram(p.highestLatency, p.connections), GeneratorCPU: cpu,
		Engine: r.engine,
	}
	if p.rate > 0 {
		res.Model, res.Rate = Open, p.rate
	}
	var sent int64
	for _, w := range r.workers {
		res.Latency.Merge(w.latency)
		res.Requests += w.finished.Load()
		res.Errors += w.failed.Load()
		res.Late += w.late
		res.Connects += w.connects
		sent += w.sent
		for code, n := range w.status {
			if n > 0 {
				res.Status[code] += n
				res.Responses += n
			}
		}
		for c, n := range w.classes {
			if n == 0 {
				continue
			}
			class := ErrorClass(c)
			res.ErrorsByClass[class] += n
			if _, ok := res.ErrorExamples[class]; !ok && w.examples[c] != "" {
				res.ErrorExamples[class] = w.examples[c]
			}
		}
	}
	if res.Model == Open && !r.stopped.Load() {
		res.Scheduled = r.scheduledWithinBounds()
		res.Unsent = max(res.Scheduled-sent, 0)
	}
	if elapsed > 0 {
		res.RPS = float64(res.Requests) / elapsed.Seconds()
	}
	return res
}

// errStopped ends a worker whose run was interrupted.
var errStopped = errors.New("load interrupted")
