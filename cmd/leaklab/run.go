package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/leaklab/leaklab/internal/bytesize"
	"github.com/leaklab/leaklab/leaks"
	"github.com/spf13/cobra"
)

type runOptions struct {
	addr      string
	fixed     bool
	pyroscope string
	// pyroscopeEvery is the push's upload period; zero keeps
	// pyroscope-go's (15s).
	pyroscopeEvery time.Duration
	maxLeak        string
	public         bool
	quiet          bool
	all            runAllOptions // --all and its flags: see run_all.go
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
  leaklab run unbounded-cache --pyroscope http://127.0.0.1:4040 --pyroscope-upload-rate 5s
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
			if opts.pyroscopeEvery < 0 || (opts.pyroscopeEvery > 0 && opts.pyroscope == "") {
				return usageErrorf("--pyroscope-upload-rate takes a positive duration, with --pyroscope")
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
	fl.DurationVar(&opts.pyroscopeEvery, "pyroscope-upload-rate", 0, "how often the --pyroscope push uploads (default pyroscope-go's 15s)")
	fl.StringVar(&opts.maxLeak, "max-leak", bytesize.Format(leaks.DefaultMaxLeak), "stop leaking after this much (e.g. 64MiB, 1G)")
	fl.BoolVar(&opts.public, "public", false, "allow a non-loopback --addr (exposes /debug/pprof to the network)")
	fl.BoolVar(&opts.quiet, "quiet", false, "log warnings only")
	addRunAllFlags(fl, &opts.all)
	return cmd
}

func runRun(ctx context.Context, f *factory, opts *runOptions, name string) error {
	level := slog.LevelInfo
	if opts.quiet {
		level = slog.LevelWarn
	}
	logger := slog.New(slog.NewTextHandler(f.streams.ErrOut, &slog.HandlerOptions{Level: level}))
	ro := leaks.RunOptions{Name: name, MaxLeak: opts.maxLeak, Options: leaks.Options{
		Addr: opts.addr, Fixed: opts.fixed, Pyroscope: opts.pyroscope, PyroscopeUploadRate: opts.pyroscopeEvery,
		Public: opts.public, Logger: logger,
	}}
	return leaks.Run(ctx, ro, func(r leaks.Running) error {
		if f.output == outputJSON {
			// One line, so a script can read it as soon as the service is up.
			return renderJSONLine(f.streams.Out, r)
		}
		return r.WriteText(f.streams.Out)
	})
}
