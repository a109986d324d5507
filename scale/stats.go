package scale

import (
	"fmt"
	"math"
	"slices"

	"golang.org/x/perf/benchmath"
)

// Confidence is the level of the confidence intervals in reports.
const Confidence = 0.95

// Report is the outcome of Compare. Its JSON form is the contract of
// 'leaklab scale --output json' (DESIGN.md): results[].strategy, workers,
// rps_median, rps_ci_low, rps_ci_high and p99_seconds_median are stable.
type Report struct {
	Target          string           `json:"target"`
	Path            string           `json:"path"`
	Workers         int              `json:"workers"`
	ProcsPerWorker  int              `json:"procs_per_worker"`
	Connections     int              `json:"connections"`
	KeepAlive       bool             `json:"keep_alive"`
	RunsPerStrategy int              `json:"runs_per_strategy"`
	WarmupSeconds   float64          `json:"warmup_seconds"`
	DurationSeconds float64          `json:"duration_seconds"`
	Baseline        Strategy         `json:"baseline"`
	Results         []StrategyResult `json:"results"`
	Runs            []RunResult      `json:"runs"`
}

// StrategyResult summarises the runs of one strategy.
type StrategyResult struct {
	Strategy Strategy `json:"strategy"`
	// Workers is the number of worker processes; GOMAXPROCS is each one's.
	Workers    int `json:"workers"`
	GOMAXPROCS int `json:"gomaxprocs"`
	Runs       int `json:"runs"`

	RPSMedian float64 `json:"rps_median"`
	// RPSCILow and RPSCIHigh bound the median at RPSCIConfidence (at least
	// Confidence with six runs or more; with fewer, the range of the runs
	// and the confidence that range has).
	RPSCILow        float64 `json:"rps_ci_low"`
	RPSCIHigh       float64 `json:"rps_ci_high"`
	RPSCIConfidence float64 `json:"rps_ci_confidence"`

	P50SecondsMedian           float64 `json:"p50_seconds_median"`
	P99SecondsMedian           float64 `json:"p99_seconds_median"`
	CPUSecondsPerRequestMedian float64 `json:"cpu_seconds_per_request_median"`
	PeakRSSBytesMax            int64   `json:"peak_rss_bytes_max"`
	Requests                   int64   `json:"requests"`
	Errors                     int64   `json:"errors"`
	Restarts                   int     `json:"restarts"`
	WarmupRestarts             int     `json:"warmup_restarts"`
	// MasterCPUSeconds and WorkerCPUSeconds add up the round-robin master's
	// and the workers' CPU over every run's window.
	MasterCPUSeconds float64 `json:"master_cpu_seconds"`
	WorkerCPUSeconds float64 `json:"worker_cpu_seconds"`
	WorkersGivenUp   int     `json:"workers_given_up"`

	// Spread is how connections and requests fell on the workers, over
	// all runs; nil when the workers did not report them.
	Spread []WorkerSpread `json:"spread,omitempty"`
	// VsBaseline compares this strategy with the report's baseline.
	VsBaseline *Comparison `json:"vs_baseline,omitempty"`
}

// WorkerSpread is one worker slot's share of the work.
type WorkerSpread struct {
	Index           int     `json:"index"`
	Connections     int64   `json:"connections"`
	Requests        int64   `json:"requests"`
	ConnectionShare float64 `json:"connection_share"`
	RequestShare    float64 `json:"request_share"`
}

// Comparison holds a strategy's differences from the baseline.
type Comparison struct {
	Baseline Strategy `json:"baseline"`
	RPS      Delta    `json:"rps"`
	P99      Delta    `json:"p99"`
}

// Delta is the change of a median from the baseline's, tested for
// significance with the Mann-Whitney U test (benchmath.AssumeNothing, as
// benchstat does).
type Delta struct {
	// Percent is the change of the median; PlusMinus approximates the
	// half-width of its 95% interval from the two medians' intervals
	// (relative widths added in quadrature), 0 when either is unbounded.
	Percent     float64 `json:"percent"`
	PlusMinus   float64 `json:"plus_minus_percent"`
	P           float64 `json:"p"`
	Significant bool    `json:"significant"`
	// Text reads like benchstat: "+23.4% ± 4.1%, p=0.002" or "no
	// significant difference (p=0.310)".
	Text string `json:"text"`
}

var thresholds = &benchmath.Thresholds{CompareAlpha: 0.05}

// summarize groups runs by strategy and compares each with the baseline:
// single when it was run, else the first strategy.
func summarize(opts CompareOptions, runs []RunResult) *Report {
	rep := &Report{
		Target: opts.Target.Name, Path: opts.Path, Workers: opts.Workers, ProcsPerWorker: opts.ProcsPerWorker,
		Connections: opts.Connections, KeepAlive: !opts.DisableKeepAlive, RunsPerStrategy: opts.Runs,
		WarmupSeconds: opts.Warmup.Seconds(), DurationSeconds: opts.Duration.Seconds(),
		Baseline: opts.Strategies[0], Runs: runs,
	}
	if slices.Contains(opts.Strategies, Single) {
		rep.Baseline = Single
	}
	samples := map[Strategy]map[string][]float64{}
	for _, s := range opts.Strategies {
		r := summarizeStrategy(opts, s, runs)
		samples[s] = r.samples
		rep.Results = append(rep.Results, r.StrategyResult)
	}
	base := samples[rep.Baseline]
	for i := range rep.Results {
		r := &rep.Results[i]
		if r.Strategy == rep.Baseline {
			continue
		}
		cur := samples[r.Strategy]
		r.VsBaseline = &Comparison{
			Baseline: rep.Baseline,
			RPS:      compareSamples(base["rps"], cur["rps"]),
			P99:      compareSamples(base["p99"], cur["p99"]),
		}
	}
	return rep
}

