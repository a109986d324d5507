// Package check answers, for a service reached over HTTP, the question
// leaktest answers inside a Go test: does a request leave heap or
// goroutines behind? It drives the service itself (the open model of
// scale.Load), measures exact totals between rounds (the live heap after a
// forced collection and the goroutine count), fits the growth per request,
// and names the sites that grew from heap and goroutine profile diffs.
//
// It sits at the end of leaklab's data flow for CI: live service → load
// and fetch → diff → a pass/fail Report that 'leaklab check' renders as
// text, JSON or JUnit XML.
package check

import (
	"context"
	"fmt"
	"github.com/leaklab/leaklab/internal/opterr"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/leaklab/leaklab/internal/growth"
	"github.com/leaklab/leaklab/profiles"
	"github.com/leaklab/leaklab/scale"
)

// Defaults for Options fields left zero.
const (
	// DefaultRequests is how many requests each round sends.
	DefaultRequests = 200
	// DefaultRounds is how many measured rounds follow the warm-up round.
	DefaultRounds = 5
	// DefaultRate is the open model's rate, in requests per second.
	DefaultRate = 200
	// DefaultConnections bounds the requests in flight.
	DefaultConnections = 16
	// DefaultMaxRetainedPerRequest is the heap, in bytes per request, a
	// service may keep: above the noise of a live server's heap (buffers,
	// pools, metrics), far below a cache entry or a leaked goroutine's data.
	DefaultMaxRetainedPerRequest = 512
	// DefaultMaxGoroutinesPerRequest is how many goroutines per request may
	// stay: one in a hundred, above the coming and going of connection
	// goroutines between rounds.
	DefaultMaxGoroutinesPerRequest = 0.01
	// settleTimeout bounds the wait, before each measurement, for the
	// goroutine count to stop falling (connections closing, handlers
	// finishing).
	settleTimeout = 3 * time.Second
	// maxSites bounds the sites a report lists per kind.
	maxSites = 10
)

// Drive is what each request is: a method and a path, with {i} replaced by
// the request's sequence number.
type Drive struct {
	Method string `json:"method"`
	Path   string `json:"path"`
}

func (d Drive) String() string { return d.Method + " " + d.Path }

// DriveError says a drive spec does not parse.
type DriveError struct {
	Spec   string
	Reason string
}

func (e *DriveError) Error() string {
	return fmt.Sprintf("invalid Drive %q: %s; want 'METHOD PATH', e.g. 'GET /product?id={i}'", e.Spec, e.Reason)
}

// ParseDrive parses "METHOD PATH".
func ParseDrive(spec string) (Drive, error) {
	f := strings.Fields(spec)
	switch {
	case len(f) == 0:
		return Drive{}, &DriveError{spec, "it is empty"}
	case len(f) == 1:
		return Drive{}, &DriveError{spec, "a method and a path are needed"}
	case len(f) > 2:
		return Drive{}, &DriveError{spec, "more than a method and a path"}
	}
	d := Drive{Method: strings.ToUpper(f[0]), Path: f[1]}
	for _, r := range d.Method {
		if r < 'A' || r > 'Z' {
			return Drive{}, &DriveError{spec, fmt.Sprintf("%q is not an HTTP method", f[0])}
		}
	}
	if !strings.HasPrefix(d.Path, "/") {
		return Drive{}, &DriveError{spec, fmt.Sprintf("the path %q does not start with /", d.Path)}
	}
	if _, err := url.Parse(strings.ReplaceAll(d.Path, scale.SeqPlaceholder, "0")); err != nil {
		return Drive{}, &DriveError{spec, "the path is not a valid URL path"}
	}
	return d, nil
}

