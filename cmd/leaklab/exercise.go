package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/leaklab/leaklab/internal/bytesize"
	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/leaks/exercise"
	"github.com/leaklab/leaklab/profiles"
	"github.com/leaklab/leaklab/profiles/watch"
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

func openBook() (*exercise.Book, error) {
	dir, err := profiles.DefaultDir()
	if err != nil {
		return nil, err
	}
	return exercise.Open(dir)
}

func exerciseArgs(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usageErrorf("%s takes one exercise name (see 'leaklab exercise list')", cmd.CommandPath())
	}
	return nil
}

func lookupExercise(name string) (*leaks.Service, *exercise.Book, *exercise.Progress, error) {
	svc, err := leaks.Lookup(name)
	if err != nil {
		return nil, nil, nil, &usageError{err: err}
	}
	book, err := openBook()
	if err != nil {
		return nil, nil, nil, err
	}
	return svc, book, book.Get(name), nil
}

type exerciseStatus struct {
	Name       string     `json:"name"`
	Kind       leaks.Kind `json:"kind"`
	Summary    string     `json:"summary"`
	HintsShown int        `json:"hints_shown"`
	Hints      int        `json:"hints"`
	Status     string     `json:"status"`
}

func newCmdExerciseList(f *factory) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the exercises and your progress",
		Example: "  leaklab exercise list\n  leaklab exercise list --output json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			book, err := openBook()
			if err != nil {
				return err
			}
			var rows []exerciseStatus
			for _, s := range leaks.All() {
				p := book.Get(s.Name)
				status := "new"
				switch {
				case p.Solved:
					status = "solved"
				case p.SolutionRead:
					status = "solution read"
				case !p.Started.IsZero():
					status = "started"
				}
				rows = append(rows, exerciseStatus{Name: s.Name, Kind: s.Kind, Summary: s.Summary, HintsShown: p.HintsShown, Hints: len(s.Hints), Status: status})
			}
			return f.render(rows, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "EXERCISE\tKIND\tSTATUS\tHINTS")
				for _, r := range rows {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\n", r.Name, r.Kind, r.Status, r.HintsShown, r.Hints)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				_, err := fmt.Fprintln(w, "\nStart one with: leaklab exercise start NAME")
				return err
			})
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
  leaklab exercise start abandoned-worker --addr 127.0.0.1:9090 --rate 50`,
		Args:              exerciseArgs,
		ValidArgsFunction: completeServiceNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, book, p, err := lookupExercise(args[0])
			if err != nil {
				return err
			}
			logger := slog.New(slog.NewTextHandler(f.streams.ErrOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
			sess, err := exercise.Start(cmd.Context(), svc, exercise.SessionOptions{
				Service: leaks.Options{Addr: opts.addr, Logger: logger}, Rate: opts.rate, LoadFor: opts.loadFor,
			})
			if err != nil {
				return err
			}
			p.Started, p.URL = time.Now().UTC(), sess.Server.URL()
			if err := book.Save(); err != nil {
				sess.Stop()
				return err
			}
			url := sess.Server.URL()
			fmt.Fprintf(f.streams.Out, `Exercise %s (%s) is running at %s under %g requests/s.

  %s

Find the function responsible. In another terminal, try:
  curl -s %s/metrics | grep %s
  leaklab watch %s --for 30s
  leaklab capture %s --type %s
  leaklab exercise hint %s
  leaklab exercise check %s --answer 'FUNCTION'

