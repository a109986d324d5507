package scale

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/leaklab/leaklab/internal/atomicfile"
	"github.com/leaklab/leaklab/internal/opterr"
)

// CompareCommandOptions are a comparison as 'leaklab scale' takes it: the
// target by name or command, the strategies as a comma-separated list,
// and report files to write besides the returned report.
type CompareCommandOptions struct {
	TargetOptions
	Strategies     string // e.g. "single,reuseport"
	Workers        int
	ProcsPerWorker int
	Runs           int
	Duration       time.Duration
	Warmup         time.Duration
	Connections    int
	NoKeepAlive    bool
	Addr           string
	StartTimeout   time.Duration
	Benchfmt       string // write every run in Go benchmark format here ("": no file)
	HTML           string // write the HTML report here ("": no file)
	// Stderr and Progress as in CompareOptions.
	Stderr   io.Writer
	Progress func(CompareProgress)
}

// Options checks c and turns it into CompareOptions. Refused options are
// *opterr.Error, and a report file that could not be written is refused
// here, before minutes of runs are lost to a typo.
func (c CompareCommandOptions) Options() (CompareOptions, error) {
	target, path, err := ResolveTarget(c.TargetOptions)
	if err != nil {
		return CompareOptions{}, err
	}
	strategies, err := ParseStrategies(c.Strategies)
	if err != nil {
		return CompareOptions{}, &opterr.Error{Option: "Strategies", Err: fmt.Errorf("Strategies: %w", err)}
	}
	for _, out := range []struct{ option, path string }{{"Benchfmt", c.Benchfmt}, {"HTML", c.HTML}} {
		if err := checkOutputPath(out.option, out.path); err != nil {
			return CompareOptions{}, err
		}
	}
	switch {
	case c.ProcsPerWorker < 1:
		return CompareOptions{}, opterr.Errorf("ProcsPerWorker", "ProcsPerWorker must be at least 1")
	case c.Connections < 1:
		return CompareOptions{}, opterr.Errorf("Connections", "Connections must be at least 1")
	case c.Duration <= 0:
		return CompareOptions{}, opterr.Errorf("Duration", "Duration must be positive")
	}
	return CompareOptions{
		Target: target, Strategies: strategies, Workers: c.Workers, ProcsPerWorker: c.ProcsPerWorker,
		Runs: c.Runs, Warmup: c.Warmup, Duration: c.Duration, Connections: c.Connections, Path: path,
		DisableKeepAlive: c.NoKeepAlive, Addr: c.Addr, StartTimeout: c.StartTimeout,
		Stderr: c.Stderr, Progress: c.Progress,
	}, nil
}

// Run checks c, compares the strategies and writes the report files asked
// for. An interrupted comparison writes nothing and says so.
func (c CompareCommandOptions) Run(ctx context.Context) (*Report, error) {
	opts, err := c.Options()
	if err != nil {
		return nil, err
	}
	rep, err := Compare(ctx, opts)
	if err != nil && ctx.Err() != nil {
		return nil, errors.New("interrupted: every worker is stopped, no report was written")
	}
	if err != nil {
		return nil, err
	}
	if c.Benchfmt != "" {
		if err := atomicfile.Write(c.Benchfmt, rep.WriteBenchfmt); err != nil {
			return nil, err
		}
	}
	if c.HTML != "" {
		if err := atomicfile.Write(c.HTML, rep.WriteHTML); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// checkOutputPath refuses a report file whose directory does not exist or
// which is a directory.
func checkOutputPath(option, path string) error {
	if path == "" {
		return nil
	}
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return opterr.Errorf(option, "%s %s: directory %s does not exist", option, path, dir)
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return opterr.Errorf(option, "%s %s: is a directory", option, path)
	}
	return nil
}
