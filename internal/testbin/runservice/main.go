// Command runservice runs one catalog service as 'leaklab run NAME
// --output json' does, and nothing else: the binary that tests build with
// another GOEXPERIMENT or Go release (testbin.BuildServiceExperiment,
// testbin.BuildServiceToolchain) to check what a service built that way
// serves. It imports the catalog alone, not leaklab's profilers, debugger
// and command line, so such a build compiles and links a fraction of
// cmd/leaklab, and none of it when only those change.
//
//	runservice run NAME [--addr ADDR] [--fixed] [--max-leak SIZE] [--quiet] [--output json]
//
// It prints the started service as one JSON line (leaks.Running) and
// serves until SIGINT or SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/leaklab/leaklab/internal/bytesize"
	"github.com/leaklab/leaklab/leaks"
)

func main() {
	if len(os.Args) < 3 || os.Args[1] != "run" {
		fmt.Fprintln(os.Stderr, "usage: runservice run NAME [--addr ADDR] [--fixed] [--max-leak SIZE] [--quiet] [--output json]")
		os.Exit(2)
	}
	fl := flag.NewFlagSet("run", flag.ContinueOnError)
	addr := fl.String("addr", leaks.DefaultAddr, "address to listen on (port 0 picks a free port)")
	fixed := fl.Bool("fixed", false, "run the fixed twin")
	maxLeak := fl.String("max-leak", bytesize.Format(leaks.DefaultMaxLeak), "stop leaking after this much")
	quiet := fl.Bool("quiet", false, "log warnings only")
	output := fl.String("output", "json", "json: the only format")
	if err := fl.Parse(os.Args[3:]); err != nil {
		os.Exit(2)
	}
	if *output != "json" || fl.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "runservice: --output json only, and no arguments after the flags (got --output %q, %q)\n", *output, fl.Args())
		os.Exit(2)
	}
	level := slog.LevelInfo
	if *quiet {
		level = slog.LevelWarn
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := leaks.Run(ctx, leaks.RunOptions{Name: os.Args[2], MaxLeak: *maxLeak, Options: leaks.Options{
		Addr: *addr, Fixed: *fixed, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	}}, func(r leaks.Running) error {
		return json.NewEncoder(os.Stdout).Encode(r)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "runservice:", err)
		os.Exit(1)
	}
}
