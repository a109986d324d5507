package main

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/leaks/exercise"
	"github.com/spf13/cobra"
)

func newCmdExercise(f *factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "exercise",
		Short: "Work through the catalog as leak-hunting exercises",
		Long: `Each catalog service is an exercise: start it under steady load, find the
function that leaks (or is slow) with leaklab's commands, ask for hints when
stuck, check your answer, and read the solution. Progress is remembered in
the leaklab home ($LEAKLAB_HOME).`,
		Example: `  leaklab exercise list
  leaklab exercise start unbounded-cache          # in one terminal
  leaklab exercise hint unbounded-cache           # in another
  leaklab exercise check unbounded-cache --answer 'pageCache.render'
  leaklab exercise solution unbounded-cache`,
	}
	cmd.AddCommand(newCmdExerciseList(f), newCmdExerciseStart(f), newCmdExerciseHint(f), newCmdExerciseCheck(f), newCmdExerciseSolution(f))
	return cmd
}

func exerciseArgs(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usageErrorf("%s takes one exercise name (see 'leaklab exercise list')", cmd.CommandPath())
	}
	return nil
}

// lookupExercise finds the named exercise and opens the book.
func (f *factory) lookupExercise(name string) (*leaks.Service, *exercise.Book, error) {
	svc, err := leaks.Lookup(name)
	if err != nil {
		return nil, nil, &usageError{err: err}
	}
	book, err := f.openBook()
	return svc, book, err
}

func newCmdExerciseList(f *factory) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the exercises and your progress",
		Example: "  leaklab exercise list\n  leaklab exercise list --output json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			book, err := f.openBook()
			if err != nil {
				return err
			}
			rows := book.List()
			return f.render(rows, rows.WriteText)
		},
	}
}

type exerciseStartOptions struct {
	addr    string
	rate    float64
	loadFor time.Duration
}

func newCmdExerciseStart(f *factory) *cobra.Command {
	opts := &exerciseStartOptions{}
	cmd := &cobra.Command{
		Use:   "start NAME",
		Short: "Run an exercise's service under steady load and say what to look at",
		Long: `Run the leaky variant of a catalog service in the foreground, with steady
load on its main endpoint, until Ctrl-C (or --load-for has passed). Use a
second terminal for hints, captures and checks.`,
		Example: `  leaklab exercise start unbounded-cache
  leaklab exercise start abandoned-worker --addr 127.0.0.1:9090 --rate 50
  # where it runs, as JSON for a script
  leaklab exercise start unbounded-cache --addr 127.0.0.1:0 --output json`,
		Args:              exerciseArgs,
		ValidArgsFunction: completeServiceNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, book, err := f.lookupExercise(args[0])
			if err != nil {
				return err
			}
			logger := slog.New(slog.NewTextHandler(f.streams.ErrOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
			sess, started, err := book.Begin(cmd.Context(), svc, exercise.SessionOptions{
				Service: leaks.Options{Addr: opts.addr, Logger: logger}, Rate: opts.rate, LoadFor: opts.loadFor,
			})
			if err != nil {
				return err
			}
			if err := f.render(started, started.WriteText); err != nil {
				return errors.Join(err, sess.Stop())
			}
			select {
			case <-cmd.Context().Done():
			case <-sess.LoadDone():
				fmt.Fprintln(f.streams.ErrOut, "the load has ended; the service keeps running until Ctrl-C")
				<-cmd.Context().Done()
			}
			return sess.Stop()
		},
	}
	cmd.Flags().StringVar(&opts.addr, "addr", leaks.DefaultAddr, "address for the service")
	cmd.Flags().Float64Var(&opts.rate, "rate", 0, "requests per second of steady load (default: the service's own)")
	cmd.Flags().DurationVar(&opts.loadFor, "load-for", exercise.DefaultLoadFor, "stop the load after this long")
	return cmd
}

func newCmdExerciseHint(f *factory) *cobra.Command {
	return &cobra.Command{
		Use:               "hint NAME",
		Short:             "Reveal the next hint of an exercise",
		Example:           "  leaklab exercise hint unbounded-cache",
		Args:              exerciseArgs,
		ValidArgsFunction: completeServiceNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, book, err := f.lookupExercise(args[0])
			if err != nil {
				return err
			}
			hints, err := book.Hint(svc)
			if err != nil {
				return err
			}
			return f.render(hints, hints.WriteText)
		},
	}
}

func newCmdExerciseCheck(f *factory) *cobra.Command {
	var opts exercise.CheckOptions
	cmd := &cobra.Command{
		Use:   "check NAME",
		Short: "Watch the running exercise and check your diagnosis",
		Long: `Watch the exercise's running service (started with 'leaklab exercise start')
and report whether its leak is still there; with --answer, also say whether
your diagnosis names the culprit. Exit status 3 while the leak is there.`,
		Example: `  leaklab exercise check unbounded-cache
  leaklab exercise check unbounded-cache --answer '(*pageCache).render'
  leaklab exercise check abandoned-worker --url http://127.0.0.1:9090 --for 20s`,
		Args:              exerciseArgs,
		ValidArgsFunction: completeServiceNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, book, err := f.lookupExercise(args[0])
			if err != nil {
				return err
			}
			if f.streams.ErrIsTerminal {
				opts.Watching = func(url string) { fmt.Fprintf(f.streams.ErrOut, "watching %s for %s...\n", url, opts.For) }
			}
			rep, err := book.Check(cmd.Context(), svc, opts)
			if err != nil {
				return err
			}
			if err := f.render(rep, rep.WriteText); err != nil {
				return err
			}
			if rep.LeakFound() {
				return &foundError{what: "leak still there"}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Answer, "answer", "", "the function you think is responsible, e.g. '(*pageCache).render'")
	cmd.Flags().StringVar(&opts.URL, "url", "", "the service to watch (default: where 'exercise start' runs it)")
	cmd.Flags().DurationVar(&opts.For, "for", 30*time.Second, "how long to watch")
	return cmd
}

func newCmdExerciseSolution(f *factory) *cobra.Command {
	return &cobra.Command{
		Use:               "solution NAME",
		Short:             "Explain an exercise's bug and show the fixed code path",
		Example:           "  leaklab exercise solution unbounded-cache",
		Args:              exerciseArgs,
		ValidArgsFunction: completeServiceNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, book, err := f.lookupExercise(args[0])
			if err != nil {
				return err
			}
			sol, err := book.Solve(svc)
			if err != nil {
				return err
			}
			return f.render(sol, sol.WriteText)
		},
	}
}
