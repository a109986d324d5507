package leaks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"runtime"
	runpprof "runtime/pprof"
	"sync"
	"syscall"
	"time"

	deltapprof "github.com/grafana/pyroscope-go/godeltaprof/http/pprof"
	"github.com/leaklab/leaklab/internal/bytesize"
	"github.com/leaklab/leaklab/internal/opterr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultAddr is where a service listens unless told otherwise: loopback,
// because /debug/pprof must not be reachable from the network by accident.
const DefaultAddr = "127.0.0.1:8080"

// Profiling rates the scaffolding turns on so that the mutex and block
// profiles have something to show: one in mutexProfileFraction contention
// events, and blocking events weighted by blockProfileRateNanos.
const (
	mutexProfileFraction  = 10
	blockProfileRateNanos = 10_000
)

// Options configure Start.
type Options struct {
	Addr  string // host:port; DefaultAddr when empty, port 0 picks a free port
	Fixed bool   // run the fixed twin instead of the leaky variant
	// MaxLeak caps the deliberate leak in bytes; DefaultMaxLeak when zero.
	MaxLeak int64
	// Pyroscope is the URL of a Pyroscope server (or leaklab collect) to push
	// continuous profiles to; empty disables the push.
	Pyroscope string
	// PyroscopeUploadRate is how often the push uploads; pyroscope-go's
	// default (15s) when zero. Tests shorten it.
	PyroscopeUploadRate time.Duration
	// Public allows listening on a non-loopback address.
	Public bool
	Logger *slog.Logger
	// Listener, when set, is served instead of listening on Addr: a
	// process started by 'leaklab scale' serves a socket it inherited or
	// bound with SO_REUSEPORT. Start owns it from then on: it closes it
	// when it fails and at shutdown. Addr is ignored.
	Listener net.Listener
	// Middleware, when set, wraps every request the service serves (app,
	// metrics and pprof alike), e.g. to count them per process.
	Middleware func(http.Handler) http.Handler
}

// Env is what a service's code path gets from the scaffolding.
type Env struct {
	Fixed   bool
	Budget  *Budget
	Log     *slog.Logger
	Metrics prometheus.Registerer // labelled with service and variant

	ctx     context.Context
	mu      sync.Mutex
	closers []func()
}

// Context is cancelled when the service shuts down; the fixed variants tie
// their background work to it.
func (e *Env) Context() context.Context { return e.ctx }

// OnClose registers f to run at shutdown, after the HTTP server has stopped.
func (e *Env) OnClose(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closers = append(e.closers, f)
}

// Server is a running sample service.
type Server struct {
	Service *Service
	Variant Variant

	ln       net.Listener
	http     *http.Server
	env      *Env
	cancel   context.CancelFunc
	stopPush func()
	done     chan error
	once     sync.Once
	closeErr error
}

// ListenError says the service could not listen; the message names the
// address and what to do.
type ListenError struct {
	Addr string
	Err  error
}

func (e *ListenError) Error() string {
	if errors.Is(e.Err, syscall.EADDRINUSE) {
		return fmt.Sprintf("cannot listen on %s: the port is taken (choose another with --addr, or port 0 for a free one)", e.Addr)
	}
	return fmt.Sprintf("cannot listen on %s: %v", e.Addr, e.Err)
}

func (e *ListenError) Unwrap() error { return e.Err }

// ParseMaxLeak reads a leak cap such as "64MiB" or "1G" (see
// Options.MaxLeak). Zero is refused: it would mean the default, not what
// was asked.
func ParseMaxLeak(s string) (int64, error) {
	n, err := bytesize.Parse(s)
	if err != nil {
		return 0, &opterr.Error{Option: "MaxLeak", Err: fmt.Errorf("MaxLeak: %w", err)}
	}
	if n == 0 {
		return 0, opterr.Errorf("MaxLeak", "MaxLeak must be more than zero")
	}
	return n, nil
}

// CheckPyroscopeURL refuses a Pyroscope URL Start could not push to (see
// Options.Pyroscope); empty is fine: no push.
func CheckPyroscopeURL(raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return opterr.Errorf("Pyroscope", "invalid pyroscope URL %q: want http://host:port", raw)
	}
	return nil
}

