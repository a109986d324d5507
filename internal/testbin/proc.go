package testbin

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/childproc"
)

// Deadlines of the child processes Start and StartJSON run. A test that
// meets one has failed; they are long because the machine may be busy
// with other builds, and 'run --all' starts every service at once.
// Variables only so that this package's own tests can shorten them.
var (
	// startTimeout bounds the wait for a child's first stdout line.
	startTimeout = 60 * time.Second
	// stopTimeout bounds the wait for a child to exit on SIGTERM.
	stopTimeout = 30 * time.Second
	// pipeDelay bounds how long waiting for a child that has exited may
	// still wait for its output pipes, which its own children (say a
	// service 'run --all' started and failed to stop) can hold open.
	pipeDelay = 10 * time.Second
)

// Proc is a child process a test started with Start or StartJSON. It is
// killed when the test ends unless the test has stopped it already.
type Proc struct {
	Name   string      // the command line, for failure messages
	Stdout *SyncBuffer // what it printed on stdout (after the first line, with StartJSON)
	Stderr *SyncBuffer

	proc     *childproc.Proc
	observed atomic.Bool // the test has waited for, stopped or killed it
}

// Start starts cmd (made with exec.Command; only its path, arguments,
// environment, directory and WaitDelay count) through childproc, with its
// stdout and stderr kept in p.Stdout and p.Stderr (cmd's own must be
// unset), and kills it when the test ends.
func Start(t testing.TB, cmd *exec.Cmd) *Proc {
	t.Helper()
	return start(t, cmd, false)
}

// StartJSON starts cmd as Start does, waits for the first line it prints
// on stdout (e.g. the address 'leaklab run --output json' listens on) and
// decodes it into v. It fails the test, quoting the child's stderr, when
// the child exits first, prints something other than JSON or prints
// nothing for a minute. Later output goes to p.Stdout.
//
// The child is killed when the test ends; register p.Stop with t.Cleanup
// after StartJSON returns to stop it with SIGTERM and check that it exits
// cleanly instead (cleanups run last-registered first).
func StartJSON(t testing.TB, cmd *exec.Cmd, v any) *Proc {
	t.Helper()
	return decodeFirstLine(t, start(t, cmd, true), v)
}

// decodeFirstLine is StartJSON's wait for p's first line.
func decodeFirstLine(t testing.TB, p *Proc, v any) *Proc {
	t.Helper()
	line, err := p.proc.WaitFirstLine(startTimeout)
	var exited *childproc.ExitedError
	switch {
	case errors.As(err, &exited):
		t.Fatalf("%s exited (%v) before printing its first line%s%s", p.Name, exited.Err, quoteOutput("stdout", p.Stdout), quoteOutput("stderr", p.Stderr))
	case err != nil:
		p.Kill() // so that all it wrote on stderr is read
		t.Fatalf("%s %v%s", p.Name, err, quoteOutput("stderr", p.Stderr))
	}
	if err := json.Unmarshal(line, v); err != nil {
		p.Kill()
		t.Fatalf("%s printed %q first, not the JSON expected: %v%s", p.Name, line, err, quoteOutput("stderr", p.Stderr))
	}
	return p
}

func start(t testing.TB, cmd *exec.Cmd, firstLine bool) *Proc {
	t.Helper()
	if cmd.Stdout != nil || cmd.Stderr != nil {
		t.Fatal("testbin.Start keeps the child's stdout and stderr itself: leave cmd.Stdout and cmd.Stderr unset")
	}
	return startSpec(t, childproc.Spec{
		Argv:      append([]string{cmd.Path}, cmd.Args[1:]...),
		Env:       cmd.Env,
		Dir:       cmd.Dir,
		FirstLine: firstLine,
		WaitDelay: cmd.WaitDelay,
	})
}

// startSpec starts spec with its output kept in p.Stdout and p.Stderr.
func startSpec(t testing.TB, spec childproc.Spec) *Proc {
	t.Helper()
	p := &Proc{
		Name:   filepath.Base(spec.Argv[0]) + " " + strings.Join(spec.Argv[1:], " "),
		Stdout: &SyncBuffer{},
		Stderr: &SyncBuffer{},
	}
	spec.Stdout, spec.Stderr = p.Stdout, p.Stderr
	if spec.WaitDelay == 0 {
		spec.WaitDelay = pipeDelay
	}
	proc, err := childproc.Start(spec)
	if err != nil {
		t.Fatalf("starting %s: %v", p.Name, err)
	}
	p.proc = proc
	t.Cleanup(p.Kill)
	return p
}

// PID is the child's process ID.
func (p *Proc) PID() int { return p.proc.PID() }

// Exited is closed once the child has exited and its output is read.
func (p *Proc) Exited() <-chan struct{} { return p.proc.Exited() }

// Err is how the child exited, as exec.Cmd.Wait says it; call it only
// once Exited is closed.
func (p *Proc) Err() error { return p.proc.Err() }

// Wait waits up to limit for the child to exit and returns what
// exec.Cmd.Wait does (an *exec.ExitError for a non-zero exit). Past the
// limit it kills the child and says so.
func (p *Proc) Wait(limit time.Duration) error {
	p.observed.Store(true)
	return p.proc.Wait(limit)
}

// Stop sends SIGTERM and fails the test unless the child exits cleanly
// within 30 seconds. It reports a child that had already failed on its
// own, and does nothing once the test has waited for, stopped or killed
// the child.
func (p *Proc) Stop(t testing.TB) {
	t.Helper()
	if p.observed.Load() {
		return
	}
	select {
	case <-p.proc.Exited():
		if err := p.proc.Err(); err != nil {
			t.Errorf("%s exited (%v) before the test stopped it%s", p.Name, err, quoteOutput("stderr", p.Stderr))
		}
		return
	default:
	}
	p.observed.Store(true)
	if err := p.proc.Stop(stopTimeout); err != nil {
		t.Errorf("%s did not exit cleanly on SIGTERM: %v%s", p.Name, err, quoteOutput("stderr", p.Stderr))
	}
}

// Kill ends the child abruptly (SIGKILL), as a crash would, and waits for
// it.
func (p *Proc) Kill() {
	p.observed.Store(true)
	p.proc.Kill()
}

// quoteOutput is a failure message's tail showing a child's output.
func quoteOutput(name string, b *SyncBuffer) string {
	s := b.String()
	if s == "" {
		return "; its " + name + " is empty"
	}
	return "\n" + name + ":\n" + s
}

// SyncBuffer is a bytes.Buffer safe for a child's writes and a test's reads.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
