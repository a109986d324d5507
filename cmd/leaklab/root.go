package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// factory carries what every command needs: the streams and the shared
// --output choice.
type factory struct {
	streams *ioStreams
	output  outputFormat
}

func newRootCmd(streams *ioStreams) *cobra.Command {
	f := &factory{streams: streams, output: outputText}
	root := &cobra.Command{
		Use:   "leaklab",
		Short: "Find memory leaks, goroutine leaks and slow paths in Go services",
		Long: `leaklab finds memory leaks, goroutine leaks and slow paths in Go services.

It ships a catalog of leaky sample services (each with a fixed twin) to
practise on, and commands that work on any Go service exposing
net/http/pprof.`,
		Example: `  # list the sample services, then run one and watch its leak grow
  leaklab services
  leaklab run unbounded-cache --addr 127.0.0.1:8080
  curl -s 'http://127.0.0.1:8080/product?id=1'
  curl -s http://127.0.0.1:8080/metrics | grep go_gc_heap_live_bytes`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       versionString(),
	}
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.PersistentFlags().Var(&f.output, "output", "report format: text or json")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{err: err}
	})

	root.AddCommand(
		newCmdServices(f),
		newCmdRun(f),
		newCmdLoad(f),
		newCmdVersion(f),
		newCmdDashboards(f),
		newCmdCapture(f), newCmdProfiles(f), newCmdDiff(f),
		newCmdEscape(f),
		newCmdWatch(f), newCmdCheck(f),
		newCmdExercise(f),
		newCmdDemo(f),
		newCmdScale(f),
		newCmdCollect(f),
	)
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() != "completion" {
			continue
		}
		c.Example = `  # load completions into the current bash session
  source <(leaklab completion bash)
  # install them for zsh
  leaklab completion zsh > "${fpath[1]}/_leaklab"`
		for _, shell := range c.Commands() {
			shell.Example = fmt.Sprintf("  leaklab completion %[1]s > leaklab-completion.%[1]s", shell.Name())
		}
	}
	return root
}
