package main

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"time"

	"github.com/leaklab/leaklab/scale"
	"github.com/spf13/cobra"
)

type loadOptions struct {
	connections int
	duration    time.Duration
	requests    int64
	rate        float64
	timeout     time.Duration
	method      string
	headers     []string
	body        string
	bodyFile    string
	noKeepAlive bool
	insecure    bool
	allowRemote bool
	procs       int
	thresholds  []string
	// durationSet tells an explicit -d from the default, which a count
	// bound replaces.
	durationSet bool
}

func newCmdLoad(f *factory) *cobra.Command {
	opts := &loadOptions{}
	cmd := &cobra.Command{
		Use:   "load URL",
		Short: "Send bounded HTTP load to a URL and report throughput and latency",
		Long: `Send HTTP/1.1 load to URL and report requests/s, latency percentiles, status
codes and errors (refused, reset, timeout, non-2xx, other).

Two models:
  closed (default)  -c connections each send the next request as soon as the
                    previous response is in: maximum throughput.
  open (--rate R)   R requests/s on a fixed schedule, whatever the server does;
                    latency counts from each request's scheduled time, so a
                    stall shows in the percentiles instead of hiding. Requests
                    that found every connection busy are reported as late.

The run is always bounded: -d (default 10s) or -n requests, whichever comes
first, and each request by --timeout. {i} in the URL becomes the request's
sequence number, so services keyed by request data see new keys. Only
loopback targets unless --allow-remote.`,
		Example: `  # 64 connections for 10 seconds, as fast as the server answers
  leaklab load -c 64 -d 10s http://127.0.0.1:8080/

  # 500 requests/s for 30 seconds, latency measured from the schedule
  leaklab load --rate 500 -d 30s 'http://127.0.0.1:8080/product?id={i}'

  # fail a CI job (exit 3) when the service is too slow or fails too often
  leaklab load -d 30s --threshold 'p99<200ms' --threshold 'errors<1%' http://127.0.0.1:8080/

  # exactly 1000 POSTs with a JSON body, as JSON
  leaklab load -n 1000 -m POST -H 'Content-Type: application/json' \
      --body '{"user":42}' http://127.0.0.1:8080/login --output json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("load takes one URL, e.g. leaklab load http://127.0.0.1:8080/")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.durationSet = cmd.Flags().Changed("duration")
			return loadRun(cmd.Context(), f, opts, args[0])
		},
	}
	fl := cmd.Flags()
	fl.IntVarP(&opts.connections, "connections", "c", scale.DefaultConnections, "connections (the most requests in flight)")
	fl.DurationVarP(&opts.duration, "duration", "d", scale.DefaultDuration, "how long to send; with -n and no -d, no time bound")
	fl.Int64VarP(&opts.requests, "requests", "n", 0, "how many requests to send (0: bounded by -d only)")
	fl.Float64Var(&opts.rate, "rate", 0, "open model: requests per second on a fixed schedule (0: closed model)")
	fl.DurationVar(&opts.timeout, "timeout", scale.DefaultTimeout, "per-request timeout, connecting included")
	fl.StringVarP(&opts.method, "method", "m", http.MethodGet, "HTTP method")
	fl.StringArrayVarP(&opts.headers, "header", "H", nil, "request header 'Name: value' (repeatable)")
	fl.StringVar(&opts.body, "body", "", "request body")
	fl.StringVar(&opts.bodyFile, "body-file", "", "read the request body from this file")
	fl.BoolVar(&opts.noKeepAlive, "no-keepalive", false, "open a new connection for every request")
	fl.BoolVar(&opts.insecure, "insecure", false, "do not verify the server's TLS certificate")
	fl.BoolVar(&opts.allowRemote, "allow-remote", false, "allow a target that is not a loopback address")
	fl.StringArrayVar(&opts.thresholds, "threshold", nil, "pass/fail condition checked at the end, e.g. p99<200ms, errors<1%, rps>1000 (repeatable; exit 3 when one fails)")
	fl.IntVar(&opts.procs, "procs", 0, "CPUs the generator may use at once (GOMAXPROCS; 0: all), like wrk's -t")
	return cmd
}

// loadOptionsFromFlags checks the flags and builds the scale options.
func loadOptionsFromFlags(opts *loadOptions, url string) (scale.LoadOptions, error) {
	return scale.LoadCommandOptions{
		Connections: opts.connections, Duration: opts.duration, DurationSet: opts.durationSet, Requests: opts.requests,
		Rate: opts.rate, Timeout: opts.timeout, Method: opts.method, Headers: opts.headers, Body: opts.body,
		BodyFile: opts.bodyFile, NoKeepAlive: opts.noKeepAlive, Insecure: opts.insecure, AllowRemote: opts.allowRemote, Procs: opts.procs,
	}.Options(url)
}

func loadRun(ctx context.Context, f *factory, opts *loadOptions, url string) error {
	lo, err := loadOptionsFromFlags(opts, url)
	if err != nil {
		return err
	}
	// A threshold that does not parse stops the command before any load.
	thresholds, err := scale.ParseThresholds(opts.thresholds)
	if err != nil {
		return err // an opterr: exit 2
	}
	if opts.procs > 0 {
		// Leaves the other CPUs to a target on the same machine.
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(opts.procs))
	}
	if f.streams.ErrIsTerminal {
		lo.Progress = func(p scale.LoadProgress) {
			fmt.Fprintf(f.streams.ErrOut, "\r\033[K  %4.0fs  %d requests  %.0f req/s  %d errors",
				p.Elapsed.Seconds(), p.Requests, float64(p.Requests)/p.Elapsed.Seconds(), p.Errors)
		}
	}
	res, err := scale.Load(ctx, lo)
	if f.streams.ErrIsTerminal {
		fmt.Fprint(f.streams.ErrOut, "\r\033[K")
	}
	if res == nil {
		return err // an option scale refused is an opterr: exit 2
	}
	judged := scale.Judge(res, thresholds)
	if err := f.render(judged.Report, judged.WriteText); err != nil {
		return err
	}
	if err := judged.Failure(); err != nil {
		return err
	}
	if judged.Failed > 0 {
		return &foundError{what: fmt.Sprintf("%d of %d thresholds failed", judged.Failed, len(judged.Checked))}
	}
	return nil
}