// Options say what to drive and what may stay.
type Options struct {
	// Target is the service's base URL, serving /debug/pprof.
	Target string
	Drive  Drive
	// Requests per round, Rounds measured after a warm-up round of
	// Warmup requests (Requests when zero).
	Requests int
	Rounds   int
	Warmup   int
	// Rate and Connections shape the open-model load.
	Rate        float64
	Connections int
	// Limits per request; the defaults when zero. A negative
	// MaxGoroutinesPerRequest means zero.
	MaxRetainedPerRequest   float64
	MaxGoroutinesPerRequest float64
	// Own names the service's own code, for naming sites.
	Own profiles.OwnCode
	// AllowRemote permits a target that is not a loopback address.
	AllowRemote bool
	// Client fetches profiles and /metrics; a default one when nil.
	Client *http.Client
	// Progress, when set, hears what the check is doing.
	Progress func(string)
}

// Report is a check's verdict and its evidence.
type Report struct {
	Target           string  `json:"target"`
	Drive            string  `json:"drive"`
	Rounds           int     `json:"rounds"`
	RequestsPerRound int     `json:"requests_per_round"`
	Rate             float64 `json:"rate"`
	// Requests measured (warm-up excluded), and how many got no 2xx.
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	// Source says where the totals came from: "metrics" (the runtime's
	// go_gc_heap_live_bytes and go_sched_goroutines_goroutines on /metrics,
	// read right after the heap profile's forced collection) or
	// "profiles" (the heap profile's in-use total, which is sampled, and
	// the goroutine profile's count).
	Source     string      `json:"source"`
	Heap       Measurement `json:"heap"`
	Goroutines Measurement `json:"goroutines"`
	// HeapSites and GoroutineSites are what grew between the first and
	// the last measurement, largest first, named after their first frame
	// of own code.
	HeapSites      []Site  `json:"heap_sites"`
	GoroutineSites []Site  `json:"goroutine_sites"`
	Passed         bool    `json:"passed"`
	Elapsed        float64 `json:"elapsed_seconds"`
}

// Measurement is one total over the rounds and its verdict.
type Measurement struct {
	Unit string `json:"unit"` // bytes or goroutines
	// Series holds the total after the warm-up and after each round.
	Series []float64 `json:"series"`
	// PerRequest is the least-squares growth per request; Floor the
	// growth of the series' floor and LateHalf the growth over the later
	// half of the rounds, per request (see internal/growth).
	PerRequest float64 `json:"per_request"`
	Floor      float64 `json:"floor_per_request"`
	LateHalf   float64 `json:"late_half_per_request"`
	Limit      float64 `json:"limit_per_request"`
	Exceeded   bool    `json:"exceeded"`
}

// Site is an allocation site or a goroutine site that grew.
type Site struct {
	Function   string   `json:"function"`
	WaitState  string   `json:"wait_state,omitempty"`
	Delta      int64    `json:"delta"`
	PerRequest float64  `json:"per_request"`
	Stack      []string `json:"stack,omitempty"` // one example, leaf first
}

// TargetError says the target cannot be checked (it does not answer, or
// does not serve pprof); nothing was judged.
type TargetError struct{ Err error }

func (e *TargetError) Error() string { return e.Err.Error() }
func (e *TargetError) Unwrap() error { return e.Err }

