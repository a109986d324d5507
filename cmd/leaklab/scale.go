package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/leaklab/leaklab/scale"
	"github.com/spf13/cobra"
)

// scaleOptions are scale's flags: the comparison as the scale package
// takes it from a command, plus whether workers' stderr passes through.
type scaleOptions struct {
	scale.CompareCommandOptions
	workerLogs bool
}

func newCmdScale(f *factory) *cobra.Command {
	opts := &scaleOptions{}
	cmd := &cobra.Command{
		Use:   "scale (--service NAME | --cmd COMMAND)",
		Short: "Compare clustered (multi-process) with single-process throughput",
		Long: `Answer "would running N processes, like Node's cluster module, serve more than
one Go process?" with numbers.

Each strategy runs the target on one loopback port:

  single      one process with GOMAXPROCS=N (N = --workers)
  reuseport   N processes, each with its own SO_REUSEPORT socket on the port
  roundrobin  N processes; leaklab accepts every connection and passes it to
              the next worker over a unix socket (SCM_RIGHTS), as Node's
              cluster does by default
  shared-fd   N processes inheriting one listening socket, racing to accept
              (Node's SCHED_NONE)

Multi-process workers get GOMAXPROCS=--procs-per-worker (1). Runs take
turns (single, reuseport, ..., single, reuseport, ...), each on freshly
started processes after a warm-up, with 'leaklab load' in the closed model.
Per strategy the report gives requests/s (median, 95% confidence interval),
p50 and p99 latency, the workers' CPU per request, their peak RSS, restarts,
and how connections and requests fell on the workers; each strategy is
compared with single by the Mann-Whitney U test, as benchstat does.

The target is a catalog service (--service) or any command (--cmd, run with
/bin/sh -c) that serves HTTP on the listener it is given:

  LEAKLAB_LISTEN_FD=3     fd 3 is a listening TCP socket: accept on it
  LEAKLAB_CONN_FD=3       fd 3 is a unix socket; each message carries one
                          accepted TCP connection (SCM_RIGHTS): serve it
  LEAKLAB_LISTEN_ADDR=A   listen on A yourself, with SO_REUSEPORT when
  LEAKLAB_REUSEPORT=1     is set
  LEAKLAB_STATS_FD=4      optional: a unix socket; write a JSON line
                          {"pid":..,"connections":..,"requests":..} when
                          ready and again for every newline read from it

A worker that crashes is restarted, and the restarts are counted. Every
worker runs in its own process group and dies with leaklab (Pdeathsig),
even when leaklab is killed.`,
		Example: `  # the CPU-bound sample, fixed variant, every strategy, 2 workers
  leaklab scale --service cpu-bound --fixed --workers 2

  # the I/O-bound sample's leaky variant: a per-process bottleneck
  leaklab scale --service io-bound --strategies single,reuseport -c 64

  # your own server (it must take its listener as described above)
  leaklab scale --cmd './myserver' --path /api/items --runs 8 -d 5s

  # keep the raw runs for benchstat, and a page with charts
  leaklab scale --service cpu-bound --fixed --benchfmt scale.txt --html scale.html
  benchstat -col /strategy scale.txt`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 0 {
				return usageErrorf("scale takes no arguments (give the target with --service NAME or --cmd COMMAND)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScale(cmd.Context(), f, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Service, "service", "", "catalog service to run in each worker (see 'leaklab services')")
	fl.BoolVar(&opts.Fixed, "fixed", false, "run the service's fixed twin")
	fl.StringVar(&opts.Command, "cmd", "", "command to run in each worker (via /bin/sh -c) instead of a catalog service")
	fl.StringVar(&opts.Path, "path", "", "request path to load (default: the service's first endpoint, or / with --cmd); {i} is the request number")
	fl.StringVar(&opts.ReadyPath, "ready-path", "", "path polled until the target answers (default /healthz for a service, else /)")
	fl.StringVar(&opts.Strategies, "strategies", "single,reuseport,roundrobin,shared-fd", "strategies to compare, comma-separated")
	fl.IntVar(&opts.Workers, "workers", runtime.NumCPU(), "worker processes (single: its GOMAXPROCS)")
	fl.IntVar(&opts.ProcsPerWorker, "procs-per-worker", scale.DefaultProcsPerWorker, "GOMAXPROCS of each process in the multi-process strategies")
	fl.IntVar(&opts.Runs, "runs", scale.DefaultRuns, "measured runs per strategy (6 or more for a 95% interval)")
	fl.DurationVarP(&opts.Duration, "duration", "d", scale.DefaultRunDuration, "length of each measured run")
	fl.DurationVar(&opts.Warmup, "warmup", scale.DefaultWarmup, "load before each measured run, not counted")
	fl.IntVarP(&opts.Connections, "connections", "c", scale.DefaultCompareConnections, "concurrent connections of the load generator")
	fl.BoolVar(&opts.NoKeepAlive, "no-keepalive", false, "a new connection for every request (exercises the accept path)")
	fl.StringVar(&opts.Addr, "addr", "127.0.0.1:0", "loopback address the workers serve (port 0 picks a free one)")
	fl.DurationVar(&opts.StartTimeout, "start-timeout", scale.DefaultStartTimeout, "how long the workers may take to answer")
	fl.StringVar(&opts.Benchfmt, "benchfmt", "", "also write every run in Go benchmark format to this file (for benchstat)")
	fl.StringVar(&opts.HTML, "html", "", "also write a self-contained HTML report with charts to this file")
	fl.BoolVar(&opts.workerLogs, "worker-logs", false, "pass the workers' standard error through")
	cmd.AddCommand(newCmdScaleWorker())
	return cmd
}

func runScale(ctx context.Context, f *factory, o *scaleOptions) error {
	opts := o.CompareCommandOptions
	if o.workerLogs {
		opts.Stderr = f.streams.ErrOut
	}
	if f.streams.ErrIsTerminal {
		opts.Progress = func(p scale.CompareProgress) {
			if p.Done {
				fmt.Fprintf(f.streams.ErrOut, "%.0f req/s\n", p.Result.RPS)
				return
			}
			fmt.Fprintf(f.streams.ErrOut, "run %d/%d %-10s ", p.Run, p.Runs, p.Strategy)
		}
	}
	rep, err := opts.Run(ctx)
	if err != nil {
		return err
	}
	return f.render(rep, rep.WriteText)
}

// newCmdScaleWorker is the process 'leaklab scale --service' starts in
// each worker: the catalog service served on the listener the master
// arranged (see package scale's worker protocol). Hidden: people run
// 'scale', not this.
func newCmdScaleWorker() *cobra.Command {
	var fixed bool
	cmd := &cobra.Command{
		Use:    "worker NAME",
		Short:  "Serve a sample service as a 'leaklab scale' worker",
		Hidden: true,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("scale worker takes one service name")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScaleWorker(cmd.Context(), cmd.ErrOrStderr(), args[0], fixed)
		},
	}
	cmd.Flags().BoolVar(&fixed, "fixed", false, "run the fixed twin")
	return cmd
}

func runScaleWorker(ctx context.Context, stderr io.Writer, name string, fixed bool) error {
	// SIGTERM from the master is the normal end: shut down cleanly.
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	return scale.ServeService(ctx, name, fixed, stderr)
}
