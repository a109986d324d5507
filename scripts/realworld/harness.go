package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/leaklab/leaklab/internal/childproc"
)

// config is how the suite runs.
type config struct {
	leaklab    string        // the leaklab binary
	watchFlags []string      // extra flags for leaklab watch
	warmup     time.Duration // workload time before the watch starts
	keep       bool          // keep each case's directory (logs, profile store)
}

// watchReport is the part of `leaklab watch --output json` the suite reads.
type watchReport struct {
	Snapshots  int        `json:"snapshots"`
	Suspects   []site     `json:"suspects"`
	TopGrowing []site     `json:"top_growing"`
	Own        ownCodeRep `json:"own_code"`
	// Undecided is what grows without being decided yet: a watch with
	// any is not a decided one (more watching, --for auto, would decide).
	Undecided []site  `json:"undecided"`
	For       float64 `json:"for_seconds"`
	Started   string  `json:"started"`
	Ended     string  `json:"ended"`
}

// decided says whether the watch called its verdict decided: nothing
// growing was left undecided.
func (w watchReport) decided() bool { return len(w.Undecided) == 0 }

// watched is how long the watch ran, in seconds.
func (w watchReport) watched() float64 {
	start, err1 := time.Parse(time.RFC3339Nano, w.Started)
	end, err2 := time.Parse(time.RFC3339Nano, w.Ended)
	if err1 != nil || err2 != nil {
		return w.For
	}
	return end.Sub(start).Seconds()
}

type site struct {
	Kind            string  `json:"kind"`
	Function        string  `json:"function"`
	Confidence      string  `json:"confidence,omitempty"`
	GrowthPerMinute float64 `json:"growth_per_minute"`
	Unit            string  `json:"unit"`
	SameLeakAs      string  `json:"same_leak_as,omitempty"`
	Evidence        struct {
		P float64 `json:"p_value"`
	} `json:"evidence"`
}

// ownCodeRep is kept loosely: its shape may change with the detector.
type ownCodeRep = json.RawMessage

// diffRow is one row of `leaklab diff --output json`.
type diffRow struct {
	Function string   `json:"function"`
	Stack    []string `json:"stack,omitempty"` // with --by stack, leaf first
	Delta    float64  `json:"delta"`
}

// result is one watch of one case.
type result struct {
	c   leakCase
	run int
	err error

	module           string
	heapStart        float64 // live heap after a forced GC when the watch began, bytes
	heapPerMin       float64 // live-heap growth over the watch, bytes per minute
	goroutinesPerMin float64
	requests, failed int64

	watch    watchReport
	watchCmd string
	diff     []diffRow // heap diff, first → last snapshot of the watch, by function
	stacks   []diffRow // the same diff by stack
	verdict  string
}

// Verdicts.
const (
	verdictClean      = "clean"
	verdictFalseAlarm = "FALSE ALARM"
	verdictRight      = "found, right"
	verdictWrong      = "found, wrong culprit"
	verdictMissed     = "missed"
	verdictError      = "error"
)

// runCase starts the case's server, runs its workload, watches it with
// leaklab and measures the growth independently.
func runCase(ctx context.Context, cfg config, c leakCase, run int) (res result) {
	res = result{c: c, run: run}
	srv := servers[c.server]
	res.module = srv.module
	defer func() { res.verdict = judge(res) }()

	dir, err := os.MkdirTemp("", "realworld-"+c.name+"-")
	if err != nil {
		res.err = err
		return res
	}
	if !cfg.keep {
		defer os.RemoveAll(dir)
	}
	r, err := startServer(ctx, srv, dir)
	if err != nil {
		res.err = err
		return res
	}
	defer r.stop()

	var cnt counters
	wctx, stopWorkload := context.WithCancel(ctx)
	driverDone := make(chan struct{})
	go func() {
		defer close(driverDone)
		c.driver(wctx, r, &cnt)
	}()
	defer func() {
		stopWorkload()
		<-driverDone
		res.requests, res.failed = cnt.ok.Load(), cnt.failed.Load()
		if res.err == nil && res.requests == 0 {
			res.err = fmt.Errorf("the workload made no successful request (last error: %v)", cnt.last())
		}
		if res.err == nil && res.failed*10 > res.requests {
			res.err = fmt.Errorf("the workload failed %d of %d requests (last error: %v)", res.failed, res.requests+res.failed, cnt.last())
		}
	}()

	select {
	case <-time.After(cfg.warmup):
	case <-ctx.Done():
		res.err = ctx.Err()
		return res
	}
	t0 := time.Now()
	h0, g0, err := measure(ctx, r.pprofURL())
	if err != nil {
		res.err = err
		return res
	}
	res.heapStart = h0
	home := filepath.Join(dir, "leaklab-home")
	res.watch, res.watchCmd, err = runWatch(ctx, cfg, r.pprofURL(), home)
	if err != nil {
		res.err = err
		return res
	}
	h1, g1, err := measure(ctx, r.pprofURL())
	if err != nil {
		res.err = err
		return res
	}
	minutes := time.Since(t0).Minutes()
	res.heapPerMin = (h1 - h0) / minutes
	res.goroutinesPerMin = (g1 - g0) / minutes
	if err := r.exited(); err != nil {
		res.err = err
		return res
	}
	// Best effort: the details only lack the diff without them.
	res.diff, _ = heapDiff(ctx, cfg, home, "function")
	res.stacks, _ = heapDiff(ctx, cfg, home, "stack")
	return res
}

