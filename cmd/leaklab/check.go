package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/leaklab/leaklab/internal/atomicfile"

	"github.com/leaklab/leaklab/internal/bytesize"
	"github.com/leaklab/leaklab/profiles/check"
	"github.com/spf13/cobra"
)

type checkOptions struct {
	drive         string
	requests      int
	warmup        int
	rounds        int
	rate          float64
	connections   int
	maxRetained   string
	maxGoroutines float64
	junit         string
	own           []string
	allowRemote   bool
}

func newCmdCheck(f *factory) *cobra.Command {
	opts := &checkOptions{}
	cmd := &cobra.Command{
		Use:   "check URL --drive 'METHOD PATH'",
		Short: "Drive a service and fail (exit 3) when requests leave heap or goroutines behind",
		Long: `Send rounds of requests to a running service (open model), measure after each
round its exact live heap after a forced GC and its goroutine count (from
/metrics when the service exports the runtime's metrics, else from its heap
and goroutine profiles), fit the growth per request, and name the
allocation and goroutine sites that grew (profile diffs, own code first).

Exit 0 when nothing grows beyond the limits, 3 when something does, 1 when
the service cannot be checked (it does not answer or serve /debug/pprof),
2 on bad usage. --junit writes a JUnit XML report for CI systems.`,
		Example: `  # 5 rounds of 200 requests, new product IDs each time
  leaklab check http://127.0.0.1:8080 --drive 'GET /product?id={i}'

  # stricter limits, a JUnit report for the CI job
  leaklab check http://127.0.0.1:8080 --drive 'POST /login?user=u{i}' \
      --max-retained-per-request 64B --max-goroutines-per-request 0 --junit leaks.xml

  # a service with a bounded cache of 1,000 entries: fill it before measuring
  leaklab check http://127.0.0.1:8080 --drive 'GET /product?id={i}' --warmup 2000

  # machine-readable verdict
  leaklab check http://127.0.0.1:8080 --drive 'GET /search?q={i}' --output json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("check takes one URL, e.g. leaklab check http://127.0.0.1:8080 --drive 'GET /'")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return checkRun(cmd.Context(), f, opts, args[0], cmd.Flags().Changed("max-goroutines-per-request"))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.drive, "drive", "", "the request to send: 'METHOD PATH', {i} becomes the request's number (required)")
	fl.IntVarP(&opts.requests, "requests", "n", check.DefaultRequests, "requests per round")
	fl.IntVar(&opts.rounds, "rounds", check.DefaultRounds, "measured rounds (after one warm-up round)")
	fl.IntVar(&opts.warmup, "warmup", 0, "requests of the warm-up round, e.g. enough to fill a bounded cache (default: as many as -n)")
	fl.Float64Var(&opts.rate, "rate", check.DefaultRate, "requests per second (open model)")
	fl.IntVarP(&opts.connections, "connections", "c", check.DefaultConnections, "the most requests in flight")
	fl.StringVar(&opts.maxRetained, "max-retained-per-request", bytesize.Format(check.DefaultMaxRetainedPerRequest), "heap a request may leave behind, e.g. 64B, 1KiB")
	fl.Float64Var(&opts.maxGoroutines, "max-goroutines-per-request", check.DefaultMaxGoroutinesPerRequest, "goroutines a request may leave behind")
	fl.StringVar(&opts.junit, "junit", "", "also write a JUnit XML report to this file")
	fl.StringSliceVar(&opts.own, "own", nil, "module path(s) of the service's own code (default: from its go_build_info metric)")
	fl.BoolVar(&opts.allowRemote, "allow-remote", false, "allow a target that is not a loopback address")
	return cmd
}

func checkRun(ctx context.Context, f *factory, opts *checkOptions, target string, goroutinesSet bool) error {
	co, err := check.CommandOptions{
		Drive: opts.drive, Requests: opts.requests, Warmup: opts.warmup, Rounds: opts.rounds, Rate: opts.rate, Connections: opts.connections,
		MaxRetained: opts.maxRetained, MaxGoroutines: opts.maxGoroutines, MaxGoroutinesSet: goroutinesSet,
		Own: opts.own, AllowRemote: opts.allowRemote,
	}.Options(ctx, target)
	if err != nil {
		return err
	}
	if f.streams.ErrIsTerminal {
		co.Progress = func(s string) { fmt.Fprintf(f.streams.ErrOut, "\r\033[K%s %s", time.Now().Format("15:04:05"), s) }
	}
	rep, err := check.Run(ctx, co)
	if f.streams.ErrIsTerminal {
		fmt.Fprint(f.streams.ErrOut, "\r\033[K")
	}
	if err != nil {
		return err
	}
	if opts.junit != "" {
		if err := atomicfile.Write(opts.junit, func(w io.Writer) error { return check.WriteJUnit(w, rep) }); err != nil {
			return fmt.Errorf("--junit: %w", err)
		}
	}
	if err := f.render(rep, func(w io.Writer) error { return check.WriteText(w, rep) }); err != nil {
		return err
	}
	if !rep.Passed {
		return &foundError{what: "a limit was exceeded"}
	}
	return nil
}
