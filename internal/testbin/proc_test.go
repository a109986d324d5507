package testbin

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// childEnv makes the test binary act as one of the children below.
const childEnv = "TESTBIN_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		child(mode)
		return
	}
	os.Exit(m.Run())
}

// child behaves as the processes StartJSON meets do: a service that prints
// its address and runs until SIGTERM, one that fails at start, one that
// prints something else, one that never gets going.
func child(mode string) {
	terms := make(chan os.Signal, 1)
	signal.Notify(terms, syscall.SIGTERM)
	switch mode {
	case "serves":
		fmt.Fprintln(os.Stderr, "msg=starting")
		// In two writes, as a line can reach the pipe.
		fmt.Print(`{"url":"http://127.0.0.1:1", `)
		fmt.Println(`"n":2}`)
		<-terms
		fmt.Println(`{"summary":"stopped"}`)
		os.Exit(0)
	case "prints-and-exits":
		fmt.Println(`{"url":"http://127.0.0.1:1"}`)
		os.Exit(0)
	case "fails-at-start":
		fmt.Fprintln(os.Stderr, "leaklab: cannot open database")
		os.Exit(1)
	case "not-json":
		fmt.Fprintln(os.Stderr, "msg=warming-up")
		fmt.Println("listening on 127.0.0.1:1")
	case "silent":
		fmt.Fprintln(os.Stderr, "msg=still-starting")
	case "ignores-sigterm":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println(`{"url":"http://127.0.0.1:1"}`)
	case "dies-later":
		fmt.Println(`{"url":"http://127.0.0.1:1"}`)
		fmt.Fprintln(os.Stderr, "panic: out of luck")
		os.Exit(2)
	}
	time.Sleep(time.Hour)
}

func childCmd(mode string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	return cmd
}

// recorder is a testing.TB that keeps failures instead of reporting them,
// so that the helpers' own failure messages can be checked.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	failures []string
	cleanups []func()
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatal(args ...any) {
	r.Errorf("%s", fmt.Sprint(args...))
	runtime.Goexit()
}

func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

// run runs body as a test would, then its cleanups, last first, and
// returns what failed.
func (r *recorder) run(body func(testing.TB)) string {
	done := make(chan struct{})
	go func() {
		defer close(done)
		body(r)
	}()
	<-done
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	return strings.Join(r.failures, "\n")
}

func TestStartJSON(t *testing.T) {
	// The cases run at once (two of them wait out a 3 s timeout); the
	// timeouts go back once they all have ended.
	start, stop := startTimeout, stopTimeout
	t.Cleanup(func() { startTimeout, stopTimeout = start, stop })
	startTimeout, stopTimeout = 3*time.Second, 3*time.Second

	type line struct {
		URL string `json:"url"`
		N   int    `json:"n"`
	}
	for _, tc := range []struct {
		mode     string
		stop     bool     // register Stop as StartService does
		exits    bool     // the child ends before the test does
		wantFail []string // all in the failure messages; none: no failure
		wantLine line
		wantOut  string // p.Stdout once stopped
	}{
		{mode: "serves", stop: true, wantLine: line{"http://127.0.0.1:1", 2}, wantOut: `{"summary":"stopped"}` + "\n"},
		{mode: "serves", wantLine: line{"http://127.0.0.1:1", 2}}, // killed at cleanup, no failure
		{mode: "prints-and-exits", wantLine: line{URL: "http://127.0.0.1:1"}},
		{mode: "fails-at-start", wantFail: []string{"exited (exit status 1) before printing its first line", "its stdout is empty", "stderr:\nleaklab: cannot open database"}},
		{mode: "not-json", wantFail: []string{`printed "listening on 127.0.0.1:1" first, not the JSON expected`, "stderr:\nmsg=warming-up"}},
		{mode: "silent", wantFail: []string{"printed no line on stdout within 3s", "stderr:\nmsg=still-starting"}},
		{mode: "ignores-sigterm", stop: true, wantLine: line{URL: "http://127.0.0.1:1"}, wantFail: []string{"did not exit cleanly on SIGTERM: did not exit within 3s, killed", "its stderr is empty"}},
		{mode: "dies-later", stop: true, exits: true, wantLine: line{URL: "http://127.0.0.1:1"}, wantFail: []string{"exited (exit status 2) before the test stopped it", "panic: out of luck"}},
	} {
		t.Run(fmt.Sprintf("%s stop=%v", tc.mode, tc.stop), func(t *testing.T) {
			t.Parallel()
			var p *Proc
			var got line
			r := &recorder{TB: t}
			failures := r.run(func(tb testing.TB) {
				p = StartJSON(tb, childCmd(tc.mode), &got)
				if tc.stop {
					tb.Cleanup(func() { p.Stop(tb) })
				}
				if tc.exits {
					<-p.Exited()
				}
			})
			for _, want := range tc.wantFail {
				if !strings.Contains(failures, want) {
					t.Errorf("failure messages lack %q:\n%s", want, failures)
				}
			}
			if len(tc.wantFail) == 0 && failures != "" {
				t.Errorf("failed: %s", failures)
			}
			if got != tc.wantLine {
				t.Errorf("decoded %+v, want %+v", got, tc.wantLine)
			}
			if p == nil {
				return // StartJSON failed, as wanted
			}
			if !strings.HasSuffix(p.Name, " -test.run=^$") {
				t.Errorf("Name %q is not the command line", p.Name)
			}
			select {
			case <-p.Exited():
			default:
				t.Fatal("the child still runs after the cleanups")
			}
			if err := syscall.Kill(p.PID(), 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("pid %d after the cleanups: %v, want it gone and reaped", p.PID(), err)
			}
			if tc.wantOut != "" && p.Stdout.String() != tc.wantOut {
				t.Errorf("stdout after the first line: %q, want %q", p.Stdout, tc.wantOut)
			}
		})
	}
}

// Wait returns the exit as exec.Cmd.Wait does, and a Stop after it does
// nothing: the test has seen how the child ended.
func TestWaitThenStop(t *testing.T) {
	p := Start(t, childCmd("fails-at-start"))
	var exit *exec.ExitError
	if err := p.Wait(30 * time.Second); !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("Wait: %v, want exit status 1", err)
	}
	if !strings.Contains(p.Stderr.String(), "cannot open database") {
		t.Errorf("stderr %q", p.Stderr)
	}
	r := &recorder{TB: t}
	if failures := r.run(p.Stop); failures != "" {
		t.Errorf("Stop after Wait: %s", failures)
	}
}

// A start that cannot happen says which command failed.
func TestStartMissingBinary(t *testing.T) {
	r := &recorder{TB: t}
	failures := r.run(func(tb testing.TB) {
		Start(tb, exec.Command("/no/such/leaklab", "run"))
	})
	if !strings.Contains(failures, "starting leaklab run: fork/exec /no/such/leaklab") {
		t.Errorf("failure %q", failures)
	}
}

// Setting cmd.Stdout would be silently overridden; StartJSON refuses.
func TestStartRefusesOwnOutput(t *testing.T) {
	r := &recorder{TB: t}
	failures := r.run(func(tb testing.TB) {
		cmd := childCmd("serves")
		cmd.Stdout = os.Stdout
		var v any
		StartJSON(tb, cmd, &v)
	})
	if !strings.Contains(failures, "leave cmd.Stdout and cmd.Stderr unset") {
		t.Errorf("failure %q", failures)
	}
}
