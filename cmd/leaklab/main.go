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

// run executes the command line and returns the process exit code.
func run(args []string, streams *ioStreams) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd(streams)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return exitCode(err, streams)
}
