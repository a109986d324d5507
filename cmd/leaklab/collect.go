package main

import (
	"context"
	"log/slog"

	"github.com/leaklab/leaklab/internal/bytesize"
	"github.com/leaklab/leaklab/profiles/collect"
	"github.com/spf13/cobra"
)

// collectOptions are collect's flags: the collector as the collect
// package takes it from a command, plus --public and --quiet.
type collectOptions struct {
	collect.CommandOptions
	public bool
	quiet  bool
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
	fl.StringVar(&opts.Targets, "targets", "", "Prometheus file_sd file (JSON or YAML) listing the targets to pull from")
	fl.StringVar(&opts.Prometheus, "prometheus", "", "discover targets from this Prometheus's /api/v1/targets")
	fl.StringArrayVar(&opts.Jobs, "job", nil, "with --prometheus, only targets of this job (repeatable)")
	fl.StringSliceVar(&opts.Types, "type", collect.DefaultTypes, "profile types to pull (heap, allocs, goroutine, goroutineleak, mutex, block, cpu)")
	fl.DurationVar(&opts.Every, "every", collect.DefaultEvery, "interval between two captures of a target")
	fl.DurationVar(&opts.For, "for", 0, "stop after this long (default: until interrupted)")
	fl.DurationVar(&opts.Timeout, "timeout", 0, "give up on one capture after this long (default 10s, at most --every)")
	fl.BoolVar(&opts.NoGC, "no-gc", false, "do not ask targets to collect garbage before each heap profile (cheaper for them; in-use numbers as of their last GC)")
	fl.IntVar(&opts.Concurrency, "concurrency", collect.DefaultConcurrency, "targets captured at once")
	fl.DurationVar(&opts.Refresh, "refresh", collect.DefaultRefresh, "how often to re-read --targets or ask --prometheus again")
	fl.StringVar(&opts.Listen, "listen", collect.DefaultListen, "address for the push API (/ingest), /metrics and /healthz; empty disables")
	fl.BoolVar(&opts.public, "public", false, "allow a non-loopback --listen (anyone reaching it can push)")
	fl.StringVar(&opts.Forward, "forward", "", "also send every profile to this Pyroscope base URL")
	fl.StringVar(&opts.Credentials.Tenant, "forward-tenant", "", "with --forward, the tenant ID sent as "+collect.TenantHeader+" (multi-tenant Pyroscope)")
	fl.StringVar(&opts.Credentials.User, "forward-user", "", "with --forward, the basic-auth user; the password comes from $"+collect.ForwardPasswordEnv+" or --forward-password-file")
	fl.StringVar(&opts.Credentials.PasswordFile, "forward-password-file", "", "file holding the basic-auth password for --forward-user (instead of $"+collect.ForwardPasswordEnv+")")
	fl.BoolVar(&opts.NoStore, "no-store", false, "do not write the local store (with --forward: forward only)")
	fl.StringVar(&opts.Retain, "retain", "7d", "remove collected profiles older than this (e.g. 36h, 7d; 0 keeps them)")
	fl.StringVar(&opts.MaxStore, "max-store-size", "1GiB", "remove the oldest collected profiles above this total size (0: no limit)")
	fl.StringVar(&opts.MaxPush, "max-push-size", bytesize.Format(collect.DefaultMaxPushBytes), "largest push request accepted")
	fl.DurationVar(&opts.Grace, "grace", collect.DefaultGrace, "at shutdown, how long in-flight captures may take to finish")
	fl.BoolVar(&opts.quiet, "quiet", false, "log warnings only")
	fl.DurationVar(&opts.Window, "detect-window", collect.DefaultDetectWindow, "judge each target's heap and goroutine history over this sliding window (0: no leak detection)")
	fl.IntVar(&opts.MaxSuspects, "max-suspects-per-target", collect.DefaultMaxSuspectsPerTarget, "most suspects one target puts on /metrics and /suspects")
	fl.StringVar(&opts.Shard, "shard", "", "INDEX/COUNT: collect only this share of the targets (hash of host:port modulo COUNT, as Prometheus's hashmod on __address__)")
	return cmd
}

// collectStarted is the first line 'collect --output json' prints.
type collectStarted = collect.Started

func collectRun(ctx context.Context, f *factory, opts *collectOptions) error {
	co := opts.CommandOptions
	co.Credentials.PasswordEnv = f.getenv(collect.ForwardPasswordEnv)
	level := slog.LevelInfo
	if opts.quiet {
		level = slog.LevelWarn
	}
	env := collect.CommandEnv{
		OpenStore: f.openStore,
		Public:    opts.public,
		Logger:    slog.New(slog.NewTextHandler(f.streams.ErrOut, &slog.HandlerOptions{Level: level})),
	}
	if f.output == outputJSON {
		env.Started = func(s collectStarted) error { return renderJSONLine(f.streams.Out, s) }
	}
	sum, err := co.RunCommand(ctx, env)
	if err != nil {
		return err
	}
	return f.render(sum, sum.WriteText)
}