// runWatch runs `leaklab watch URL --output json` with the configured extra
// flags and its own profile store.
func runWatch(ctx context.Context, cfg config, url, home string) (watchReport, string, error) {
	args := append([]string{"watch", url, "--output", "json"}, cfg.watchFlags...)
	var stdout, stderr bytes.Buffer
	line := "leaklab " + strings.Join(args, " ")
	err := childproc.Run(ctx, childproc.Spec{
		Argv: append([]string{cfg.leaklab}, args...), Env: append(os.Environ(), "LEAKLAB_HOME="+home),
		Stdout: &stdout, Stderr: &stderr,
	})
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 3) {
		return watchReport{}, line, fmt.Errorf("%s: %v: %s", line, err, lastLine(stderr.String()))
	}
	var rep watchReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		return rep, line, fmt.Errorf("%s: reading its JSON: %v", line, err)
	}
	return rep, line, nil
}

// heapDiff diffs the first and last heap profiles the watch stored.
func heapDiff(ctx context.Context, cfg config, home, by string) ([]diffRow, error) {
	env := append(os.Environ(), "LEAKLAB_HOME="+home)
	out, err := childproc.Output(ctx, childproc.Spec{Argv: []string{cfg.leaklab, "profiles", "ls", "--type", "heap", "--output", "json"}, Env: env})
	if err != nil {
		return nil, err
	}
	var stored []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(out, &stored); err != nil || len(stored) < 2 {
		return nil, fmt.Errorf("profiles ls: %d heap profiles (%v)", len(stored), err)
	}
	diff := []string{cfg.leaklab, "diff", stored[0].ID, stored[len(stored)-1].ID, "--by", by, "--top", "8", "--output", "json"}
	if out, err = childproc.Output(ctx, childproc.Spec{Argv: diff, Env: env}); err != nil {
		return nil, err
	}
	var d struct {
		Rows []diffRow `json:"rows"`
	}
	if err := json.Unmarshal(out, &d); err != nil {
		return nil, err
	}
	return d.Rows, nil
}

var heapAllocRE = regexp.MustCompile(`(?m)^# HeapAlloc = (\d+)`)
var goroutineTotalRE = regexp.MustCompile(`^goroutine profile: total (\d+)`)

// measure reads the live heap after a forced GC (HeapAlloc in the text heap
// profile's MemStats, requested with gc=1) and the goroutine count: the
// independent measurement the watch's findings are checked against.
func measure(ctx context.Context, base string) (heap, goroutines float64, err error) {
	body, err := fetch(ctx, base+"/debug/pprof/heap?gc=1&debug=1", 64<<20)
	if err != nil {
		return 0, 0, err
	}
	m := heapAllocRE.FindSubmatch(body)
	if m == nil {
		return 0, 0, fmt.Errorf("%s: no HeapAlloc in the heap profile", base)
	}
	heap, _ = strconv.ParseFloat(string(m[1]), 64)
	body, err = fetch(ctx, base+"/debug/pprof/goroutine?debug=1", 1<<10)
	if err != nil {
		return 0, 0, err
	}
	m = goroutineTotalRE.FindSubmatch(body)
	if m == nil {
		return 0, 0, fmt.Errorf("%s: no total in the goroutine profile", base)
	}
	goroutines, _ = strconv.ParseFloat(string(m[1]), 64)
	return heap, goroutines, nil
}

// fetch reads at most limit bytes of url's body.
func fetch(ctx context.Context, url string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, limit))
}

func lastLine(s string) string {
	var last string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if t := strings.TrimSpace(sc.Text()); t != "" {
			last = t
		}
	}
	return last
}

// judge gives a watch its verdict.
func judge(res result) string {
	switch {
	case res.err != nil:
		return verdictError
	case res.c.leak == "" && len(res.watch.Suspects) == 0:
		return verdictClean
	case res.c.leak == "":
		return verdictFalseAlarm
	case len(res.watch.Suspects) == 0:
		return verdictMissed
	}
	for _, s := range res.watch.Suspects {
		if matchesCulprit(s.Function, res.c.culprits) {
			return verdictRight
		}
	}
	return verdictWrong
}

// matchesCulprit says whether fn is one of culprits or a closure in one.
func matchesCulprit(fn string, culprits []string) bool {
	for _, c := range culprits {
		if fn == c || strings.HasPrefix(fn, c+".func") {
			return true
		}
	}
	return false
}

// runAll runs every case runs times, at most parallel watches at once,
// and returns the results in case order.
func runAll(ctx context.Context, cfg config, cs []leakCase, runs, parallel int, progress func(result)) []result {
	type job struct{ i, c, run int }
	var jobs []job
	for run := 1; run <= runs; run++ {
		for ci := range cs {
			jobs = append(jobs, job{len(jobs), ci, run})
		}
	}
	results := make([]result, len(jobs))
	queue := make(chan job)
	var wg sync.WaitGroup
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range queue {
				results[j.i] = runCase(ctx, cfg, cs[j.c], j.run)
				if progress != nil {
					progress(results[j.i])
				}
			}
		}()
	}
	for _, j := range jobs {
		queue <- j
	}
	close(queue)
	wg.Wait()
	return results
}
