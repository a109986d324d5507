// Command leaklab finds memory leaks, goroutine leaks and slow paths in Go
// services: it runs sample leaky services, captures and diffs pprof
// profiles, watches services over time, explains escape analysis and
// generates load. Each command lives in its own file and stays thin: it
// parses flags, calls a package, and renders the result.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], systemStreams()))
}

// run executes the command line, until done or interrupted, and returns
// the process exit code.
func run(args []string, streams *ioStreams) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runIn(ctx, &factory{streams: streams}, args)
}

// runIn executes the command line with ctx and what f carries (streams,
// leaklab home, environment) and returns the exit code. Tests call it in
// process, each with a home of its own.
func runIn(ctx context.Context, f *factory, args []string) int {
	root := newRootCmd(f)
	root.SetArgs(args)
	return exitCode(root.ExecuteContext(ctx), f.streams)
}
