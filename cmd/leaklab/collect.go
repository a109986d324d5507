package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/leaklab/leaklab/internal/bytesize"
	"github.com/leaklab/leaklab/profiles/collect"
	"github.com/spf13/cobra"
)

type collectOptions struct {
	targets      string
	prometheus   string
	jobs         []string
	types        []string
	every        time.Duration
	duration     time.Duration
	timeout      time.Duration
	noGC         bool
	concurrency  int
	refresh      time.Duration
	listen       string
	public       bool
	forward      string
	fwdTenant    string
	fwdUser      string
	fwdPassFile  string
	fwdPassEnv   string // the value of $LEAKLAB_FORWARD_PASSWORD
	noStore      bool
	retain       string
	maxStoreSize string
	maxPushSize  string
	grace        time.Duration
	quiet        bool
	detectWindow time.Duration
	maxSuspects  int
	shard        string
}

func newCmdCollect(f *factory) *cobra.Command {
	opts := &collectOptions{}
	cmd := &cobra.Command{
		Use:   "collect",
		Short: "Collect profiles continuously from many services (pull and Pyroscope push)",
		Long: `Collect profiles continuously into the local profile store, so that
'leaklab profiles ls' and 'leaklab diff' work on history.

Pull: every --every, capture --type profiles from each target of --targets
(a Prometheus file_sd file, JSON or YAML, re-read on every --refresh) or of
--prometheus (the active targets of a running Prometheus, so any discovery
Prometheus does works here). Targets start at random points of the interval,
at most --concurrency are captured at once, each capture has --timeout, and a
failing target is retried after an exponential backoff.

Push: --listen serves Grafana Pyroscope's ingest API (POST /ingest), so
services using pyroscope-go (the sample services' --pyroscope flag) can push
to leaklab itself. It also serves the collector's own /metrics (captures,
failures, bytes and lag per target) and /healthz.

--forward sends every profile on to a real Pyroscope as well (or instead,
with --no-store); --forward-tenant and --forward-user (password from
$LEAKLAB_FORWARD_PASSWORD or --forward-password-file, never the command
line) identify the collector to a multi-tenant one. Retention keeps the collected profiles under --retain (age)
and --max-store-size; profiles captured by hand are never removed.

Detection: every target's heap and goroutine profiles go through the same
detector as 'leaklab watch', judged over the last --detect-window after each
capture round (0 turns it off); a restarted target (new process start time,
another binary, allocation counters reset) starts a new series. Suspects are
on /metrics (leaklab_leak_suspect, leaklab_leak_growth_per_minute, at most
--max-suspects-per-target per target) and on GET /suspects (HTML, or JSON with
Accept: application/json), with links to pprof's web UI on the diff.

--shard i/n keeps only the targets whose hash modulo n is i (Prometheus's
hashmod on the target's host:port, its __address__), so n collectors given the
same targets split them.

Runs for --for, or until Ctrl-C/SIGTERM; captures in flight then get --grace
to finish, and nothing half-written ever appears in the store.`,
		Example: `  # pull heap and goroutine profiles every 15s from the targets in a file
  leaklab collect --targets targets.json
  # discover targets from Prometheus, only its "leaklab" job
  leaklab collect --prometheus http://127.0.0.1:9090 --job leaklab --every 30s
  # accept pushes from sample services on the Pyroscope port, and forward them
  leaklab collect --listen 127.0.0.1:4040 --forward http://pyroscope.internal:4040
  # forward to a multi-tenant Pyroscope behind basic auth (password not on the command line)
  LEAKLAB_FORWARD_PASSWORD=... leaklab collect --targets targets.json \
    --forward https://pyroscope.example.com --forward-tenant team-a --forward-user collector
  leaklab run unbounded-cache --pyroscope http://127.0.0.1:4040
  # judge the last hour; list the suspects across the fleet
  leaklab collect --targets targets.json --detect-window 1h
  curl -H 'Accept: application/json' http://127.0.0.1:4040/suspects
  # the second of three collectors sharing one targets file
  leaklab collect --targets targets.json --shard 1/3 --listen 127.0.0.1:4041
  # then diff this service's heap now against an hour ago
  leaklab profiles ls --target http://127.0.0.1:8080 --type heap --since 1h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return collectRun(cmd.Context(), f, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.targets, "targets", "", "Prometheus file_sd file (JSON or YAML) listing the targets to pull from")
	fl.StringVar(&opts.prometheus, "prometheus", "", "discover targets from this Prometheus's /api/v1/targets")
	fl.StringArrayVar(&opts.jobs, "job", nil, "with --prometheus, only targets of this job (repeatable)")
	fl.StringSliceVar(&opts.types, "type", collect.DefaultTypes, "profile types to pull (heap, allocs, goroutine, goroutineleak, mutex, block, cpu)")
	fl.DurationVar(&opts.every, "every", collect.DefaultEvery, "interval between two captures of a target")
	fl.DurationVar(&opts.duration, "for", 0, "stop after this long (default: until interrupted)")
	fl.DurationVar(&opts.timeout, "timeout", 0, "give up on one capture after this long (default 10s, at most --every)")
	fl.BoolVar(&opts.noGC, "no-gc", false, "do not ask targets to collect garbage before each heap profile (cheaper for them; in-use numbers as of their last GC)")
	fl.IntVar(&opts.concurrency, "concurrency", collect.DefaultConcurrency, "targets captured at once")
	fl.DurationVar(&opts.refresh, "refresh", collect.DefaultRefresh, "how often to re-read --targets or ask --prometheus again")
	fl.StringVar(&opts.listen, "listen", collect.DefaultListen, "address for the push API (/ingest), /metrics and /healthz; empty disables")
	fl.BoolVar(&opts.public, "public", false, "allow a non-loopback --listen (anyone reaching it can push)")
	fl.StringVar(&opts.forward, "forward", "", "also send every profile to this Pyroscope base URL")
	fl.StringVar(&opts.fwdTenant, "forward-tenant", "", "with --forward, the tenant ID sent as "+collect.TenantHeader+" (multi-tenant Pyroscope)")
	fl.StringVar(&opts.fwdUser, "forward-user", "", "with --forward, the basic-auth user; the password comes from $"+collect.ForwardPasswordEnv+" or --forward-password-file")
	fl.StringVar(&opts.fwdPassFile, "forward-password-file", "", "file holding the basic-auth password for --forward-user (instead of $"+collect.ForwardPasswordEnv+")")
	fl.BoolVar(&opts.noStore, "no-store", false, "do not write the local store (with --forward: forward only)")
	fl.StringVar(&opts.retain, "retain", "7d", "remove collected profiles older than this (e.g. 36h, 7d; 0 keeps them)")
	fl.StringVar(&opts.maxStoreSize, "max-store-size", "1GiB", "remove the oldest collected profiles above this total size (0: no limit)")
	fl.StringVar(&opts.maxPushSize, "max-push-size", bytesize.Format(collect.DefaultMaxPushBytes), "largest push request accepted")
	fl.DurationVar(&opts.grace, "grace", collect.DefaultGrace, "at shutdown, how long in-flight captures may take to finish")
	fl.BoolVar(&opts.quiet, "quiet", false, "log warnings only")
	fl.DurationVar(&opts.detectWindow, "detect-window", collect.DefaultDetectWindow, "judge each target's heap and goroutine history over this sliding window (0: no leak detection)")
	fl.IntVar(&opts.maxSuspects, "max-suspects-per-target", collect.DefaultMaxSuspectsPerTarget, "most suspects one target puts on /metrics and /suspects")
	fl.StringVar(&opts.shard, "shard", "", "INDEX/COUNT: collect only this share of the targets (hash of host:port modulo COUNT, as Prometheus's hashmod on __address__)")
	return cmd
}

// collectStarted is the first line 'collect --output json' prints, so a
// script can read where to push as soon as the collector listens.
type collectStarted struct {
	URL     string `json:"url,omitempty"`
	Ingest  string `json:"ingest,omitempty"`
	Metrics string `json:"metrics,omitempty"`
	Store   string `json:"store,omitempty"`
}

func collectRun(ctx context.Context, f *factory, opts *collectOptions) error {
	opts.fwdPassEnv = f.getenv(collect.ForwardPasswordEnv)
	co, err := opts.toOptions()
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if opts.quiet {
		level = slog.LevelWarn
	}
	logger := slog.New(slog.NewTextHandler(f.streams.ErrOut, &slog.HandlerOptions{Level: level}))
	co.Logger = logger

	started := collectStarted{}
	if !opts.noStore {
		if co.Store, err = f.openStore(); err != nil {
			return err
		}
		started.Store = co.Store.Dir()
	}
	if opts.listen != "" {
		ln, err := collect.Listen(opts.listen, opts.public)
		if err != nil {
			return err
		}
		co.Listener = ln
		started.URL = "http://" + ln.Addr().String()
		started.Ingest, started.Metrics = started.URL+"/ingest", started.URL+"/metrics"
	}
	c, err := collect.New(co)
	if err != nil {
		if co.Listener != nil {
			co.Listener.Close()
		}
		return err
	}
	if f.output == outputJSON {
		if err := renderJSONLine(f.streams.Out, started); err != nil {
			return err
		}
	}
	if started.URL != "" {
		logger.Info("listening", "ingest", started.Ingest, "metrics", started.Metrics)
	}
	if opts.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.duration)
		defer cancel()
	}
	sum, err := c.Run(ctx)
	if err != nil {
		return err
	}
	logger.Info("stopped")
	return f.render(sum, sum.WriteText)
}

func (opts *collectOptions) toOptions() (collect.Options, error) {
	return collect.CommandOptions{
		Targets: opts.targets, Prometheus: opts.prometheus, Jobs: opts.jobs, Types: opts.types, Every: opts.every,
		For: opts.duration, Timeout: opts.timeout, NoGC: opts.noGC, Concurrency: opts.concurrency, Refresh: opts.refresh,
		Listen: opts.listen, Forward: opts.forward, NoStore: opts.noStore, Retain: opts.retain,
		MaxStore: opts.maxStoreSize, MaxPush: opts.maxPushSize, Grace: opts.grace,
		Window: opts.detectWindow, MaxSuspects: opts.maxSuspects, Shard: opts.shard,
		Credentials: collect.ForwardCredentials{Tenant: opts.fwdTenant, User: opts.fwdUser, PasswordFile: opts.fwdPassFile, PasswordEnv: opts.fwdPassEnv},
	}.Options()
}
