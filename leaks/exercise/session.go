package exercise

import (
	"context"
	"strings"
	"time"

	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/scale"
)

// DefaultLoadFor bounds the steady load an exercise applies.
const DefaultLoadFor = 30 * time.Minute

// SessionOptions configure Start.
type SessionOptions struct {
	Service leaks.Options
	// Rate overrides the service's steady load (requests per second).
	Rate float64
	// LoadFor bounds the load; DefaultLoadFor when zero.
	LoadFor time.Duration
}

// Session is a sample service running under steady load.
type Session struct {
	Server  *leaks.Server
	Rate    float64
	cancel  context.CancelFunc
	done    chan struct{}
	Load    *scale.LoadResult
	LoadErr error
}

// Start runs svc and sends it steady open-model load on its first
// endpoint until Stop, ctx ends, or LoadFor passes.
func Start(ctx context.Context, svc *leaks.Service, opts SessionOptions) (*Session, error) {
	srv, err := leaks.Start(ctx, svc, opts.Service)
	if err != nil {
		return nil, err
	}
	rate := opts.Rate
	if rate <= 0 {
		rate = svc.Rate
	}
	loadFor := opts.LoadFor
	if loadFor <= 0 {
		loadFor = DefaultLoadFor
	}
	lctx, cancel := context.WithCancel(ctx)
	s := &Session{Server: srv, Rate: rate, cancel: cancel, done: make(chan struct{})}
	load := SteadyLoad(svc, srv.URL(), 16, loadFor)
	load.Rate = rate
	go func() {
		defer close(s.done)
		s.Load, s.LoadErr = scale.Load(lctx, load)
	}()
	return s, nil
}

// SteadyLoad describes the steady open-model load on a service's first
// endpoint (its method, {i} path and body) at the service's own rate,
// over conns connections for dur.
func SteadyLoad(svc *leaks.Service, base string, conns int, dur time.Duration) scale.LoadOptions {
	ep := svc.Endpoints[0]
	var body []byte
	if ep.BodyBytes > 0 {
		body = []byte(strings.Repeat("x", ep.BodyBytes))
	}
	return scale.LoadOptions{
		URL: strings.TrimRight(base, "/") + ep.Path, Method: ep.Method, Body: body,
		Rate: svc.Rate, Connections: conns, Duration: dur,
	}
}

// LoadDone is closed when the load has ended.
func (s *Session) LoadDone() <-chan struct{} { return s.done }

// Stop ends the load and shuts the service down.
func (s *Session) Stop() error {
	s.cancel()
	<-s.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.Server.Shutdown(ctx)
}