// Run drives the target and judges it.
func Run(ctx context.Context, o Options) (*Report, error) {
	o = withDefaults(o)
	base, err := baseURL(o.Target)
	if err != nil {
		return nil, err
	}
	c := &checker{o: o, base: base, client: o.Client}
	if c.client == nil {
		c.client = &http.Client{Timeout: profiles.DefaultTimeout}
	}
	start := time.Now()
	// Before any load: does it serve pprof at all?
	c.progress("checking %s/debug/pprof", base)
	if _, err := c.fetch(ctx, profiles.TypeGoroutine); err != nil {
		return nil, &TargetError{Err: err}
	}
	r := &Report{Target: base, Drive: o.Drive.String(), Rounds: o.Rounds, RequestsPerRound: o.Requests, Rate: o.Rate}
	seq := int64(0)
	c.progress("warm-up: %d requests", o.Warmup)
	if _, err := c.drive(ctx, seq, o.Warmup); err != nil {
		return nil, err
	}
	seq += int64(o.Warmup)
	first, err := c.measure(ctx)
	if err != nil {
		return nil, err
	}
	r.Source = first.source
	samples := []sample{first}
	for round := 1; round <= o.Rounds; round++ {
		c.progress("round %d of %d: %d requests", round, o.Rounds, o.Requests)
		res, err := c.drive(ctx, seq, o.Requests)
		if err != nil {
			return nil, err
		}
		seq += int64(o.Requests)
		r.Requests += res.Requests
		r.Errors += res.Errors
		s, err := c.measure(ctx)
		if err != nil {
			return nil, err
		}
		s.requests = r.Requests
		samples = append(samples, s)
	}
	r.Heap = judge(samples, func(s sample) float64 { return s.heapBytes }, "bytes", o.MaxRetainedPerRequest)
	r.Goroutines = judge(samples, func(s sample) float64 { return s.goroutines }, "goroutines", o.MaxGoroutinesPerRequest)
	last := samples[len(samples)-1]
	if r.HeapSites, err = heapSites(first.heap, last.heap, o.Own, r.Requests); err != nil {
		return nil, err
	}
	if r.GoroutineSites, err = goroutineSites(first.goroutine, last.goroutine, o.Own, r.Requests); err != nil {
		return nil, err
	}
	r.Passed = !r.Heap.Exceeded && !r.Goroutines.Exceeded
	r.Elapsed = time.Since(start).Seconds()
	return r, nil
}

func withDefaults(o Options) Options {
	if o.Requests <= 0 {
		o.Requests = DefaultRequests
	}
	if o.Rounds <= 0 {
		o.Rounds = DefaultRounds
	}
	if o.Warmup <= 0 {
		o.Warmup = o.Requests
	}
	if o.Rate <= 0 {
		o.Rate = DefaultRate
	}
	if o.Connections <= 0 {
		o.Connections = DefaultConnections
	}
	if o.MaxRetainedPerRequest == 0 {
		o.MaxRetainedPerRequest = DefaultMaxRetainedPerRequest
	}
	switch {
	case o.MaxGoroutinesPerRequest == 0:
		o.MaxGoroutinesPerRequest = DefaultMaxGoroutinesPerRequest
	case o.MaxGoroutinesPerRequest < 0:
		o.MaxGoroutinesPerRequest = 0
	}
	return o
}

func baseURL(target string) (string, error) {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", opterr.Errorf("target", "invalid URL %q: want the service's base URL, e.g. http://127.0.0.1:8080", target)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	return u.String(), nil
}

type checker struct {
	o      Options
	base   string
	client *http.Client
}

func (c *checker) progress(format string, args ...any) {
	if c.o.Progress != nil {
		c.o.Progress(fmt.Sprintf(format, args...))
	}
}

// drive sends n requests on the open model, numbering them from seq so
// that every round sends new keys.
func (c *checker) drive(ctx context.Context, seq int64, n int) (*scale.LoadResult, error) {
	res, err := scale.Load(ctx, scale.LoadOptions{
		URL: c.base + c.o.Drive.Path, Method: c.o.Drive.Method, Requests: int64(n), FirstSeq: seq,
		Rate: c.o.Rate, Connections: c.o.Connections, AllowRemote: c.o.AllowRemote,
		// Bounded by count; the duration is only a backstop against a
		// target that stops answering.
		Duration: time.Duration(float64(n)/c.o.Rate*float64(time.Second))*4 + 30*time.Second,
	})
	switch {
	case opterr.Is(err):
		return nil, err // an option scale refused: exit 2, as the command's own
	case err != nil:
		return nil, err
	case res.Requests > 0 && res.Responses == 0:
		return nil, &TargetError{fmt.Errorf("no request to %s %s got a response; is the service up?", c.o.Drive.Method, c.base+c.o.Drive.Path)}
	}
	return res, nil
}

