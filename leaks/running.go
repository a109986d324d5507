package leaks

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/leaklab/leaklab/internal/opterr"
)

// ShutdownGrace is how long Run lets in-flight requests finish once the
// service is told to stop.
const ShutdownGrace = 5 * time.Second

// Running is what 'leaklab run' reports once a service listens.
type Running struct {
	Name          string            `json:"name"`
	Variant       Variant           `json:"variant"`
	URL           string            `json:"url"`
	Endpoints     []RunningEndpoint `json:"endpoints"`
	Metrics       string            `json:"metrics"`
	Pprof         string            `json:"pprof"`
	Healthz       string            `json:"healthz"`
	GoroutineLeak bool              `json:"goroutineleak_profile"`
	MaxLeakBytes  int64             `json:"max_leak_bytes"`
	Pyroscope     string            `json:"pyroscope,omitempty"`

	service *Service // for the text banner's summary and symptom
}

// RunningEndpoint is one of a running service's app endpoints.
type RunningEndpoint struct {
	Method string `json:"method"`
	URL    string `json:"url"`
	Doc    string `json:"doc"`
}

// RunOptions are a single service's run as 'leaklab run' takes it: the
// service by name, the leak cap as text (see ParseMaxLeak).
type RunOptions struct {
	Name    string
	MaxLeak string
	Options // its MaxLeak is set from the text
}

// Run starts the named service, calls started once it listens, and serves
// until ctx ends or the server fails; then it shuts the service down,
// giving in-flight requests ShutdownGrace. Refused options (an unknown
// service, a bad leak cap or address) are *opterr.Error.
func Run(ctx context.Context, o RunOptions, started func(Running) error) error {
	svc, err := Lookup(o.Name)
	if err != nil {
		return &opterr.Error{Option: "service", Err: err}
	}
	if o.Options.MaxLeak, err = ParseMaxLeak(o.MaxLeak); err != nil {
		return err
	}
	srv, err := Start(ctx, svc, o.Options)
	if err != nil {
		return err
	}
	err = started(srv.running(o.Options))
	if err == nil {
		err = srv.Wait()
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	if serr := srv.Shutdown(sctx); err == nil {
		err = serr
	}
	if err == nil && o.Logger != nil {
		o.Logger.Info("stopped")
	}
	return err
}

// running describes s as started with opts.
func (s *Server) running(opts Options) Running {
	base := s.URL()
	r := Running{
		Name: s.Service.Name, Variant: s.Variant, URL: base,
		Metrics: base + "/metrics", Pprof: base + "/debug/pprof/", Healthz: base + "/healthz",
		GoroutineLeak: GoroutineLeakProfile(), MaxLeakBytes: opts.MaxLeak, Pyroscope: opts.Pyroscope,
		service: s.Service,
	}
	for _, ep := range s.Service.Endpoints {
		r.Endpoints = append(r.Endpoints, RunningEndpoint{Method: ep.Method, URL: base + ep.Path, Doc: ep.Doc})
	}
	return r
}

// WriteText writes the banner 'leaklab run' prints: where the service
// listens, its endpoints, and how to drive and watch it.
func (r Running) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "%s (%s) is listening on %s\n\n", r.Name, r.Variant, r.URL)
	fmt.Fprintf(w, "  %s\n\n", r.service.Summary)
	for _, ep := range r.Endpoints {
		fmt.Fprintf(w, "  %-5s %s\n        %s\n", ep.Method, ep.URL, ep.Doc)
	}
	fmt.Fprintf(w, "\n  metrics  %s\n  pprof    %s\n  health   %s\n", r.Metrics, r.Pprof, r.Healthz)
	if r.GoroutineLeak {
		fmt.Fprintf(w, "  leaks    %sgoroutineleak (this binary has the runtime's goroutine-leak profile)\n", r.Pprof)
	}
	first := r.Endpoints[0]
	curl := "curl -s"
	if first.Method != "GET" {
		curl += " -X " + first.Method
	}
	fmt.Fprintf(w, "\nDrive it:  for i in $(seq 1000); do %s \"%s\" >/dev/null; done\n", curl, strings.ReplaceAll(first.URL, "{i}", "$i"))
	_, err := fmt.Fprintf(w, "Watch it:  curl -s %s | grep %s\n\nCtrl-C to stop.\n", r.Metrics, r.service.Symptom.Metric)
	return err
}
