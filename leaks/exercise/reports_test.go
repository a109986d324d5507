package exercise

import (
	"bytes"
	"context"
	"errors"
	"github.com/leaklab/leaklab/internal/opterr"
	"strings"
	"testing"
	"time"

	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/profiles/watch"
)

// serviceOfKind returns a catalog service of one of the kinds.
func serviceOfKind(t *testing.T, kinds ...leaks.Kind) *leaks.Service {
	t.Helper()
	for _, s := range leaks.All() {
		for _, k := range kinds {
			if s.Kind == k && len(s.Hints) > 0 {
				return s
			}
		}
	}
	t.Fatalf("no service of kind %v in the catalog", kinds)
	return nil
}

func statusOf(b *Book, name string) string {
	for _, s := range b.List() {
		if s.Name == name {
			return s.Status
		}
	}
	return "(not listed)"
}

func text(t *testing.T, write func(w *bytes.Buffer) error) string {
	t.Helper()
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestHintsThenSolution(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	svc := serviceOfKind(t, leaks.KindHeap)
	if got := len(b.List()); got != len(leaks.All()) {
		t.Errorf("%d exercises listed, want the %d services", got, len(leaks.All()))
	}
	if s := statusOf(b, svc.Name); s != "new" {
		t.Errorf("status %q before anything, want new", s)
	}
	for i := 1; i <= len(svc.Hints)+1; i++ {
		h, err := b.Hint(svc)
		if err != nil {
			t.Fatal(err)
		}
		shown := min(i, len(svc.Hints))
		if len(h.Hints) != shown || h.Left != len(svc.Hints)-shown {
			t.Errorf("hint %d: %d shown, %d left", i, len(h.Hints), h.Left)
		}
		last := strings.Contains(text(t, func(w *bytes.Buffer) error { return h.WriteText(w) }), "That was the last hint")
		if last != (shown == len(svc.Hints)) {
			t.Errorf("hint %d of %d: 'last hint' said %v", i, len(svc.Hints), last)
		}
	}
	again, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := again.Get(svc.Name).HintsShown; got != len(svc.Hints) {
		t.Errorf("hints shown %d after reopening, want %d", got, len(svc.Hints))
	}
	sol, err := b.Solve(svc)
	if err != nil {
		t.Fatal(err)
	}
	if sol.Culprit != svc.Culprit || !strings.Contains(sol.Source, "func ") {
		t.Errorf("solution %+v", sol)
	}
	if s := statusOf(b, svc.Name); s != "solution read" {
		t.Errorf("status %q after the solution, want solution read", s)
	}
	if out := text(t, func(w *bytes.Buffer) error { return sol.WriteText(w) }); !strings.Contains(out, "leaklab run "+svc.Name+" --fixed") {
		t.Errorf("solution text:\n%s", out)
	}
}

// A problem that is not a leak is not watched: the answer alone is judged.
func TestCheckAnswerWithoutWatch(t *testing.T) {
	t.Parallel()
	b, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	svc := serviceOfKind(t, leaks.KindCPU, leaks.KindLock, leaks.KindAlloc)
	rep, err := b.Check(context.Background(), svc, CheckOptions{Answer: "noSuchFunction"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Correct == nil || *rep.Correct || rep.LeakStillThere != nil || rep.Watch != nil || rep.LeakFound() {
		t.Errorf("wrong answer: %+v", rep)
	}
	out := text(t, func(w *bytes.Buffer) error { return rep.WriteText(w) })
	if !strings.Contains(out, "not a leak, so there is nothing to watch") || !strings.Contains(out, `Not quite: "noSuchFunction"`) {
		t.Errorf("text:\n%s", out)
	}
	if s := statusOf(b, svc.Name); s != "new" {
		t.Errorf("status %q after a wrong answer, want new", s)
	}
	if rep, err = b.Check(context.Background(), svc, CheckOptions{Answer: svc.Culprit}); err != nil || !*rep.Correct {
		t.Fatalf("right answer: %+v, %v", rep, err)
	}
	if out := text(t, func(w *bytes.Buffer) error { return rep.WriteText(w) }); !strings.Contains(out, "Correct: "+svc.Culprit) {
		t.Errorf("text:\n%s", out)
	}
	if s := statusOf(b, svc.Name); s != "solved" {
		t.Errorf("status %q after the right answer, want solved", s)
	}
	if got := b.Get(svc.Name).Answers; len(got) != 2 {
		t.Errorf("answers remembered: %q, want both", got)
	}
}

// A leak needs a running service to watch; without one the answer is
// still remembered.
func TestCheckLeakNotRunning(t *testing.T) {
	t.Parallel()
	b, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	svc := serviceOfKind(t, leaks.KindGoroutine)
	_, err = b.Check(context.Background(), svc, CheckOptions{Answer: svc.Culprit, For: time.Second})
	if !errors.Is(err, ErrNotRunning) {
		t.Errorf("err = %v, want ErrNotRunning", err)
	}
	if !opterr.Is(err) || !strings.Contains(err.Error(), "start it with 'leaklab exercise start "+svc.Name+"' or pass URL") {
		t.Errorf("err = %v, want an option error saying how to start the exercise or name its URL", err)
	}
	if !b.Get(svc.Name).Solved {
		t.Error("the right answer was not remembered")
	}
}

// Begin runs the service, remembers where, and its report says where.
func TestBegin(t *testing.T) {
	t.Parallel()
	b, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	svc := serviceOfKind(t, leaks.KindHeap)
	sess, started, err := b.Begin(context.Background(), svc, SessionOptions{Service: leaks.Options{Addr: "127.0.0.1:0"}, LoadFor: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Stop()
	if started.URL == "" || started.URL != b.Get(svc.Name).URL || started.LoadForSeconds != 1 || started.Rate != svc.Rate {
		t.Errorf("started %+v, remembered URL %q", started, b.Get(svc.Name).URL)
	}
	if s := statusOf(b, svc.Name); s != "started" {
		t.Errorf("status %q, want started", s)
	}
	out := text(t, func(w *bytes.Buffer) error { return started.WriteText(w) })
	if !strings.Contains(out, "is running at "+started.URL) || !strings.Contains(out, "leaklab exercise check "+svc.Name) {
		t.Errorf("text:\n%s", out)
	}
}

// The demo's text names the culprit only when the watch did.
func TestDemoText(t *testing.T) {
	t.Parallel()
	svc := serviceOfKind(t, leaks.KindGoroutine)
	for _, named := range []bool{false, true} {
		rep := &watch.Report{Target: "http://127.0.0.1:1", Suspects: []watch.Suspect{}}
		if named {
			rep.Suspects = append(rep.Suspects, watch.Suspect{Kind: "goroutine", Function: svc.Culprit, Confidence: "likely", Unit: "goroutines", GrowthPerMinute: 60})
		}
		d := &Demoed{Watch: rep, svc: svc}
		out := text(t, func(w *bytes.Buffer) error { return d.WriteText(w) })
		if d.CulpritNamed() != named || strings.Contains(out, "The culprit is "+svc.Culprit) != named {
			t.Errorf("culprit named %v: CulpritNamed %v, text:\n%s", named, d.CulpritNamed(), out)
		}
		if !strings.Contains(out, "What next:") || !strings.Contains(out, "leaklab run "+svc.Name+" --fixed") {
			t.Errorf("no next steps:\n%s", out)
		}
	}
}

// A demo that could not take two snapshots is refused before its service
// starts.
func TestDemoRefusesShortWatch(t *testing.T) {
	t.Parallel()
	svc := serviceOfKind(t, leaks.KindGoroutine)
	for _, opts := range []DemoOptions{{For: time.Second, Every: 2 * time.Second}, {For: time.Second}} {
		if _, err := Demo(context.Background(), svc, opts); !opterr.Is(err) || !strings.Contains(err.Error(), "For must be at least Every") {
			t.Errorf("%+v: %v, want an option error", opts, err)
		}
	}
}
