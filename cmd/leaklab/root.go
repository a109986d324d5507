package main

import (
	"fmt"
	"os"

	"github.com/leaklab/leaklab/leaks/exercise"
	"github.com/leaklab/leaklab/profiles"
	"github.com/spf13/cobra"
)

// factory carries what every command needs: the streams, the leaklab
// home, the environment and the shared --output choice. Tests give each
// run a home and an environment of its own, so they can run commands in
// process and in parallel.
type factory struct {
	streams *ioStreams
	// home holds the profile store and the exercises' progress; "" means
	// profiles.DefaultDir ($LEAKLAB_HOME or its default).
	home string
	// env reads the environment; nil means os.Getenv.
	env    func(key string) string
	output outputFormat
}

func (f *factory) getenv(key string) string {
	if f.env != nil {
		return f.env(key)
	}
	return os.Getenv(key)
}

func (f *factory) homeDir() (string, error) {
	if f.home != "" {
		return f.home, nil
	}
	return profiles.DefaultDir()
}

func (f *factory) openStore() (*profiles.Store, error) {
	dir, err := f.homeDir()
	if err != nil {
		return nil, err
	}
	return profiles.Open(dir)
}

func (f *factory) openBook() (*exercise.Book, error) {
	dir, err := f.homeDir()
	if err != nil {
		return nil, err
	}
	return exercise.Open(dir)
}

func newRootCmd(f *factory) *cobra.Command {
	if f.output == "" {
		f.output = outputText
	}
	streams := f.streams
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
		newCmdRetainers(f),
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
