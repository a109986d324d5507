package scale

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/leaklab/leaklab/internal/opterr"
)

// Defaults for CompareOptions fields left zero.
const (
	// DefaultRuns is six because, with fewer, a 95% confidence interval of
	// a median has no finite bounds (benchmath needs at least six values).
	DefaultRuns               = 6
	DefaultWarmup             = time.Second
	DefaultRunDuration        = 3 * time.Second
	DefaultCompareConnections = 32
	// MinRuns is the fewest runs per strategy Compare accepts: with fewer
	// the U test cannot reach p < 0.05 however different the runs are.
	MinRuns = 4
)

// CompareOptions describe a comparison of strategies.
type CompareOptions struct {
	Target     Target
	Strategies []Strategy
	// Workers and ProcsPerWorker as in LaunchOptions.
	Workers        int
	ProcsPerWorker int
	// Runs per strategy; the strategies take turns (A B C A B C ...) so
	// that drift in the machine's load affects them alike.
	Runs int
	// Warmup is load sent to each freshly launched cluster before the
	// measured Duration, and not counted.
	Warmup   time.Duration
	Duration time.Duration
	// Connections is the load generator's closed-model concurrency.
	Connections int
	// Path is requested on every connection; SeqPlaceholder varies it.
	Path             string
	DisableKeepAlive bool
	Addr             string
	StartTimeout     time.Duration
	Stderr           io.Writer
	// Progress, when set, is called before each run and after it.
	Progress func(CompareProgress)
}

// CompareProgress says where a comparison is.
type CompareProgress struct {
	Run, Runs int
	Strategy  Strategy
	Done      bool
	Result    *RunResult // set when Done
}

// RunResult is one measured run of one strategy.
type RunResult struct {
	Strategy   Strategy      `json:"strategy"`
	Run        int           `json:"run"`
	Requests   int64         `json:"requests"`
	Errors     int64         `json:"errors"`
	Duration   time.Duration `json:"-"`
	Seconds    float64       `json:"duration_seconds"`
	RPS        float64       `json:"rps"`
	P50        float64       `json:"p50_seconds"`
	P99        float64       `json:"p99_seconds"`
	CPUSeconds float64       `json:"cpu_seconds"`
	// CPUPerRequest is the CPU time of the workers, and of the round-robin
	// master, over the measured window divided by the requests in it; the
	// load generator's own CPU is not in it.
	CPUPerRequest float64 `json:"cpu_seconds_per_request"`
	// MasterCPUSeconds is the round-robin master's CPU over the window
	// (in CPUSeconds too); 0 for the other strategies.
	MasterCPUSeconds float64 `json:"master_cpu_seconds"`
	// GeneratorCPUSeconds is the load generator's CPU over the window; it
	// ran on the same cores and so took its share from the workers.
	GeneratorCPUSeconds float64 `json:"generator_cpu_seconds"`
	PeakRSSBytes        int64   `json:"peak_rss_bytes"`
	Restarts            int     `json:"restarts"`
	// WarmupRestarts are restarts during the warm-up, before the window.
	WarmupRestarts int `json:"warmup_restarts"`
	// WorkersGivenUp are workers that crash-looped and were not restarted
	// (by the end of the run): the run had fewer workers than asked.
	WorkersGivenUp int           `json:"workers_given_up"`
	Workers        []WorkerShare `json:"workers"`
}

