package retainers

import (
	"os"
	"strconv"

	"github.com/leaklab/leaklab/internal/childproc"
)

// guardScript runs in a separate process for the length of a scan. Its
// stdin is a pipe whose only writer is leaklab, so the read returns when
// leaklab detaches or dies in any way, SIGKILL included. The kernel
// detaches a dead tracer's tracees itself, but a stop signal that
// attaching queued may still stop the whole target afterwards; so once
// leaklab no longer traces the target (TracerPid, a thread ID, is not one
// of leaklab's threads), the guard sends SIGCONT while the
// target is in the stopped state, for up to five seconds.
const guardScript = `cat >/dev/null
i=0
while [ $i -lt 100 ]; do
	tracer=$(sed -n 's/^TracerPid:[[:space:]]*//p' /proc/$1/status 2>/dev/null)
	[ -n "$tracer" ] || exit 0
	if [ "$tracer" = 0 ] || [ ! -d /proc/$2/task/$tracer ]; then
		if grep -q '^State:[[:space:]]*T' /proc/$1/status; then
			kill -CONT $1 2>/dev/null
		elif [ $i -gt 4 ]; then
			exit 0
		fi
	fi
	sleep 0.05
	i=$((i+1))
done`

// guard is a running guard process; release lets it check the target
// and exit.
type guard struct {
	proc *childproc.Proc
	w    *os.File
}

func startGuard(pid int) (*guard, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	// Its own process group: a Ctrl-C on the terminal must not kill the
	// guard while leaklab is still detaching; and it outlives leaklab, so
	// that a SIGKILLed scan still leaves the target running.
	proc, err := childproc.Start(childproc.Spec{
		Argv:  []string{"/bin/sh", "-c", guardScript, "leaklab-retainers-guard", strconv.Itoa(pid), strconv.Itoa(os.Getpid())},
		Stdin: r, OwnGroup: true, Outlive: true,
	})
	r.Close()
	if err != nil {
		w.Close()
		return nil, err
	}
	return &guard{proc: proc, w: w}, nil
}

// release closes the pipe after leaklab has detached; the guard makes
// sure the target runs and exits. It does not wait for the guard longer
// than the guard's own limit.
func (g *guard) release() {
	g.w.Close()
	<-g.proc.Exited()
}