// Start runs svc in the background until ctx ends or Shutdown is called.
func Start(ctx context.Context, svc *Service, opts Options) (_ *Server, err error) {
	if opts.Listener != nil {
		opts.Addr = opts.Listener.Addr().String()
		defer func() {
			if err != nil {
				opts.Listener.Close()
			}
		}()
	}
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	if opts.MaxLeak == 0 {
		opts.MaxLeak = DefaultMaxLeak
	}
	if opts.MaxLeak < 0 {
		return nil, opterr.Errorf("MaxLeak", "MaxLeak must not be negative")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := checkLoopback(opts.Addr, opts.Public); err != nil {
		return nil, err
	}
	if err := CheckPyroscopeURL(opts.Pyroscope); err != nil {
		return nil, err
	}
	var pushURL *url.URL
	if opts.Pyroscope != "" {
		pushURL, _ = url.Parse(opts.Pyroscope) // checked above
	}
	enableContentionProfiles()

	variant := VariantOf(opts.Fixed)
	log := opts.Logger.With("service", svc.Name, "variant", string(variant))
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsAll)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		// go_build_info's path label names the main module, which tells
		// leaklab watch which frames are the service's own code.
		collectors.NewBuildInfoCollector(),
	)
	labelled := prometheus.WrapRegistererWith(prometheus.Labels{"service": svc.Name, "variant": string(variant)}, reg)

	svcCtx, cancel := context.WithCancel(context.Background())
	env := &Env{Fixed: opts.Fixed, Log: log, Metrics: labelled, ctx: svcCtx}
	env.Budget = newBudget(opts.MaxLeak, log, labelled)
	app, err := svc.build(env)
	if err != nil {
		cancel()
		env.runClosers()
		return nil, fmt.Errorf("%s: %w", svc.Name, err)
	}

	ln := opts.Listener
	if ln == nil {
		ln, err = net.Listen("tcp", opts.Addr)
		if err != nil {
			cancel()
			env.runClosers()
			return nil, &ListenError{Addr: opts.Addr, Err: err}
		}
	}

	mux := http.NewServeMux()
	mux.Handle("/", instrument(app, labelled))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { writeIndex(w, svc, variant) })
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mountPprof(mux)

	var handler http.Handler = mux
	if opts.Middleware != nil {
		handler = opts.Middleware(mux)
	}
	s := &Server{
		Service: svc,
		Variant: variant,
		ln:      ln,
		env:     env,
		cancel:  cancel,
		done:    make(chan error, 1),
		http: &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
	}
	if pushURL != nil {
		stop, err := startPyroscope(svc.Name, variant, pushURL.String(), opts.PyroscopeUploadRate, log)
		if err != nil {
			ln.Close()
			cancel()
			env.runClosers()
			return nil, err
		}
		s.stopPush = stop
	}
	go func() {
		err := s.http.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	go func() {
		select {
		case <-ctx.Done():
			sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
			defer c()
			_ = s.Shutdown(sctx)
		case <-svcCtx.Done():
		}
	}()
	log.Info("listening", "url", s.URL())
	return s, nil
}

// URL is the service's base URL, e.g. http://127.0.0.1:8080.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Addr is the address the service listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Wait blocks until the server has stopped serving and returns why.
func (s *Server) Wait() error {
	err := <-s.done
	s.done <- err
	return err
}

// Shutdown stops accepting requests, waits for in-flight ones until ctx
// ends (and then cuts off those still running), then stops the
// service's background work.
func (s *Server) Shutdown(ctx context.Context) error {
	s.once.Do(func() {
		if err := s.http.Shutdown(ctx); err != nil {
			// Requests still running when the grace period ends (a
			// leaky service's can hang forever) are cut off: a stop
			// must stop.
			s.env.Log.Warn("requests still running at shutdown were cut off", "err", err)
			s.closeErr = s.http.Close()
		}
		if s.stopPush != nil {
			s.stopPush()
		}
		s.cancel()
		s.env.runClosers()
	})
	return s.closeErr
}

func (e *Env) runClosers() {
	e.mu.Lock()
	closers := e.closers
	e.closers = nil
	e.mu.Unlock()
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
}

// ErrBadAddress is wrapped by Start's errors (option errors, see opterr)
// for an address it will not listen on: malformed, or not loopback
// without Options.Public.
var ErrBadAddress = errors.New("bad listen address")

// checkLoopback refuses non-loopback addresses unless public is set.
func checkLoopback(addr string, public bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return &opterr.Error{Option: "Addr", Err: fmt.Errorf("invalid address %q: want host:port, e.g. 127.0.0.1:8080%w", addr, quiet(ErrBadAddress))}
	}
	if public {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return &opterr.Error{Option: "Addr", Others: []string{"Public"}, Err: fmt.Errorf("refusing to listen on %s: it is not a loopback address and /debug/pprof would be reachable from the network (use 127.0.0.1, or allow it with Public if you mean it)%w", addr, quiet(ErrBadAddress))}
}

// quiet wraps err so that errors.Is finds it but it adds nothing to the message.
func quiet(err error) error { return quietError{err} }

type quietError struct{ err error }

func (quietError) Error() string   { return "" }
func (q quietError) Unwrap() error { return q.err }

var contentionOnce sync.Once

func enableContentionProfiles() {
	contentionOnce.Do(func() {
		if runtime.SetMutexProfileFraction(-1) == 0 {
			runtime.SetMutexProfileFraction(mutexProfileFraction)
		}
		runtime.SetBlockProfileRate(blockProfileRateNanos)
	})
}

// mountPprof serves the standard profiles (goroutineleak included when the
// binary was built with GOEXPERIMENT=goroutineleakprofile, since pprof.Index
// serves every registered profile by name) and godeltaprof's delta profiles.
func mountPprof(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /debug/pprof/delta_heap", deltapprof.Heap)
	mux.HandleFunc("GET /debug/pprof/delta_mutex", deltapprof.Mutex)
	mux.HandleFunc("GET /debug/pprof/delta_block", deltapprof.Block)
}

// GoroutineLeakProfile reports whether this binary serves the runtime's
// goroutineleak profile (built with GOEXPERIMENT=goroutineleakprofile).
func GoroutineLeakProfile() bool { return runpprof.Lookup("goroutineleak") != nil }

func writeIndex(w http.ResponseWriter, svc *Service, v Variant) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "leaklab sample service %s (%s variant, kind %s)\n\n%s\n\nendpoints:\n", svc.Name, v, svc.Kind, svc.Summary)
	for _, e := range svc.Endpoints {
		m := e.Method
		if m == "" {
			m = http.MethodGet
		}
		fmt.Fprintf(w, "  %-6s %-28s %s\n", m, e.Path, e.Doc)
	}
	fmt.Fprintf(w, "\n  GET    /metrics                     Prometheus metrics\n  GET    /debug/pprof/                profiles\n  GET    /healthz                     health check\n")
}
