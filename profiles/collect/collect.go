// Package collect is leaklab's continuous profile collector: it pulls
// profiles from many services on a schedule and accepts profiles pushed by
// pyroscope-go on Grafana Pyroscope's /ingest API, and hands both to the
// local profile store (profiles.Store, with a retention policy) and/or
// forwards them to a real Pyroscope.
//
// It sits at the start of leaklab's data flow (live service → fetch →
// store), running the same fetch and store as 'leaklab capture' but
// continuously, so that 'leaklab profiles ls' and 'leaklab diff' work on
// collected history. It is a single-node design: one process, one
// directory. Past that, services push to Pyroscope and this collector's
// --forward is the bridge.
package collect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"sync"
	"time"

	"github.com/leaklab/leaklab/internal/opterr"
	"github.com/leaklab/leaklab/profiles"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Defaults for Options.
const (
	DefaultEvery       = 15 * time.Second
	DefaultTimeout     = 10 * time.Second
	DefaultConcurrency = 16
	DefaultRefresh     = 30 * time.Second
	DefaultMaxBackoff  = 5 * time.Minute
	DefaultGrace       = 5 * time.Second
	// DefaultMaxPushBytes bounds one push request body; pyroscope-go's
	// pushes of a busy service are well under 1 MiB.
	DefaultMaxPushBytes = 16 << 20
	// DefaultMaxDecompressed bounds one profile after gunzip, far below
	// profiles.DefaultMaxDecompressed: a collector takes many profiles at
	// once and must not let one target or pusher take its memory.
	DefaultMaxDecompressed = 64 << 20
	// DefaultListen is where the push API and /metrics listen: loopback,
	// on Pyroscope's usual port, so that --pyroscope http://127.0.0.1:4040
	// reaches it.
	DefaultListen = "127.0.0.1:4040"

	// LabelCollected marks store entries the collector wrote ("pull" or
	// "push"); retention only ever removes those, never a profile someone
	// captured by hand.
	LabelCollected = "collected"
)

// DefaultTypes are the profile types pulled when Options.Types is empty:
// the two that show leaks.
var DefaultTypes = []string{profiles.TypeHeap, profiles.TypeGoroutine}

// Options configure a Collector. Zero fields take the defaults above.
type Options struct {
	// Discover lists pull targets; nil means push only.
	Discover Discoverer
	// Types are the profile types pulled from each target.
	Types []string
	// Every is the interval between two captures of a target.
	Every time.Duration
	// Refresh is how often Discover is asked again.
	Refresh time.Duration
	// Timeout bounds one capture (a cpu profile's own seconds come on top).
	Timeout time.Duration
	// NoGC skips the garbage collection a heap capture asks the target
	// for (see profiles.FetchOptions.NoGC): cheaper for the targets, but
	// in-use numbers are as of their last GC.
	NoGC bool
	// Concurrency bounds how many targets are captured at once.
	Concurrency int
	// MaxBackoff caps the wait before retrying a failing target.
	MaxBackoff time.Duration
	// Store receives the profiles; nil means forward only.
	Store *profiles.Store
	// Retention bounds what the collector keeps in Store.
	Retention Retention
	// Forward is a Pyroscope base URL (http://pyroscope:4040) to send every
	// profile to; empty disables forwarding.
	Forward string
	// ForwardAuth is what the forward target wants to know of each
	// request: a tenant and basic-auth credentials.
	ForwardAuth ForwardAuth
	// Listener serves the push API (/ingest), /metrics and /healthz; nil
	// serves nothing. See Listen.
	Listener net.Listener
	// Limits bound each profile read, pulled or pushed.
	Limits profiles.Limits
	// MaxPushBytes bounds one push request body.
	MaxPushBytes int64
	// Grace is how long in-flight captures, pushes and forwards may take
	// to finish once Run's context ends; after it they are discarded.
	Grace time.Duration
	// Logger gets one line per notable event (a target failing or coming
	// back, a rejected push); discarded when nil.
	Logger *slog.Logger
	// Registry gets the collector's metrics; a new registry with the Go
	// and process collectors when nil.
	Registry *prometheus.Registry
	// Client fetches profiles; a pooled client suited to many targets
	// when nil.
	Client *http.Client
	// Detect judges every pull target's heap and goroutine history while
	// collecting (see Detection); off when its Window is zero.
	Detect Detection
	// Shard, when set, keeps only this collector's share of the
	// discovered targets (see Shard).
	Shard Shard
}

// Check refuses options New could not run with (an unknown profile type,
// a negative interval or limit, a forward URL that is not one) with an
// *opterr.Error, without starting anything: a command calls it before
// opening stores and listeners, New calls it again.
func (o *Options) Check() error {
	for _, t := range o.Types {
		if _, _, _, err := profiles.ProfileURL("http://127.0.0.1", profiles.FetchOptions{Type: t}); err != nil {
			return err
		}
	}
	if o.Every < 0 || o.Timeout < 0 || o.Concurrency < 0 || o.Refresh < 0 || o.Grace < 0 || o.MaxPushBytes < 0 {
		return opterr.Errorf("limits", "intervals, timeouts and limits must not be negative")
	}
	if o.Forward != "" {
		if _, err := forwardURL(o.Forward); err != nil {
			return err
		}
	}
	return nil
}

