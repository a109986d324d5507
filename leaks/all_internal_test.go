package leaks

import (
	"strings"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/childproc"
)

// startIgnoringChild starts a process that, like a service stuck in its
// shutdown, ignores SIGTERM, wired up as startChildren wires a service.
func startIgnoringChild(t *testing.T, name string) *Child {
	t.Helper()
	// The shell's ignored SIGTERM survives the exec into sleep; "ready"
	// says the trap is in place, so the SIGTERM cannot come before it.
	proc, err := childproc.Start(childproc.Spec{Argv: []string{"sh", "-c", `trap "" TERM; echo ready; exec sleep 60`}, FirstLine: true})
	if err != nil {
		t.Skipf("SKIPPED: cannot start sh: %v", err)
	}
	c := &Child{Name: name, Variant: Leaky, proc: proc, PID: proc.PID()}
	t.Cleanup(proc.Kill)
	line, err := proc.WaitFirstLine(10 * time.Second)
	if err != nil || string(line) != "ready" {
		t.Fatalf("%s: the SIGTERM-ignoring child did not start: %q, %v", name, line, err)
	}
	return c
}

// Every child that ignores SIGTERM is killed when the stop timeout is up,
// not only the first: the timeout holds for all of them.
func TestRunAllStopKillsEveryChildIgnoringSIGTERM(t *testing.T) {
	children := []*Child{
		startIgnoringChild(t, "first"),
		{Name: "never-started", Variant: Leaky}, // its start failed: no process
		startIgnoringChild(t, "second"),
		startIgnoringChild(t, "third"),
	}
	const timeout = 300 * time.Millisecond
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- stopChildrenWithin(children, timeout) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("stopChildren still waits 15s after a stop timeout of 300ms: a child that ignored SIGTERM was not killed")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("stopping took %s with a timeout of %s", took, timeout)
	}
	if err == nil || !strings.Contains(err.Error(), "first (leaky) did not stop cleanly: ignored SIGTERM for 300ms and was killed") {
		t.Errorf("error %v does not name the first child that ignored SIGTERM", err)
	}
	for _, c := range children[2:] {
		select {
		case <-c.proc.Exited():
		default:
			t.Errorf("%s still runs", c.Name)
		}
	}
}
