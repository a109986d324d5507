package testbin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
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
	Cmd    *exec.Cmd   // wait through Proc, never Cmd.Wait or Cmd.Process.Wait
	Stdout *SyncBuffer // what it printed on stdout (after the first line, with StartJSON)
	Stderr *SyncBuffer

	exited   chan struct{} // closed once Cmd.Wait has returned
	waitErr  error         // Cmd.Wait's result, set before exited closes
	observed atomic.Bool   // the test has waited for, stopped or killed it
}

// Start starts cmd with its stdout and stderr kept in p.Stdout and
// p.Stderr (cmd's own must be unset) and kills it when the test ends.
func Start(t testing.TB, cmd *exec.Cmd) *Proc {
	t.Helper()
	return start(t, cmd, nil)
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
	first := make(chan []byte, 1)
	p := start(t, cmd, first)
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	var line []byte
	select {
	case line = <-first:
	case <-p.exited:
		// Cmd.Wait returns only after the output is copied, so a line
		// printed just before exiting is waiting in first by now.
		select {
		case line = <-first:
		default:
			t.Fatalf("%s exited (%v) before printing its first line%s%s", p.Name, p.waitErr, quoteOutput("stdout", p.Stdout), quoteOutput("stderr", p.Stderr))
		}
	case <-timer.C:
		p.Kill() // so that all it wrote on stderr is read
		t.Fatalf("%s printed no line on stdout within %s%s", p.Name, startTimeout, quoteOutput("stderr", p.Stderr))
	}
	if err := json.Unmarshal(line, v); err != nil {
		p.Kill()
		t.Fatalf("%s printed %q first, not the JSON expected: %v%s", p.Name, line, err, quoteOutput("stderr", p.Stderr))
	}
	return p
}

func start(t testing.TB, cmd *exec.Cmd, first chan []byte) *Proc {
	t.Helper()
	if cmd.Stdout != nil || cmd.Stderr != nil {
		t.Fatal("testbin.Start keeps the child's stdout and stderr itself: leave cmd.Stdout and cmd.Stderr unset")
	}
	p := &Proc{
		Name:   filepath.Base(cmd.Path) + " " + strings.Join(cmd.Args[1:], " "),
		Cmd:    cmd,
		Stdout: &SyncBuffer{},
		Stderr: &SyncBuffer{},
		exited: make(chan struct{}),
	}
	cmd.Stdout = p.Stdout
	if first != nil {
		cmd.Stdout = &firstLineWriter{first: first, rest: p.Stdout}
	}
	cmd.Stderr = p.Stderr
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = pipeDelay
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", p.Name, err)
	}
	// One goroutine waits, so that a test can both watch for the child's
	// exit (StartJSON, Exited) and wait for it with a deadline.
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.Kill)
	return p
}

// Exited is closed once the child has exited and its output is read.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Wait waits up to limit for the child to exit and returns what
// exec.Cmd.Wait does (an *exec.ExitError for a non-zero exit). Past the
// limit it kills the child and says so.
func (p *Proc) Wait(limit time.Duration) error {
	p.observed.Store(true)
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-p.exited:
		return p.waitErr
	case <-timer.C:
		_ = p.Cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("did not exit within %s, killed", limit)
	}
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
	case <-p.exited:
		if p.waitErr != nil {
			t.Errorf("%s exited (%v) before the test stopped it%s", p.Name, p.waitErr, quoteOutput("stderr", p.Stderr))
		}
		return
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	if err := p.Wait(stopTimeout); err != nil {
		t.Errorf("%s did not exit cleanly on SIGTERM: %v%s", p.Name, err, quoteOutput("stderr", p.Stderr))
	}
}

// Kill ends the child abruptly (SIGKILL), as a crash would, and waits for
// it.
func (p *Proc) Kill() {
	p.observed.Store(true)
	_ = p.Cmd.Process.Kill()
	<-p.exited
}

// quoteOutput is a failure message's tail showing a child's output.
func quoteOutput(name string, b *SyncBuffer) string {
	s := b.String()
	if s == "" {
		return "; its " + name + " is empty"
	}
	return "\n" + name + ":\n" + s
}

// firstLineWriter hands the first line written to it to first, without
// its newline, and passes the rest on. exec.Cmd writes to it from one
// goroutine only.
type firstLineWriter struct {
	line  []byte
	first chan<- []byte // nil once the line is sent
	rest  *SyncBuffer
}

func (w *firstLineWriter) Write(b []byte) (int, error) {
	n := len(b)
	if w.first != nil {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			w.line = append(w.line, b...)
			return n, nil
		}
		w.first <- append(w.line, b[:i]...)
		w.first, w.line, b = nil, nil, b[i+1:]
	}
	w.rest.Write(b)
	return n, nil
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
