package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/leaklab/leaklab/internal/bytesize"
	"github.com/leaklab/leaklab/leaks"
	"github.com/spf13/cobra"
)

type runOptions struct {
	addr      string
	fixed     bool
	pyroscope string
	maxLeak   string
	public    bool
	quiet     bool
	all       runAllOptions // --all and its flags: see run_all.go
}

// runningService is what 'run' reports once the service listens.
type runningService struct {
	Name          string            `json:"name"`
	Variant       leaks.Variant     `json:"variant"`
	URL           string            `json:"url"`
	Endpoints     []runningEndpoint `json:"endpoints"`
	Metrics       string            `json:"metrics"`
	Pprof         string            `json:"pprof"`
	Healthz       string            `json:"healthz"`
	GoroutineLeak bool              `json:"goroutineleak_profile"`
	MaxLeakBytes  int64             `json:"max_leak_bytes"`
	Pyroscope     string            `json:"pyroscope,omitempty"`
}

type runningEndpoint struct {
	Method string `json:"method"`
	URL    string `json:"url"`
	Doc    string `json:"doc"`
}

func newCmdRun(f *factory) *cobra.Command {
	opts := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run NAME",
		Short: "Run a sample service in the foreground",
		Long: `Run one sample service from the catalog until interrupted (Ctrl-C or SIGTERM).

The service serves its app endpoints, /debug/pprof, /metrics and /healthz on
loopback. The leaky variant stops leaking at --max-leak and says so in its log
and in leaklab_leak_capped.

With --all it starts every service in the catalog instead, each as its own
'leaklab run NAME' process (so each one's Go runtime metrics are its own) on
consecutive ports from --base-port, and can write the Prometheus targets file
that the shipped dashboards/stack/prometheus/prometheus.yml reads.`,
		Example: `  leaklab run unbounded-cache
  leaklab run unbounded-cache --fixed --addr 127.0.0.1:9090
  leaklab run abandoned-worker --addr 127.0.0.1:0 --output json
  leaklab run session-memorystore --max-leak 64MiB --pyroscope http://127.0.0.1:4040
  # every service, leaky and fixed, one process each, with a Prometheus targets file
  leaklab run --all --variants both --base-port 9101 --targets-file prometheus/targets/leaklab.json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if opts.all.all {
				if len(args) != 0 {
					return usageErrorf("run --all takes no service name")
				}
				return nil
			}
			if err := rejectAllOnlyFlags(cmd); err != nil {
				return err
			}
			if len(args) != 1 {
				return usageErrorf("run takes one service name (see 'leaklab services')")
			}
			return nil
		},
		ValidArgsFunction: completeServiceNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.all.all {
				return runAllRun(cmd.Context(), cmd, f, opts)
			}
			return runRun(cmd.Context(), f, opts, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.addr, "addr", leaks.DefaultAddr, "address to listen on (port 0 picks a free port)")
	fl.BoolVar(&opts.fixed, "fixed", false, "run the fixed twin instead of the leaky variant")
	fl.StringVar(&opts.pyroscope, "pyroscope", "", "push continuous profiles to this Pyroscope (or 'leaklab collect') URL")
	fl.StringVar(&opts.maxLeak, "max-leak", bytesize.Format(leaks.DefaultMaxLeak), "stop leaking after this much (e.g. 64MiB, 1G)")
	fl.BoolVar(&opts.public, "public", false, "allow a non-loopback --addr (exposes /debug/pprof to the network)")
	fl.BoolVar(&opts.quiet, "quiet", false, "log warnings only")
	addRunAllFlags(fl, &opts.all)
	return cmd
}

func runRun(ctx context.Context, f *factory, opts *runOptions, name string) error {
	svc, err := leaks.Lookup(name)
	if err != nil {
		return &usageError{err: err}
	}
	maxLeak, err := leaks.ParseMaxLeak(opts.maxLeak)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if opts.quiet {
		level = slog.LevelWarn
	}
	logger := slog.New(slog.NewTextHandler(f.streams.ErrOut, &slog.HandlerOptions{Level: level}))
	srv, err := leaks.Start(ctx, svc, leaks.Options{
		Addr: opts.addr, Fixed: opts.fixed, MaxLeak: maxLeak, Pyroscope: opts.pyroscope, Public: opts.public, Logger: logger,
	})
	if err != nil {
		return err
	}
	base := srv.URL()
	report := runningService{
		Name: svc.Name, Variant: srv.Variant, URL: base,
		Metrics: base + "/metrics", Pprof: base + "/debug/pprof/", Healthz: base + "/healthz",
		GoroutineLeak: leaks.GoroutineLeakProfile(), MaxLeakBytes: maxLeak, Pyroscope: opts.pyroscope,
	}
	for _, ep := range svc.Endpoints {
		report.Endpoints = append(report.Endpoints, runningEndpoint{Method: ep.Method, URL: base + ep.Path, Doc: ep.Doc})
	}
	if f.output == outputJSON {
		// One line, so a script can read it as soon as the service is up.
		if err := renderJSONLine(f.streams.Out, report); err != nil {
			return err
		}
	} else if err := writeRunBanner(f.streams.Out, report, svc); err != nil {
		return err
	}
	err = srv.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := srv.Shutdown(sctx); err == nil {
		err = serr
	}
	if err == nil {
		logger.Info("stopped")
	}
	return err
}

func writeRunBanner(w io.Writer, r runningService, svc *leaks.Service) error {
	fmt.Fprintf(w, "%s (%s) is listening on %s\n\n", r.Name, r.Variant, r.URL)
	fmt.Fprintf(w, "  %s\n\n", svc.Summary)
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
	_, err := fmt.Fprintf(w, "Watch it:  curl -s %s | grep %s\n\nCtrl-C to stop.\n", r.Metrics, svc.Symptom.Metric)
	return err
}