// WorkerShare is what one worker process served in a run.
type WorkerShare struct {
	Index int `json:"index"`
	PID   int `json:"pid"`
	// Connections and Requests are -1 when the worker did not report them.
	Connections  int64   `json:"connections"`
	Requests     int64   `json:"requests"`
	CPUSeconds   float64 `json:"cpu_seconds"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
}

// Compare launches each strategy Runs times in turn, loads it, and
// summarises and compares the results. Each run gets a fresh cluster, so
// runs are independent and a crash in one cannot leak into the next.
func Compare(ctx context.Context, opts CompareOptions) (*Report, error) {
	opts, err := compareDefaults(opts)
	if err != nil {
		return nil, err
	}
	var runs []RunResult
	for r := 1; r <= opts.Runs; r++ {
		for _, s := range opts.Strategies {
			if opts.Progress != nil {
				opts.Progress(CompareProgress{Run: r, Runs: opts.Runs, Strategy: s})
			}
			res, err := measureRun(ctx, opts, s, r)
			if err != nil {
				return nil, err
			}
			runs = append(runs, *res)
			if opts.Progress != nil {
				opts.Progress(CompareProgress{Run: r, Runs: opts.Runs, Strategy: s, Done: true, Result: res})
			}
		}
	}
	return summarize(opts, runs), nil
}

func compareDefaults(opts CompareOptions) (CompareOptions, error) {
	if len(opts.Strategies) == 0 {
		opts.Strategies = AllStrategies
	}
	if opts.Workers < 1 {
		return opts, opterr.Errorf("Workers", "Workers must be at least 1, not %d", opts.Workers)
	}
	if opts.Runs == 0 {
		opts.Runs = DefaultRuns
	}
	if opts.Runs < MinRuns {
		return opts, opterr.Errorf("Runs", "Runs must be at least %d for a significance test, not %d", MinRuns, opts.Runs)
	}
	if opts.Warmup == 0 {
		opts.Warmup = DefaultWarmup
	}
	if opts.Duration == 0 {
		opts.Duration = DefaultRunDuration
	}
	if opts.Warmup < 0 || opts.Duration < 0 {
		return opts, opterr.Combination([]string{"Warmup", "Duration"}, "Warmup and Duration must not be negative")
	}
	if opts.Connections == 0 {
		opts.Connections = DefaultCompareConnections
	}
	if opts.Path == "" {
		opts.Path = "/"
	}
	if opts.Path[0] != '/' {
		return opts, opterr.Errorf("Path", "Path %q must start with /", opts.Path)
	}
	if opts.ProcsPerWorker == 0 {
		opts.ProcsPerWorker = DefaultProcsPerWorker
	}
	return opts, nil
}

// measureRun launches one cluster, warms it up, measures it and stops it.
func measureRun(ctx context.Context, opts CompareOptions, s Strategy, run int) (*RunResult, error) {
	c, err := Launch(ctx, LaunchOptions{
		Target: opts.Target, Strategy: s, Workers: opts.Workers, ProcsPerWorker: opts.ProcsPerWorker,
		Addr: opts.Addr, StartTimeout: opts.StartTimeout, Stderr: opts.Stderr,
	})
	if err != nil {
		return nil, err
	}
	defer c.Stop()

	load := LoadOptions{
		URL: c.URL() + opts.Path, Connections: opts.Connections,
		DisableKeepAlive: opts.DisableKeepAlive,
	}
	if opts.Warmup > 0 {
		load.Duration = opts.Warmup
		if _, err := Load(ctx, load); err != nil {
			return nil, fmt.Errorf("%s warm-up: %w", s, err)
		}
	}
	before := c.Snapshot()
	restartsBefore := c.Restarts()
	masterBefore := c.MasterCPU()
	load.Duration = opts.Duration
	res, err := Load(ctx, load)
	if err != nil {
		return nil, fmt.Errorf("%s run %d: %w", s, run, err)
	}
	after := c.Snapshot()
	master := c.MasterCPU() - masterBefore
	if res.Requests > 0 && res.Errors == res.Requests {
		return nil, fmt.Errorf("%s run %d: every request failed (%s); is %s the right path?", s, run, firstErrorExample(res), opts.Path)
	}
	out := &RunResult{
		Strategy: s, Run: run, Requests: res.Requests, Errors: res.Errors,
		Duration: res.Duration, Seconds: res.Duration.Seconds(), RPS: res.RPS,
		P50: res.LatencyAt(0.50).Seconds(), P99: res.LatencyAt(0.99).Seconds(),
		// The master runs in this process: its thread's CPU is in the
		// process's rusage, which is how the generator's is measured.
		GeneratorCPUSeconds: max(0, (res.GeneratorCPU - master).Seconds()),
		MasterCPUSeconds:    master.Seconds(),
		CPUSeconds:          master.Seconds(),
		Restarts:            c.Restarts() - restartsBefore,
		WarmupRestarts:      restartsBefore,
		WorkersGivenUp:      c.GaveUp(),
	}
	for i, a := range after {
		b := before[i]
		share := WorkerShare{Index: a.Index, PID: a.PID, Connections: -1, Requests: -1, PeakRSSBytes: a.PeakRSS}
		cpu := a.CPU
		if a.PID == b.PID {
			cpu -= b.CPU // else the worker was restarted: all its CPU is in the window
		}
		share.CPUSeconds = cpu.Seconds()
		if a.CountsKnown {
			share.Connections, share.Requests = a.Counts.Connections, a.Counts.Requests
			if b.CountsKnown && a.PID == b.PID {
				share.Connections -= b.Counts.Connections
				share.Requests -= b.Counts.Requests
			}
		}
		if s == RoundRobin && a.Handed >= b.Handed && share.Connections < 0 {
			share.Connections = a.Handed - b.Handed
		}
		out.CPUSeconds += share.CPUSeconds
		out.PeakRSSBytes += share.PeakRSSBytes
		out.Workers = append(out.Workers, share)
	}
	if out.Requests > 0 {
		out.CPUPerRequest = out.CPUSeconds / float64(out.Requests)
	}
	return out, nil
}

func firstErrorExample(res *LoadResult) string {
	for _, ex := range res.ErrorExamples {
		return ex
	}
	for code := range res.Status {
		return fmt.Sprintf("HTTP %d", code)
	}
	return "no response"
}