func (o *Options) setDefaults() error {
	if err := o.Check(); err != nil {
		return err
	}
	if len(o.Types) == 0 {
		o.Types = DefaultTypes
	}
	if o.Every == 0 {
		o.Every = DefaultEvery
	}
	if o.Timeout == 0 {
		o.Timeout = min(DefaultTimeout, o.Every)
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Refresh == 0 {
		o.Refresh = DefaultRefresh
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.Grace == 0 {
		o.Grace = DefaultGrace
	}
	if o.MaxPushBytes == 0 {
		o.MaxPushBytes = DefaultMaxPushBytes
	}
	if o.Limits.MaxBytes == 0 {
		o.Limits.MaxBytes = o.MaxPushBytes
	}
	if o.Limits.MaxDecompressed == 0 {
		o.Limits.MaxDecompressed = DefaultMaxDecompressed
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
		o.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if o.Client == nil {
		o.Client = &http.Client{
			Transport: &http.Transport{
				Proxy:               nil, // targets are scraped directly, as Prometheus does
				MaxIdleConns:        4 * o.Concurrency,
				MaxIdleConnsPerHost: 1,
				IdleConnTimeout:     2 * o.Every,
				DisableCompression:  true, // profiles are gzipped already
			},
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 3 {
					return errors.New("too many redirects")
				}
				return nil
			},
		}
	}
	if err := o.Detect.check(); err != nil {
		return err
	}
	if err := o.Shard.check(); err != nil {
		return err
	}
	if o.Store == nil && o.Forward == "" {
		return errors.New("nowhere to put the profiles: give a store, a forward URL, or both")
	}
	return nil
}

// Collector pulls and accepts profiles; create it with New and run it
// with Run.
type Collector struct {
	opts Options
	m    *metrics
	log  *slog.Logger
	sem  chan struct{} // bounds concurrent captures
	push chan struct{} // bounds concurrent push decoding
	ret  *retention
	fwd  *forwarder
	// fleet judges the targets' histories; nil when detection is off.
	fleet *fleet
	// views are the pprof UIs /suspects' diff links opened.
	views diffViews

	// fetchCtx is separate from Run's context so that stopping ends the
	// schedule at once but lets in-flight captures finish within Grace.
	fetchCtx    context.Context
	cancelFetch context.CancelFunc

	mu      sync.Mutex
	stats   map[string]*TargetSummary
	summary Summary
}

// Summary is what a collector did, for the report at the end of a run.
type Summary struct {
	Seconds        float64         `json:"duration_seconds"`
	Targets        []TargetSummary `json:"targets"`
	Captures       int             `json:"captures"`
	Failures       int             `json:"failures"`
	Bytes          int64           `json:"bytes"`
	Pushes         int             `json:"pushes"`
	PushesRejected int             `json:"pushes_rejected"`
	Forwarded      int             `json:"forwarded"`
	ForwardFailed  int             `json:"forward_failed"`
	Discarded      int             `json:"discarded"`
	Pruned         int             `json:"pruned"`
	// Suspects are the leak suspects as last judged (with detection on).
	Suspects []Suspect `json:"suspects"`
}

// TargetSummary is one pull target's share of a Summary.
type TargetSummary struct {
	Target    string `json:"target"`
	Service   string `json:"service,omitempty"`
	Captures  int    `json:"captures"`
	Failures  int    `json:"failures"`
	Bytes     int64  `json:"bytes"`
	LastError string `json:"last_error,omitempty"`
}

// New checks opts and prepares a collector.
func New(opts Options) (*Collector, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	c := &Collector{
		opts:  opts,
		m:     newMetrics(opts.Registry),
		log:   opts.Logger,
		sem:   make(chan struct{}, opts.Concurrency),
		push:  make(chan struct{}, max(2, runtime.GOMAXPROCS(0))),
		stats: map[string]*TargetSummary{},
	}
	c.fetchCtx, c.cancelFetch = context.WithCancel(context.Background())
	if opts.Detect.Window > 0 {
		c.fleet = newFleet(opts.Detect, opts.Store, opts.Limits, opts.Client, c.log, opts.Registry)
	}
	if opts.Store != nil {
		r, err := newRetention(opts.Store, opts.Retention, c.m, c.log)
		if err != nil {
			return nil, err
		}
		c.ret = r
	}
	if opts.Forward != "" {
		f, err := newForwarder(opts.Forward, opts.ForwardAuth, c.m, c.log)
		if err != nil {
			return nil, err
		}
		c.fwd = f
	}
	return c, nil
}

// Handler serves the push API (POST /ingest), the collector's own
// /metrics, /healthz, and /debug/pprof: a profiler should be profilable
// itself (the listener is loopback unless --public).
func (c *Collector) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ingest", c.handleIngest)
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.Handle("GET /metrics", promhttp.HandlerFor(c.opts.Registry, promhttp.HandlerOpts{}))
	c.handleSuspects(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// Run collects until ctx ends, then stops cleanly: no new captures start,
// in-flight ones get Options.Grace to finish (else they are discarded, and
// nothing half-written is ever visible in the store), pushes in flight are
// answered, and queued forwards get the same grace. It first removes what
// already breaks the retention bounds. Every goroutine it starts has ended
// when it returns, also when it returns early with an error.
func (c *Collector) Run(ctx context.Context) (Summary, error) {
	start := time.Now()
	defer c.cancelFetch()
	var wg sync.WaitGroup
	if c.ret != nil {
		// The first sweep is here rather than in New, so that preparing a
		// collector never removes anything from the store.
		c.ret.enforce(start)
	}
	if c.fleet != nil {
		// before the listener serves: the first push replays its history
		c.fleet.loadHistory(start)
	}
	var srv *http.Server
	serveErr := make(chan error, 1)
	if c.opts.Listener != nil {
		srv = &http.Server{
			Handler:           c.Handler(),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       time.Minute, // a push trickling in cannot hold a slot for ever
			ErrorLog:          slog.NewLogLogger(c.log.Handler(), slog.LevelWarn),
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := srv.Serve(c.opts.Listener)
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			serveErr <- err
		}()
	}
	if c.fwd != nil {
		c.fwd.start()
	}
	retCtx, stopRet := context.WithCancel(ctx)
	defer stopRet()
	if c.ret != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.ret.run(retCtx)
		}()
	}

	var runErr error
	if c.opts.Discover != nil {
		runErr = c.pull(ctx)
	} else {
		select {
		case <-ctx.Done():
		case runErr = <-serveErr:
		}
	}

	// Stop: the schedule has ended (pull returned); captures still running
	// have until the grace deadline.
	graceCtx, cancel := context.WithTimeout(context.Background(), c.opts.Grace)
	defer cancel()
	if srv != nil {
		if err := srv.Shutdown(graceCtx); err != nil {
			srv.Close()
		}
	}
	c.views.close()
	if c.fwd != nil {
		c.fwd.stop(graceCtx)
	}
	stopRet() // ctx may not have ended: pull or Serve failed
	wg.Wait()
	sum := c.Summary()
	sum.Seconds = time.Since(start).Seconds()
	return sum, runErr
}

// Summary returns what the collector has done so far.
func (c *Collector) Summary() Summary {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.summary
	s.Targets = nil
	for _, t := range c.stats {
		s.Targets = append(s.Targets, *t)
	}
	sortTargets(s.Targets)
	if c.fwd != nil {
		s.Forwarded, s.ForwardFailed = c.fwd.counts()
	}
	if c.ret != nil {
		s.Pruned = c.ret.prunedCount()
	}
	s.Suspects = c.Suspects()
	return s
}

// deliver hands one profile to the store and the forwarder. received is
// the profile's bytes as fetched or pushed: the store keeps them as they
// are when they are gzip (Store.SaveRaw), which saves compressing every
// profile again. raw, when not nil, is the original push, forwarded as
// received.
func (c *Collector) deliver(cp *profiles.Captured, received []byte, raw *forwardItem) (int64, error) {
	var size int64
	if c.opts.Store != nil {
		meta, err := c.opts.Store.SaveRaw(cp, received)
		if err != nil {
			c.m.saveErrors.Inc()
			return 0, err
		}
		size = meta.Bytes
		c.ret.add(meta)
	}
	if c.fwd != nil {
		item := raw
		if item == nil {
			var err error
			if item, err = forwardItemFor(cp, c.opts.Every); err != nil {
				return size, err
			}
		}
		if size == 0 {
			size = int64(len(item.profile))
		}
		c.fwd.enqueue(item)
	}
	return size, nil
}

// Listen opens addr for the push API and /metrics, refusing a
// non-loopback address unless public is set: the push API accepts data
// from anyone who can reach it.
func Listen(addr string, public bool) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, opterr.Errorf("Listen", "listen address %q: want host:port, e.g. %s", addr, DefaultListen)
	}
	if !public && !isLoopbackHost(host) {
		return nil, &opterr.Error{Option: "Listen", Others: []string{"Public"}, Err: fmt.Errorf("refusing to listen on %s: it is not a loopback address and anyone on the network could push profiles (use 127.0.0.1, or allow it with Public if you mean it): %w", addr, ErrNotLoopback)}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w (choose another listen address, or port 0 for a free one)", addr, err)
	}
	return ln, nil
}

// ErrNotLoopback is wrapped by Listen's error (an option error, see
// opterr) for a non-loopback address.
var ErrNotLoopback = errors.New("not a loopback address")
