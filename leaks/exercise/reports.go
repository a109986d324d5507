package exercise

import (
	"context"
	"errors"
	"fmt"
	"github.com/leaklab/leaklab/internal/opterr"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/leaklab/leaklab/internal/bytesize"
	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/profiles/watch"
)

// The exercise commands' work and reports: list, hint, check and
// solution read and update the book, and each report writes itself as
// text; as JSON it is the commands' output contract.

// Status is one exercise and how far the user got with it.
type Status struct {
	Name       string     `json:"name"`
	Kind       leaks.Kind `json:"kind"`
	Summary    string     `json:"summary"`
	HintsShown int        `json:"hints_shown"`
	Hints      int        `json:"hints"`
	Status     string     `json:"status"` // new, started, solution read or solved
}

// StatusList is every exercise of the catalog with its status.
type StatusList []Status

// List returns every exercise with its status.
func (b *Book) List() StatusList {
	var rows StatusList
	for _, s := range leaks.All() {
		p := b.Get(s.Name)
		status := "new"
		switch {
		case p.Solved:
			status = "solved"
		case p.SolutionRead:
			status = "solution read"
		case !p.Started.IsZero():
			status = "started"
		}
		rows = append(rows, Status{Name: s.Name, Kind: s.Kind, Summary: s.Summary, HintsShown: p.HintsShown, Hints: len(s.Hints), Status: status})
	}
	return rows
}

// WriteText writes the list as a table.
func (l StatusList) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EXERCISE\tKIND\tSTATUS\tHINTS")
	for _, r := range l {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\n", r.Name, r.Kind, r.Status, r.HintsShown, r.Hints)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, "\nStart one with: leaklab exercise start NAME")
	return err
}

// Started says where an exercise's service runs and what to try.
type Started struct {
	Name           string     `json:"name"`
	Kind           leaks.Kind `json:"kind"`
	URL            string     `json:"url"`
	Rate           float64    `json:"rate"` // requests per second
	LoadForSeconds float64    `json:"load_for_seconds"`
	loadFor        time.Duration
	svc            *leaks.Service
}

// Begin starts an exercise's service under steady load (see Start) and
// remembers where it runs.
func (b *Book) Begin(ctx context.Context, svc *leaks.Service, opts SessionOptions) (*Session, *Started, error) {
	sess, err := Start(ctx, svc, opts)
	if err != nil {
		return nil, nil, err
	}
	p := b.Get(svc.Name)
	p.Started, p.URL = time.Now().UTC(), sess.Server.URL()
	if err := b.Save(); err != nil {
		return nil, nil, errors.Join(err, sess.Stop())
	}
	loadFor := opts.LoadFor
	if loadFor <= 0 {
		loadFor = DefaultLoadFor
	}
	return sess, &Started{Name: svc.Name, Kind: svc.Kind, URL: sess.Server.URL(), Rate: sess.Rate, LoadForSeconds: loadFor.Seconds(), loadFor: loadFor, svc: svc}, nil
}

// WriteText says what runs where and which commands to try.
func (s *Started) WriteText(w io.Writer) error {
	svc := s.svc
	_, err := fmt.Fprintf(w, `Exercise %s (%s) is running at %s under %g requests/s.
  %s
Find the function responsible. In another terminal, try:
  curl -s %s/metrics | grep %s
  leaklab watch %s --for 30s
  leaklab capture %s --type %s
  leaklab exercise hint %s
  leaklab exercise check %s --answer 'FUNCTION'
Ctrl-C to stop (the load stops by itself after %s).
`, svc.Name, svc.Kind, s.URL, s.Rate, svc.Summary, s.URL, svc.Symptom.Metric, s.URL, s.URL, svc.Profile, svc.Name, svc.Name, s.loadFor)
	return err
}

// Hints are the hints revealed so far.
type Hints struct {
	Name  string   `json:"name"`
	Hints []string `json:"hints"`
	Left  int      `json:"hints_left"`
	total int
}

// Hint reveals the next hint of svc, if one is left, and returns all
// revealed so far.
func (b *Book) Hint(svc *leaks.Service) (*Hints, error) {
	p := b.Get(svc.Name)
	if p.HintsShown < len(svc.Hints) {
		p.HintsShown++
		if err := b.Save(); err != nil {
			return nil, err
		}
	}
	shown := svc.Hints[:p.HintsShown]
	return &Hints{Name: svc.Name, Hints: shown, Left: len(svc.Hints) - len(shown), total: len(svc.Hints)}, nil
}

// WriteText numbers the hints and, after the last, points at the solution.
func (h *Hints) WriteText(w io.Writer) error {
	for i, hint := range h.Hints {
		fmt.Fprintf(w, "Hint %d/%d: %s\n", i+1, h.total, hint)
	}
	if h.Left == 0 {
		fmt.Fprintf(w, "\nThat was the last hint. Still stuck? leaklab exercise solution %s\n", h.Name)
	}
	return nil
}

// CheckOptions configure Check.
type CheckOptions struct {
	// Answer, when not empty, is the user's diagnosis: a function name.
	Answer string
	// URL is the service to watch; "" means where Begin started it.
	URL string
	// For is how long to watch.
	For time.Duration
	// Watching, when not nil, is told which URL is watched before the
	// watch starts.
	Watching func(url string)
}