// sample is one measurement.
type sample struct {
	requests   int64
	source     string
	heapBytes  float64
	goroutines float64
	heap       *profiles.Captured
	goroutine  *profiles.Captured
}

func (c *checker) fetch(ctx context.Context, typ string) (*profiles.Captured, error) {
	return profiles.Fetch(ctx, c.base, profiles.FetchOptions{Type: typ, Client: c.client, NoServiceName: true})
}

// measure waits for the goroutine count to settle, then fetches the heap
// profile (which forces a collection), the goroutine profile and /metrics.
func (c *checker) measure(ctx context.Context) (sample, error) {
	var s sample
	g, err := c.settledGoroutines(ctx)
	if err != nil {
		return s, err
	}
	if s.heap, err = c.fetch(ctx, profiles.TypeHeap); err != nil {
		return s, &TargetError{err}
	}
	s.goroutine = g
	m, ok := c.runtimeMetrics(ctx)
	if ok {
		s.source = "metrics"
		s.heapBytes, s.goroutines = m.heapLive, m.goroutines
		return s, nil
	}
	s.source = "profiles"
	sum, err := profiles.Summarize(s.heap, profiles.DiffOptions{SampleIndex: "inuse_space"})
	if err != nil {
		return s, err
	}
	s.heapBytes = float64(sum.CurrentTotal)
	gs, err := profiles.Summarize(g, profiles.DiffOptions{})
	if err != nil {
		return s, err
	}
	s.goroutines = float64(gs.CurrentTotal)
	return s, nil
}

// settledGoroutines fetches goroutine profiles until the count stops
// falling: connections of the round just ended close, handlers finish.
func (c *checker) settledGoroutines(ctx context.Context) (*profiles.Captured, error) {
	deadline := time.Now().Add(settleTimeout)
	var prev *profiles.Captured
	prevN := int64(-1)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		g, err := c.fetch(ctx, profiles.TypeGoroutine)
		if err != nil {
			return nil, &TargetError{err}
		}
		sum, err := profiles.Summarize(g, profiles.DiffOptions{})
		if err != nil {
			return nil, err
		}
		n := sum.CurrentTotal
		if (prevN >= 0 && n >= prevN) || time.Now().After(deadline) {
			if prev != nil && prevN <= n {
				return prev, nil
			}
			return g, nil
		}
		prev, prevN = g, n
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

type runtimeTotals struct{ heapLive, goroutines float64 }

// runtimeMetrics reads the runtime's own totals from /metrics, as
// client_golang's Go collector exports them from runtime/metrics.
func (c *checker) runtimeMetrics(ctx context.Context) (runtimeTotals, bool) {
	var t runtimeTotals
	var heapOK, gOK bool
	err := profiles.ScanMetrics(ctx, c.client, c.base, 10*time.Second, 32<<20, func(line string) bool {
		if v, ok := profiles.MetricValue(line, "go_gc_heap_live_bytes"); ok {
			t.heapLive, heapOK = v, true
		}
		if v, ok := profiles.MetricValue(line, "go_sched_goroutines_goroutines"); ok {
			t.goroutines, gOK = v, true
		}
		return true
	})
	return t, heapOK && gOK && err == nil
}

// judge fits the growth per request, by the rule leaktest uses: a steady
// growth above the limit, not a step or a wobble.
func judge(ss []sample, value func(sample) float64, unit string, limit float64) Measurement {
	m := Measurement{Unit: unit, Limit: limit}
	xs := make([]float64, len(ss))
	for i, s := range ss {
		xs[i] = float64(s.requests)
		m.Series = append(m.Series, value(s))
	}
	f := growth.Of(xs, m.Series)
	m.PerRequest, m.Floor, m.LateHalf = f.Slope, f.Floor, f.Late
	m.Exceeded = f.Exceeds(limit)
	return m
}
