// Command realworld measures `leaklab watch` on real third-party Go servers
// installed from Debian packages (etcd, prometheus, pushgateway,
// alertmanager, nats-server, influxdb, caddy): each runs as a plain process
// on loopback under a healthy workload or a workload that makes it grow
// without bound through its normal API, leaklab watches it, and the suite
// checks the verdict against the culprit written down for each case and
// against the growth it measures itself after a forced GC.
//
//	LEAKLAB_BIN=/tmp/leaklab go run ./scripts/realworld -runs 2 -out table.md
//
// See README.md next to this file.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/leaklab/leaklab/internal/atomicfile"
	"github.com/leaklab/leaklab/internal/childproc"
)

func main() {
	runs := flag.Int("runs", envInt("REALWORLD_RUNS", 2), "watches per case (env REALWORLD_RUNS)")
	out := flag.String("out", "", "write the Markdown table to this file (default: stdout)")
	only := flag.String("cases", "", "run only the cases whose name matches this regular expression")
	parallel := flag.Int("parallel", 2, "cases run at the same time")
	warmup := flag.Duration("warmup", 15*time.Second, "workload time before each watch")
	keep := flag.Bool("keep", false, "keep each case's directory (server log, leaklab profile store)")
	jsonOut := flag.String("json", "", "also write every watch's record (measured growth, suspects, verdict) as JSON to this file")
	flag.Parse()
	if flag.NArg() > 0 || *runs < 1 || *parallel < 1 {
		fmt.Fprintln(os.Stderr, "realworld: usage: go run ./scripts/realworld [-runs N] [-out FILE] [-cases REGEXP] [-parallel N]")
		os.Exit(2)
	}
	if err := run(*runs, *parallel, *warmup, *keep, *only, *out, *jsonOut); err != nil {
		fmt.Fprintln(os.Stderr, "realworld:", err)
		os.Exit(1)
	}
}

func run(runs, parallel int, warmup time.Duration, keep bool, only, out, jsonOut string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cs, err := selectCases(only)
	if err != nil {
		return err
	}
	if missing := missingBinaries(cs); len(missing) > 0 {
		return fmt.Errorf("missing servers: %s (apt-get install %s)", strings.Join(missing, ", "), strings.Join(missingPackages(cs), " "))
	}
	bin, cleanup, err := leaklabBinary(ctx)
	if err != nil {
		return err
	}
	defer cleanup()
	cfg := config{leaklab: bin, watchFlags: strings.Fields(os.Getenv("REALWORLD_WATCH_FLAGS")), warmup: warmup, keep: keep}
	rs := runAll(ctx, cfg, cs, runs, parallel, func(r result) {
		fmt.Fprintf(os.Stderr, "realworld: %s run %d: %s (heap %+s MiB/min, goroutines %+.0f/min)\n", r.c.name, r.run, r.verdict, mib(r.heapPerMin), r.goroutinesPerMin)
		if r.err != nil {
			fmt.Fprintf(os.Stderr, "realworld: %s: %v\n", r.c.name, r.err)
		}
	})
	command := fmt.Sprintf("REALWORLD_WATCH_FLAGS='%s' go run ./scripts/realworld -runs %d -parallel %d", os.Getenv("REALWORLD_WATCH_FLAGS"), runs, parallel)
	if only != "" {
		command += " -cases '" + only + "'"
	}
	if out == "" {
		writeMarkdown(os.Stdout, rs, command)
	} else if err := atomicfile.Write(out, func(w io.Writer) error { writeMarkdown(w, rs, command); return nil }); err != nil {
		return err
	}
	if jsonOut != "" {
		if err := atomicfile.Write(jsonOut, func(w io.Writer) error { return writeJSON(w, rs) }); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "realworld: %s\n", summarize(rs))
	return nil
}

func selectCases(only string) ([]leakCase, error) {
	if only == "" {
		return cases, nil
	}
	re, err := regexp.Compile(only)
	if err != nil {
		return nil, fmt.Errorf("-cases: %v", err)
	}
	var cs []leakCase
	for _, c := range cases {
		if re.MatchString(c.name) {
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		return nil, fmt.Errorf("-cases %q matches no case", only)
	}
	return cs, nil
}

// missingBinaries lists the servers the cases need that are not installed.
func missingBinaries(cs []leakCase) []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range cs {
		s := servers[c.server]
		if seen[s.name] {
			continue
		}
		seen[s.name] = true
		if _, err := lookBinary(s.binary); err != nil {
			out = append(out, s.binary)
		}
	}
	return out
}

func missingPackages(cs []leakCase) []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range cs {
		s := servers[c.server]
		if _, err := lookBinary(s.binary); err != nil && !seen[s.pkg] {
			seen[s.pkg] = true
			out = append(out, s.pkg)
		}
	}
	return out
}

// leaklabBinary is $LEAKLAB_BIN, or leaklab built from this module.
func leaklabBinary(ctx context.Context) (string, func(), error) {
	if bin := os.Getenv("LEAKLAB_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", nil, fmt.Errorf("LEAKLAB_BIN: %v", err)
		}
		return bin, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "realworld-leaklab-")
	if err != nil {
		return "", nil, err
	}
	bin := filepath.Join(dir, "leaklab")
	var out bytes.Buffer
	build := childproc.Spec{Argv: []string{"go", "build", "-o", bin, "github.com/leaklab/leaklab/cmd/leaklab"}, Stdout: &out, Stderr: &out}
	if err := childproc.Run(ctx, build); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("building leaklab: %v: %s", err, out.Bytes())
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