// ErrNotRunning means a leak exercise cannot be checked because no
// service to watch is known (neither CheckOptions.URL nor where Begin
// started it); Check's error is then an *opterr.Error wrapping it.
var ErrNotRunning = errors.New("no running exercise")

// Checked is the verdict of Check: whether the leak is still there (for
// leaks, which are watched) and whether the answer names the culprit.
type Checked struct {
	Name           string        `json:"name"`
	URL            string        `json:"url"`
	LeakStillThere *bool         `json:"leak_still_there,omitempty"`
	Answer         string        `json:"answer,omitempty"`
	Correct        *bool         `json:"correct,omitempty"`
	Watch          *watch.Report `json:"watch,omitempty"`
	svc            *leaks.Service
}

// Check judges the answer against the culprit (and remembers it), then,
// for a leak, watches the service to see whether the leak is still there.
func (b *Book) Check(ctx context.Context, svc *leaks.Service, opts CheckOptions) (*Checked, error) {
	p := b.Get(svc.Name)
	url := opts.URL
	if url == "" {
		url = p.URL
	}
	rep := &Checked{Name: svc.Name, URL: url, Answer: opts.Answer, svc: svc}
	if opts.Answer != "" {
		ok := Matches(opts.Answer, svc.Culprit)
		rep.Correct = &ok
		p.Answers = append(p.Answers, opts.Answer)
		p.Solved = p.Solved || ok
		if err := b.Save(); err != nil {
			return nil, err
		}
	}
	if svc.Kind != leaks.KindHeap && svc.Kind != leaks.KindGoroutine {
		return rep, nil
	}
	if url == "" {
		return nil, &opterr.Error{Option: "URL", Err: fmt.Errorf("%w %s: start it with 'leaklab exercise start %s' or pass URL", ErrNotRunning, svc.Name, svc.Name)}
	}
	if opts.Watching != nil {
		opts.Watching(url)
	}
	w, err := watch.Run(ctx, url, watch.Options{Every: time.Second, For: opts.For})
	if err != nil {
		return nil, fmt.Errorf("%w (is 'leaklab exercise start %s' still running?)", err, svc.Name)
	}
	still := len(w.Suspects) > 0
	rep.Watch, rep.LeakStillThere = w, &still
	return rep, nil
}

// LeakFound says whether the watch saw the leak still there.
func (c *Checked) LeakFound() bool { return c.LeakStillThere != nil && *c.LeakStillThere }

// WriteText says what the watch saw and whether the answer was right.
func (c *Checked) WriteText(w io.Writer) error {
	svc := c.svc
	switch {
	case c.LeakStillThere == nil:
		fmt.Fprintf(w, "%s is a %s problem, not a leak, so there is nothing to watch; capture a %s profile to see it.\n", svc.Name, svc.Kind, svc.Profile)
	case *c.LeakStillThere:
		fmt.Fprintf(w, "The leak is still there. Suspects:\n")
		for _, s := range c.Watch.Suspects {
			fmt.Fprintf(w, "  %s %s %s (%s per minute)\n", s.Confidence, s.Kind, s.Function, formatGrowth(s))
		}
	default:
		fmt.Fprintln(w, "No leak seen: nothing kept growing while watching.")
	}
	if c.Correct != nil {
		if *c.Correct {
			fmt.Fprintf(w, "\nCorrect: %s is the culprit. Read why with: leaklab exercise solution %s\n", svc.Culprit, svc.Name)
		} else {
			fmt.Fprintf(w, "\nNot quite: %q is not the function responsible. Try 'leaklab exercise hint %s'.\n", c.Answer, svc.Name)
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

// Solution explains an exercise's bug with the code that has it.
type Solution struct {
	Name        string `json:"name"`
	Culprit     string `json:"culprit"`
	Explanation string `json:"explanation"`
	File        string `json:"file"`
	Source      string `json:"source"`
}

// Solve remembers that the solution was read and returns it.
func (b *Book) Solve(svc *leaks.Service) (*Solution, error) {
	b.Get(svc.Name).SolutionRead = true
	if err := b.Save(); err != nil {
		return nil, err
	}
	file, code, err := leaks.CulpritSource(svc.Culprit)
	if err != nil {
		return nil, err
	}
	return &Solution{Name: svc.Name, Culprit: svc.Culprit, Explanation: svc.Explanation, File: file, Source: code}, nil
}

// WriteText shows the explanation, the code and how to run the fixed twin.
func (s *Solution) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "%s: the culprit is %s\n\n%s\n\nThe code (%s) runs both variants; the fixed branch is the fix:\n\n", s.Name, s.Culprit, s.Explanation, s.File)
	for _, line := range strings.Split(strings.TrimRight(s.Source, "\n"), "\n") {
		fmt.Fprintf(w, "    %s\n", line)
	}
	_, err := fmt.Fprintf(w, "\nRun the fixed twin and watch it stay flat:\n  leaklab run %s --fixed\n", s.Name)
	return err
}
