// Package childproc starts and stops the child processes leaklab
// supervises: the services 'run --all' starts, the workers of 'scale', and
// the binaries end-to-end tests run. It is the one place that forks: every
// child dies with leaklab even when leaklab is killed outright (Pdeathsig),
// one goroutine reaps it so that any number of callers can watch for its
// exit, its first stdout line can be awaited (a service's 'I listen here'),
// and stopping is SIGTERM, then SIGKILL once a grace period is up.
package childproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// Spec says what to run and where its output goes.
type Spec struct {
	// Argv is the command line; Argv[0] is a path, or a name looked up in
	// PATH.
	Argv []string
	// Env is the child's whole environment; nil gives it this process's.
	Env []string
	// Dir is the child's working directory; empty for this process's.
	Dir string
	// ExtraFiles are inherited as fd 3, 4 and so on.
	ExtraFiles []*os.File
	// Stdin is the child's standard input; nil reads nothing.
	Stdin *os.File
	// Outlive leaves out the death signal: the child lives on when this
	// process dies, for a guard that must act after leaklab is gone (the
	// retainers scan's, which resumes a target leaklab left stopped).
	Outlive bool
	// Stdout and Stderr receive the child's output; nil discards it.
	Stdout, Stderr io.Writer
	// OwnGroup starts the child in a process group of its own; Signal,
	// Kill and Stop then reach every process in it, the child's own
	// children included.
	OwnGroup bool
	// FirstLine holds back the first line the child prints on stdout for
	// WaitFirstLine; only the rest goes to Stdout.
	FirstLine bool
	// WaitDelay bounds how long, once the child has exited, its output
	// pipes may stay open (held by children it left behind); 0 waits for
	// them to close.
	WaitDelay time.Duration
}

// Proc is a running (or exited) child.
type Proc struct {
	cmd      *exec.Cmd
	ownGroup bool
	first    chan []byte   // the first stdout line, with Spec.FirstLine
	exited   chan struct{} // closed once the child is reaped and its output read
	err      error         // exec.Cmd.Wait's result, set before exited closes
}

// Start starts the child described by spec.
func Start(spec Spec) (*Proc, error) {
	if len(spec.Argv) == 0 {
		return nil, errors.New("childproc: Start needs Argv")
	}
	cmd := exec.Command(spec.Argv[0], spec.Argv[1:]...)
	cmd.Env, cmd.Dir, cmd.ExtraFiles, cmd.WaitDelay = spec.Env, spec.Dir, spec.ExtraFiles, spec.WaitDelay
	cmd.Stdout, cmd.Stderr = spec.Stdout, spec.Stderr
	// Pdeathsig, so that the child dies with this process even when it
	// is SIGKILLed and cannot stop its children itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: spec.OwnGroup, Pdeathsig: syscall.SIGKILL}
	if spec.Outlive {
		cmd.SysProcAttr.Pdeathsig = 0
	}
	if spec.Stdin != nil {
		cmd.Stdin = spec.Stdin
	}
	p := &Proc{cmd: cmd, ownGroup: spec.OwnGroup, exited: make(chan struct{})}
	if spec.FirstLine {
		rest := spec.Stdout
		if rest == nil {
			rest = io.Discard
		}
		p.first = make(chan []byte, 1)
		cmd.Stdout = &firstLineWriter{first: p.first, rest: rest}
	}
	if err := forkOnSpawnerThread(cmd); err != nil {
		return nil, err
	}
	go func() {
		p.err = cmd.Wait()
		reaped()
		close(p.exited)
	}()
	return p, nil
}

// Run runs a tool to completion (go build, git): it starts the child
// described by spec, waits for it and returns Err. When ctx ends first it
// kills the child (its group with OwnGroup) and returns ctx's error. Like
// every child, the tool dies with leaklab.
func Run(ctx context.Context, spec Spec) error {
	p, err := Start(spec)
	if err != nil {
		return err
	}
	return p.WaitContext(ctx)
}

// Output is Run returning what the child printed on stdout (spec.Stdout
// is ignored).
func Output(ctx context.Context, spec Spec) ([]byte, error) {
	var out bytes.Buffer
	spec.Stdout = &out
	err := Run(ctx, spec)
	return out.Bytes(), err
}

// WaitContext waits for the child's exit and returns Err, or kills it
// when ctx ends first and returns ctx's error.
func (p *Proc) WaitContext(ctx context.Context) error {
	select {
	case <-p.exited:
		return p.err
	case <-ctx.Done():
		p.Kill()
		return ctx.Err()
	}
}

// PID is the child's process ID (and, with OwnGroup, its group's).
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Exited is closed once the child has exited and its output is read.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Err is how the child exited, as exec.Cmd.Wait says it (an
// *exec.ExitError for a non-zero exit or a signal). Call it only once
// Exited is closed.
func (p *Proc) Err() error { return p.err }

// Signal sends sig to the child (to its group with OwnGroup); it does
// nothing once the child has exited.
func (p *Proc) Signal(sig syscall.Signal) {
	select {
	case <-p.exited:
		return
	default:
	}
	if p.ownGroup {
		_ = syscall.Kill(-p.PID(), sig)
		return
	}
	// Signalling a child that has just exited fails harmlessly.
	_ = p.cmd.Process.Signal(sig)
}

// Kill sends SIGKILL to the child, and with OwnGroup to whatever is left
// of its process group (even once the child itself has exited, so that
// its own children die too), then waits for the child's exit.
func (p *Proc) Kill() {
	if p.ownGroup {
		_ = syscall.Kill(-p.PID(), syscall.SIGKILL)
	} else {
		_ = p.cmd.Process.Kill()
	}
	<-p.exited
}

// Wait waits up to limit for the child to exit and returns Err. Past the
// limit it kills the child and returns a *KilledError.
func (p *Proc) Wait(limit time.Duration) error {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-p.exited:
		return p.err
	case <-timer.C:
		p.Kill()
		return &KilledError{After: limit}
	}
}

