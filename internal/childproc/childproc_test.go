package childproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// childEnv makes the test binary act as one of the children below.
const childEnv = "CHILDPROC_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		child(mode)
		return
	}
	os.Exit(m.Run())
}

// child behaves as the processes the supervisors meet do.
func child(mode string) {
	terms := make(chan os.Signal, 1)
	signal.Notify(terms, syscall.SIGTERM)
	switch mode {
	case "serves":
		// In two writes, as a line can reach the pipe.
		fmt.Print(`{"url":"http://127.0.0.1:1", `)
		fmt.Println(`"n":2}`)
		<-terms
		fmt.Println(`{"summary":"stopped"}`)
		os.Exit(0)
	case "fails-at-start":
		fmt.Fprintln(os.Stderr, "cannot open database")
		os.Exit(1)
	case "silent":
	case "ignores-sigterm":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
	case "parent":
		// Starts a grandchild through this package, says its pid, and
		// waits to be killed.
		p, err := Start(Spec{Argv: []string{"sleep", "60"}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(p.PID())
	}
	time.Sleep(time.Hour)
}

func childSpec(mode string) Spec {
	return Spec{Argv: []string{os.Args[0], "-test.run=^$"}, Env: append(os.Environ(), childEnv+"="+mode), FirstLine: true}
}

func start(t *testing.T, spec Spec) *Proc {
	t.Helper()
	p, err := Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

// alive says whether pid runs: not gone, and not a zombie.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for the child's writes and the test's reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// The first line is held back for WaitFirstLine, even when it comes in
// pieces; the rest goes to Stdout; SIGTERM ends the child cleanly.
func TestFirstLineThenStop(t *testing.T) {
	var out syncBuffer
	spec := childSpec("serves")
	spec.Stdout = &out
	p := start(t, spec)
	line, err := p.WaitFirstLine(30 * time.Second)
	if err != nil || string(line) != `{"url":"http://127.0.0.1:1", "n":2}` {
		t.Fatalf("first line %q, %v", line, err)
	}
	if err := p.Stop(30 * time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if got, want := out.String(), `{"summary":"stopped"}`+"\n"; got != want {
		t.Errorf("stdout after the first line: %q, want %q", got, want)
	}
}

// A child that exits without a line says how it exited.
func TestFirstLineChildExits(t *testing.T) {
	var errOut syncBuffer
	spec := childSpec("fails-at-start")
	spec.Stderr = &errOut
	p := start(t, spec)
	_, err := p.WaitFirstLine(30 * time.Second)
	var exited *ExitedError
	var exit *exec.ExitError
	if !errors.As(err, &exited) || !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("WaitFirstLine: %v, want an ExitedError with exit status 1", err)
	}
	if got := err.Error(); got != "exited (exit status 1) before printing its first line" {
		t.Errorf("message %q", got)
	}
	if !strings.Contains(errOut.String(), "cannot open database") {
		t.Errorf("stderr %q", errOut.String())
	}
}

// A child that prints nothing in time is reported, and left running.
func TestFirstLineTimeout(t *testing.T) {
	p := start(t, childSpec("silent"))
	_, err := p.WaitFirstLine(200 * time.Millisecond)
	var none *NoLineError
	if !errors.As(err, &none) || err.Error() != "printed no line on stdout within 200ms" {
		t.Fatalf("WaitFirstLine: %v, want a NoLineError", err)
	}
	if !alive(p.PID()) {
		t.Error("the child was stopped; WaitFirstLine should leave it to the caller")
	}
}

// Every child that ignores SIGTERM is killed when the grace is up, not
// only the first: the grace holds for all of them together. A child that
// never started (nil) is skipped.
func TestStopAllKillsEveryChildIgnoringSIGTERM(t *testing.T) {
	var procs []*Proc
	for range 3 {
		p := start(t, childSpec("ignores-sigterm"))
		if line, err := p.WaitFirstLine(30 * time.Second); err != nil || string(line) != "ready" {
			t.Fatalf("the SIGTERM-ignoring child did not start: %q, %v", line, err)
		}
		procs = append(procs, p)
	}
	procs = append(procs[:1], append([]*Proc{nil}, procs[1:]...)...)

	const grace = 300 * time.Millisecond
	done := make(chan []error, 1)
	go func() { done <- StopAll(procs, grace) }()
	var errs []error
	select {
	case errs = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("StopAll still waits 15s after a grace of 300ms: a child that ignored SIGTERM was not killed")
	}
	for i, err := range errs {
		var killed *KilledError
		switch {
		case i == 1:
			if err != nil {
				t.Errorf("the child that never started: %v", err)
			}
		case !errors.As(err, &killed) || err.Error() != "did not exit within 300ms, killed":
			t.Errorf("child %d ignoring SIGTERM: %v, want it killed", i, err)
		}
		if procs[i] == nil {
			continue
		}
		select {
		case <-procs[i].Exited():
		default:
			t.Errorf("child %d still runs", i)
		}
	}
}

// With OwnGroup, Kill reaches the child's own children too; without, a
// shell's background job would outlive it.
func TestKillReachesTheGroup(t *testing.T) {
	for _, own := range []bool{true, false} {
		t.Run(fmt.Sprintf("OwnGroup=%v", own), func(t *testing.T) {
			p := start(t, Spec{
				Argv:      []string{"sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!; wait"},
				OwnGroup:  own,
				FirstLine: true,
			})
			line, err := p.WaitFirstLine(30 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			sleeper, err := strconv.Atoi(string(line))
			if err != nil {
				t.Fatalf("sh printed %q", line)
			}
			if !own {
				t.Cleanup(func() { syscall.Kill(sleeper, syscall.SIGKILL) })
			}
			p.Kill()
			if own {
				waitGone(t, sleeper)
			} else if !alive(sleeper) {
				// The control: the test would pass without groups if
				// sleep died with its shell anyway.
				t.Errorf("sleep %d died with its shell outside a group of its own", sleeper)
			}
		})
	}
}

// A child dies with the process that started it, even when that process is
// killed outright and cannot stop it (Pdeathsig).
func TestChildDiesWithItsParent(t *testing.T) {
	parent := start(t, childSpec("parent"))
	line, err := parent.WaitFirstLine(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	grandchild, err := strconv.Atoi(string(line))
	if err != nil {
		t.Fatalf("parent printed %q", line)
	}
	t.Cleanup(func() { syscall.Kill(grandchild, syscall.SIGKILL) })
	if !alive(grandchild) {
		t.Fatalf("grandchild %d is not running", grandchild)
	}
	parent.Kill()
	waitGone(t, grandchild)
}

// Linux sends Pdeathsig when the thread that forked a child exits, and a
// goroutine locked to its thread ends that thread when it returns (scale's
// dispatcher does). Children are forked on a thread of their own, so such a
// goroutine does not take them along.
func TestChildOutlivesALockedThreadThatStartedIt(t *testing.T) {
	type started struct {
		p   *Proc
		tid int
		err error
	}
	var s started
	for {
		ch := make(chan started, 1)
		go func() {
			runtime.LockOSThread()
			tid := unix.Gettid()
			if tid == os.Getpid() {
				// The main thread is parked rather than ended; try again.
				runtime.UnlockOSThread()
				ch <- started{tid: tid}
				return
			}
			p, err := Start(childSpec("serves"))
			ch <- started{p: p, tid: tid, err: err}
			// Returns locked: the runtime ends this thread.
		}()
		if s = <-ch; s.tid != os.Getpid() {
			break
		}
	}
	if s.err != nil {
		t.Fatal(s.err)
	}
	t.Cleanup(s.p.Kill)
	if _, err := s.p.WaitFirstLine(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	// Once the thread is gone, any Pdeathsig it caused has been sent.
	task := fmt.Sprintf("/proc/self/task/%d", s.tid)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(task); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("thread %d did not end after its locked goroutine returned", s.tid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A child killed by Pdeathsig would report "signal: killed" here.
	if err := s.p.Stop(30 * time.Second); err != nil {
		t.Fatalf("the child did not survive the thread that started it: %v", err)
	}
}

// Output runs a tool to completion and returns its stdout; a failing tool
// says how it exited.
func TestOutput(t *testing.T) {
	out, err := Output(context.Background(), Spec{Argv: []string{"sh", "-c", "echo found; echo chatter >&2"}})
	if err != nil || string(out) != "found\n" {
		t.Fatalf("Output = %q, %v; want found", out, err)
	}
	var exit *exec.ExitError
	if _, err := Output(context.Background(), Spec{Argv: []string{"sh", "-c", "exit 3"}}); !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Errorf("a tool exiting 3: %v", err)
	}
}

// WaitContext (and so Run) kills a child still running when its context ends.
func TestWaitContextCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pids := make(chan int, 1)
	done := make(chan error, 1)
	go func() {
		p, err := Start(childSpec("serves"))
		if err != nil {
			done <- err
			return
		}
		pids <- p.PID()
		done <- p.WaitContext(ctx)
	}()
	pid := <-pids
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("WaitContext after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("WaitContext still waits 15s after its context ended")
	}
	waitGone(t, pid)
}