type strategySummary struct {
	StrategyResult
	samples map[string][]float64
}

func summarizeStrategy(opts CompareOptions, s Strategy, runs []RunResult) strategySummary {
	out := strategySummary{StrategyResult: StrategyResult{Strategy: s, Workers: opts.Workers, GOMAXPROCS: opts.ProcsPerWorker}, samples: map[string][]float64{}}
	if s == Single {
		out.Workers, out.GOMAXPROCS = 1, opts.Workers
	}
	var spread []WorkerSpread
	known := true
	for _, r := range runs {
		if r.Strategy != s {
			continue
		}
		out.Runs++
		out.samples["rps"] = append(out.samples["rps"], r.RPS)
		out.samples["p50"] = append(out.samples["p50"], r.P50)
		out.samples["p99"] = append(out.samples["p99"], r.P99)
		out.samples["cpu"] = append(out.samples["cpu"], r.CPUPerRequest)
		out.PeakRSSBytesMax = max(out.PeakRSSBytesMax, r.PeakRSSBytes)
		out.Requests += r.Requests
		out.Errors += r.Errors
		out.Restarts += r.Restarts
		out.WarmupRestarts += r.WarmupRestarts
		out.MasterCPUSeconds += r.MasterCPUSeconds
		out.WorkerCPUSeconds += r.CPUSeconds - r.MasterCPUSeconds
		out.WorkersGivenUp += r.WorkersGivenUp
		for _, w := range r.Workers {
			for len(spread) <= w.Index {
				spread = append(spread, WorkerSpread{Index: len(spread)})
			}
			if w.Requests < 0 || w.Connections < 0 {
				known = false
				continue
			}
			spread[w.Index].Connections += w.Connections
			spread[w.Index].Requests += w.Requests
		}
	}
	if out.Runs == 0 {
		return out
	}
	sum := summary(out.samples["rps"])
	out.RPSMedian, out.RPSCILow, out.RPSCIHigh, out.RPSCIConfidence = sum.Center, sum.Lo, sum.Hi, sum.Confidence
	out.P50SecondsMedian = median(out.samples["p50"])
	out.P99SecondsMedian = median(out.samples["p99"])
	out.CPUSecondsPerRequestMedian = median(out.samples["cpu"])
	if known {
		var conns, reqs int64
		for _, w := range spread {
			conns += w.Connections
			reqs += w.Requests
		}
		for i := range spread {
			spread[i].ConnectionShare = share(spread[i].Connections, conns)
			spread[i].RequestShare = share(spread[i].Requests, reqs)
		}
		out.Spread = spread
	}
	return out
}

func share(part, total int64) float64 {
	if total == 0 {
		return 0
	}
	return float64(part) / float64(total)
}

// summary is the median with its confidence interval. benchmath leaves
// the interval unbounded when there are too few values for Confidence;
// then the range of the values stands in, with the confidence it has
// (1 - 2·0.5^n for the median between the extremes), so the report
// never holds an infinity.
func summary(values []float64) benchmath.Summary {
	s := benchmath.AssumeNothing.Summary(benchmath.NewSample(slices.Clone(values), thresholds), Confidence)
	if math.IsInf(s.Lo, 0) || math.IsInf(s.Hi, 0) {
		s.Lo, s.Hi = slices.Min(values), slices.Max(values)
		s.Confidence = 1 - 2*math.Pow(0.5, float64(len(values)))
	}
	return s
}

func median(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	return benchmath.AssumeNothing.Summary(benchmath.NewSample(slices.Clone(values), thresholds), Confidence).Center
}

// compareSamples tests whether cur differs from base and says by how much.
func compareSamples(base, cur []float64) Delta {
	if len(base) == 0 || len(cur) == 0 {
		return Delta{P: 1, Text: "not measured"}
	}
	sb, sc := benchmath.NewSample(slices.Clone(base), thresholds), benchmath.NewSample(slices.Clone(cur), thresholds)
	cmp := benchmath.AssumeNothing.Compare(sb, sc)
	mb, mc := summary(base), summary(cur)
	d := Delta{P: cmp.P, Significant: cmp.P <= cmp.Alpha}
	if mb.Center != 0 {
		ratio := mc.Center / mb.Center
		d.Percent = (ratio - 1) * 100
		full := math.Abs(mb.Confidence-mc.Confidence) < 1e-9 && mb.Confidence >= Confidence
		if full && mc.Center != 0 {
			hb := (mb.Hi - mb.Lo) / 2 / mb.Center
			hc := (mc.Hi - mc.Lo) / 2 / mc.Center
			d.PlusMinus = 100 * ratio * math.Hypot(hb, hc)
		}
	}
	switch {
	case !d.Significant && len(cmp.Warnings) > 0:
		d.Text = fmt.Sprintf("no significant difference (p=%.3f; %v)", d.P, cmp.Warnings[0])
	case !d.Significant:
		d.Text = fmt.Sprintf("no significant difference (p=%.3f)", d.P)
	case d.PlusMinus > 0:
		d.Text = fmt.Sprintf("%+.1f%% ± %.1f%%, p=%.3f", d.Percent, d.PlusMinus, d.P)
	default:
		d.Text = fmt.Sprintf("%+.1f%%, p=%.3f", d.Percent, d.P)
	}
	return d
}