// KilledError says a child did not exit in the time it had, and was killed.
type KilledError struct{ After time.Duration }

func (e *KilledError) Error() string { return fmt.Sprintf("did not exit within %s, killed", e.After) }

// Stop is StopAll for one child.
func (p *Proc) Stop(grace time.Duration) error { return StopAll([]*Proc{p}, grace)[0] }

// StopAll sends SIGTERM to every child still running, gives them grace
// (all together) to exit, and kills those still running when it is up.
// It returns how each exited, in order: Err, or a *KilledError for one
// that was killed. Nil entries, children that never started, are skipped.
func StopAll(procs []*Proc, grace time.Duration) []error {
	for _, p := range procs {
		if p != nil {
			p.Signal(syscall.SIGTERM)
		}
	}
	// A closed channel, unlike time.After's, stays ready for every child
	// still running once the time is up, not only the first.
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	errs := make([]error, len(procs))
	for i, p := range procs {
		if p == nil {
			continue
		}
		select {
		case <-p.exited:
			errs[i] = p.err
		case <-ctx.Done():
			select {
			case <-p.exited: // exited just as the time ran out
				errs[i] = p.err
			default:
				p.Kill()
				errs[i] = &KilledError{After: grace}
			}
		}
	}
	return errs
}

// FirstExit delivers the first of procs to exit (then the others, as
// they exit). Nil entries are skipped.
func FirstExit(procs []*Proc) <-chan *Proc {
	out := make(chan *Proc, len(procs))
	for _, p := range procs {
		if p == nil {
			continue
		}
		go func() {
			<-p.exited
			out <- p
		}()
	}
	return out
}

// WaitFirstLine waits up to timeout for the first line the child prints on
// stdout (Spec.FirstLine must be set) and returns it without its newline.
// It returns an *ExitedError when the child exits without printing one,
// and a *NoLineError when the time is up; the child then still runs.
func (p *Proc) WaitFirstLine(timeout time.Duration) ([]byte, error) {
	if p.first == nil {
		return nil, errors.New("childproc: WaitFirstLine needs Spec.FirstLine")
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case line := <-p.first:
		return line, nil
	case <-p.exited:
		// Wait returns only after the output is copied, so a line
		// printed just before exiting is waiting in first by now.
		select {
		case line := <-p.first:
			return line, nil
		default:
			return nil, &ExitedError{Err: p.err}
		}
	case <-timer.C:
		return nil, &NoLineError{Within: timeout}
	}
}

// ExitedError says a child exited before printing its first line.
type ExitedError struct{ Err error } // how it exited; nil for status 0

func (e *ExitedError) Error() string {
	if e.Err == nil {
		return "exited (exit status 0) before printing its first line"
	}
	return fmt.Sprintf("exited (%v) before printing its first line", e.Err)
}

func (e *ExitedError) Unwrap() error { return e.Err }

// NoLineError says a child printed no line on stdout in the time it had.
type NoLineError struct{ Within time.Duration }

func (e *NoLineError) Error() string {
	return fmt.Sprintf("printed no line on stdout within %s", e.Within)
}

// firstLineWriter hands the first line written to it to first, without
// its newline, and passes the rest on. exec.Cmd writes to it from one
// goroutine only.
type firstLineWriter struct {
	line  []byte
	first chan<- []byte // nil once the line is sent
	rest  io.Writer
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
	_, _ = w.rest.Write(b)
	return n, nil
}

// Linux delivers Pdeathsig when the thread that forked the child exits,
// not the process. A Go thread exits when a goroutine locked to it ends
// (scale's round-robin dispatcher does that), so children are forked from
// one goroutine locked to its thread, which lives as long as any child it
// forked: it ends (and a new one starts with the next child) only once all
// of them have been reaped, so that no goroutine outlives its use.
var spawner struct {
	mu   sync.Mutex
	reqs chan spawnRequest // nil while no spawner runs
	live int               // children forked and not yet reaped
}

type spawnRequest struct {
	cmd *exec.Cmd
	err chan error
}

func forkOnSpawnerThread(cmd *exec.Cmd) error {
	spawner.mu.Lock()
	defer spawner.mu.Unlock()
	if spawner.reqs == nil {
		reqs := make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
			for r := range reqs {
				r.err <- r.cmd.Start()
			}
		}()
		spawner.reqs = reqs
	}
	r := spawnRequest{cmd: cmd, err: make(chan error, 1)}
	spawner.reqs <- r
	err := <-r.err
	if err == nil {
		spawner.live++
	}
	stopSpawnerIfIdle()
	return err
}

// reaped records that a forked child has been reaped.
func reaped() {
	spawner.mu.Lock()
	defer spawner.mu.Unlock()
	spawner.live--
	stopSpawnerIfIdle()
}

func stopSpawnerIfIdle() {
	if spawner.live == 0 && spawner.reqs != nil {
		close(spawner.reqs)
		spawner.reqs = nil
	}
}