Ctrl-C to stop (the load stops by itself after %s).
`, svc.Name, svc.Kind, url, sess.Rate, svc.Summary, url, svc.Symptom.Metric, url, url, svc.Profile, svc.Name, svc.Name, opts.loadFor)
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
			svc, book, p, err := lookupExercise(args[0])
			if err != nil {
				return err
			}
			if p.HintsShown < len(svc.Hints) {
				p.HintsShown++
				if err := book.Save(); err != nil {
					return err
				}
			}
			shown := svc.Hints[:p.HintsShown]
			return f.render(map[string]any{"name": svc.Name, "hints": shown, "hints_left": len(svc.Hints) - len(shown)}, func(w io.Writer) error {
				for i, h := range shown {
					fmt.Fprintf(w, "Hint %d/%d: %s\n", i+1, len(svc.Hints), h)
				}
				if len(shown) == len(svc.Hints) {
					fmt.Fprintf(w, "\nThat was the last hint. Still stuck? leaklab exercise solution %s\n", svc.Name)
				}
				return nil
			})
		},
	}
}

type checkReport struct {
	Name           string        `json:"name"`
	URL            string        `json:"url"`
	LeakStillThere *bool         `json:"leak_still_there,omitempty"`
	Answer         string        `json:"answer,omitempty"`
	Correct        *bool         `json:"correct,omitempty"`
	Watch          *watch.Report `json:"watch,omitempty"`
}

func newCmdExerciseCheck(f *factory) *cobra.Command {
	var answer, url string
	var dur time.Duration
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
			svc, book, p, err := lookupExercise(args[0])
			if err != nil {
				return err
			}
			if url == "" {
				url = p.URL
			}
			rep := checkReport{Name: svc.Name, URL: url, Answer: answer}
			if answer != "" {
				ok := exercise.Matches(answer, svc.Culprit)
				rep.Correct = &ok
				p.Answers = append(p.Answers, answer)
				p.Solved = p.Solved || ok
				if err := book.Save(); err != nil {
					return err
				}
			}
			isLeak := svc.Kind == leaks.KindHeap || svc.Kind == leaks.KindGoroutine
			if isLeak {
				if url == "" {
					return usageErrorf("no running exercise %s: start it with 'leaklab exercise start %s' or pass --url", svc.Name, svc.Name)
				}
				if f.streams.ErrIsTerminal {
					fmt.Fprintf(f.streams.ErrOut, "watching %s for %s...\n", url, dur)
				}
				w, err := watch.Run(cmd.Context(), url, watch.Options{Every: time.Second, For: dur})
				if err != nil {
					return fmt.Errorf("%w (is 'leaklab exercise start %s' still running?)", err, svc.Name)
				}
				still := len(w.Suspects) > 0
				rep.Watch, rep.LeakStillThere = w, &still
			}
			if err := f.render(rep, func(out io.Writer) error { return writeCheck(out, svc, rep) }); err != nil {
				return err
			}
			if rep.LeakStillThere != nil && *rep.LeakStillThere {
				return &foundError{what: "leak still there"}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&answer, "answer", "", "the function you think is responsible, e.g. '(*pageCache).render'")
	cmd.Flags().StringVar(&url, "url", "", "the service to watch (default: where 'exercise start' runs it)")
	cmd.Flags().DurationVar(&dur, "for", 30*time.Second, "how long to watch")
	return cmd
}

func writeCheck(w io.Writer, svc *leaks.Service, rep checkReport) error {
	if rep.LeakStillThere != nil {
		if *rep.LeakStillThere {
			fmt.Fprintf(w, "The leak is still there. Suspects:\n")
			for _, s := range rep.Watch.Suspects {
				fmt.Fprintf(w, "  %s %s %s (%s per minute)\n", s.Confidence, s.Kind, s.Function, formatGrowth(s))
			}
		} else {
			fmt.Fprintln(w, "No leak seen: nothing kept growing while watching.")
		}
	} else {
		fmt.Fprintf(w, "%s is a %s problem, not a leak, so there is nothing to watch; capture a %s profile to see it.\n", svc.Name, svc.Kind, svc.Profile)
	}
	if rep.Correct != nil {
		if *rep.Correct {
			fmt.Fprintf(w, "\nCorrect: %s is the culprit. Read why with: leaklab exercise solution %s\n", svc.Culprit, svc.Name)
		} else {
			fmt.Fprintf(w, "\nNot quite: %q is not the function responsible. Try 'leaklab exercise hint %s'.\n", rep.Answer, svc.Name)
		}
	}
	return nil
}

func formatGrowth(s watch.Suspect) string {
	if s.Unit == "bytes" {
		return "+" + bytesize.Format(int64(s.GrowthPerMinute))
	}
	return fmt.Sprintf("+%.0f %s", s.GrowthPerMinute, s.Unit)
}

func newCmdExerciseSolution(f *factory) *cobra.Command {
	return &cobra.Command{
		Use:               "solution NAME",
		Short:             "Explain an exercise's bug and show the fixed code path",
		Example:           "  leaklab exercise solution unbounded-cache",
		Args:              exerciseArgs,
		ValidArgsFunction: completeServiceNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, book, p, err := lookupExercise(args[0])
			if err != nil {
				return err
			}
			p.SolutionRead = true
			if err := book.Save(); err != nil {
				return err
			}
			file, code, err := leaks.CulpritSource(svc.Culprit)
			if err != nil {
				return err
			}
			out := map[string]string{"name": svc.Name, "culprit": svc.Culprit, "explanation": svc.Explanation, "file": file, "source": code}
			return f.render(out, func(w io.Writer) error {
				fmt.Fprintf(w, "%s: the culprit is %s\n\n%s\n\nThe code (%s) runs both variants; the fixed branch is the fix:\n\n", svc.Name, svc.Culprit, svc.Explanation, file)
				for _, line := range strings.Split(strings.TrimRight(code, "\n"), "\n") {
					fmt.Fprintf(w, "    %s\n", line)
				}
				_, err := fmt.Fprintf(w, "\nRun the fixed twin and watch it stay flat:\n  leaklab run %s --fixed\n", svc.Name)
				return err
			})
		},
	}
}
