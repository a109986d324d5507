package scale

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/leaklab/leaklab/internal/childproc"
	"golang.org/x/sys/unix"
)

// workerSlot is one worker position; its process changes on restart.
type workerSlot struct {
	index  int
	stderr *tailBuffer

	mu      sync.Mutex
	proc    *childproc.Proc
	pid     int
	alive   bool
	started time.Time
	exited  chan struct{} // closed when the current process has been reaped
	exitErr error
	connFD  int // roundrobin: the master's end of the fd-passing socket, -1 when none
	stats   *statsConn
	handed  int64 // roundrobin: connections passed to this slot
	fast    int   // consecutive crashes soon after start
}

func (s *workerSlot) exitedChan() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exited == nil {
		done := make(chan struct{})
		close(done)
		return done
	}
	return s.exited
}

// current is the worker's latest process, nil before the first start.
func (s *workerSlot) current() *childproc.Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

// killGroup kills whatever is left in the worker's process group, the
// worker's own children included.
func (s *workerSlot) killGroup() {
	if p := s.current(); p != nil {
		p.Kill()
	}
}

func (s *workerSlot) closeSockets() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.connFD >= 0 {
		unix.Close(s.connFD)
		s.connFD = -1
	}
	if s.stats != nil {
		s.stats.close()
		s.stats = nil
	}
}

// startWorker starts (or restarts) the process of slot s.
func (c *Cluster) startWorker(s *workerSlot) error {
	opts := c.opts
	procs := opts.ProcsPerWorker
	if opts.Strategy == Single {
		procs = opts.Workers
	}
	env := append(protocolFreeEnviron(), opts.Target.Env...)
	env = append(env,
		"GOMAXPROCS="+strconv.Itoa(procs),
		EnvListenAddr+"="+c.addr.String(),
		EnvWorkerIndex+"="+strconv.Itoa(s.index),
		EnvStatsFD+"="+strconv.Itoa(statsFD),
	)

	var extra []*os.File
	var closeAfterStart []*os.File
	connFD := -1
	switch opts.Strategy {
	case Single, SharedFD:
		env = append(env, EnvListenFD+"="+strconv.Itoa(listenerFD))
		extra = append(extra, c.lnFile)
	case RoundRobin:
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return os.NewSyscallError("socketpair", err)
		}
		connFD = fds[0]
		child := os.NewFile(uintptr(fds[1]), "leaklab-conns")
		extra = append(extra, child)
		closeAfterStart = append(closeAfterStart, child)
		env = append(env, EnvConnFD+"="+strconv.Itoa(listenerFD))
	case ReusePort:
		env = append(env, EnvReusePort+"=1")
		// fd 3 must exist for fd 4 to be the stats socket; /dev/null is
		// harmless to a worker that does not look at it.
		null, err := os.Open(os.DevNull)
		if err != nil {
			return err
		}
		extra = append(extra, null)
		closeAfterStart = append(closeAfterStart, null)
	}
	stats, child, err := newStatsPair()
	if err != nil {
		if connFD >= 0 {
			unix.Close(connFD)
		}
		closeFiles(closeAfterStart)
		return err
	}
	extra = append(extra, child)
	closeAfterStart = append(closeAfterStart, child)

	spec := childproc.Spec{
		Argv:       opts.Target.Argv,
		Env:        env,
		ExtraFiles: extra,
		Stdout:     s.stderr, // a worker's chatter is diagnostics either way
		Stderr:     s.stderr,
		// Its own process group, so that Stop reaches the worker's
		// children too.
		OwnGroup: true,
	}

	// Spawning and recording the process happen under c.mu, so Stop
	// either prevents the start or sees the new process.
	c.mu.Lock()
	defer c.mu.Unlock()
	var proc *childproc.Proc
	if c.stopping {
		err = errors.New("cluster is stopping")
	} else {
		proc, err = childproc.Start(spec)
	}
	closeFiles(closeAfterStart)
	if err != nil {
		if connFD >= 0 {
			unix.Close(connFD)
		}
		stats.close()
		return fmt.Errorf("starting worker %d (%s): %w", s.index, opts.Target.Argv[0], err)
	}

	exited := make(chan struct{})
	s.mu.Lock()
	s.proc, s.pid, s.alive, s.started, s.exited, s.exitErr = proc, proc.PID(), true, time.Now(), exited, nil
	s.connFD, s.stats = connFD, stats
	s.mu.Unlock()
	go stats.read()

	c.wg.Add(1)
	go c.supervise(s, proc, exited)
	return nil
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// protocolFreeEnviron is os.Environ without the protocol variables, so a
// leaklab that itself runs as a worker does not pass its own on.
func protocolFreeEnviron() []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case EnvListenFD, EnvConnFD, EnvListenAddr, EnvReusePort, EnvStatsFD, EnvWorkerIndex, "GOMAXPROCS":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// supervise reaps the worker and, once the cluster is up, restarts it
// when it dies, as Node's cluster master does.
func (c *Cluster) supervise(s *workerSlot, proc *childproc.Proc, exited chan struct{}) {
	defer c.wg.Done()
	<-proc.Exited()
	err := proc.Err()
	s.mu.Lock()
	s.alive = false
	s.exitErr = err
	lived := time.Since(s.started)
	s.mu.Unlock()
	s.killGroup() // the worker's own children, if it left any
	s.closeSockets()
	close(exited)

	c.mu.Lock()
	stopping := c.stopping
	c.mu.Unlock()
	if stopping || !c.launched.Load() {
		return // start-up failures are reported by waitReady
	}
	s.mu.Lock()
	if lived < crashLoopWindow {
		s.fast++
	} else {
		s.fast = 0
	}
	giveUp := s.fast >= crashLoopLimit
	s.mu.Unlock()
	if giveUp {
		c.gaveUp.Add(1)
		return
	}
	select {
	case <-c.stopCh:
		return
	case <-time.After(restartDelay):
	}
	c.restarts.Add(1)
	if err := c.startWorker(s); err != nil {
		s.mu.Lock()
		s.exitErr = err
		s.mu.Unlock()
	}
}

// dispatch is the round-robin master: it accepts every connection and
// passes it to the next live worker. A worker whose socket buffer is full
// is skipped for that connection rather than stalling the others.
func (c *Cluster) dispatch() {
	defer c.wg.Done()
	// On a thread of its own, so that /proc can say what the master's work
	// costs apart from the load generator sharing this process (Node's
	// master is a process of its own). The thread ends with the goroutine.
	runtime.LockOSThread()
	c.masterTID.Store(int64(unix.Gettid()))
	for {
		conn, err := c.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			select {
			case <-c.stopCh:
				return
			case <-time.After(10 * time.Millisecond): // e.g. EMFILE: back off, then retry
			}
			continue
		}
		c.handOff(conn)
		conn.Close() // the worker has its own descriptor now
	}
}

func (c *Cluster) handOff(conn *net.TCPConn) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return
	}
	n := len(c.slots)
	for range n {
		s := c.slots[c.rrNext%n]
		c.rrNext++
		sent := false
		s.mu.Lock()
		if s.alive && s.connFD >= 0 {
			_ = raw.Control(func(fd uintptr) {
				sent = unix.Sendmsg(s.connFD, []byte{0}, unix.UnixRights(int(fd)), nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL) == nil
			})
			if sent {
				s.handed++
			}
		}
		s.mu.Unlock()
		if sent {
			return
		}
	}
	// No live worker: the connection is closed, as Node's master does.
}

// waitReady returns once every worker has reported in (when the target
// reports counts), every reuseport worker listens, and the port answers
// HTTP; or an error when a worker exits or StartTimeout passes.
func (c *Cluster) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(c.opts.StartTimeout)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	defer client.CloseIdleConnections()
	url := c.URL() + c.opts.Target.ReadyPath
	var lastErr error
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := c.exitedEarly(); err != nil {
			return err
		}
		if c.workersReported() && c.reusePortListeners() {
			lastErr = probe(ctx, client, url)
			if lastErr == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return c.notReadyError(url, lastErr)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func probe(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return nil
}

func (c *Cluster) exitedEarly() error {
	for _, s := range c.slots {
		s.mu.Lock()
		alive, err := s.alive, s.exitErr
		s.mu.Unlock()
		if !alive {
			msg := "exited"
			if err != nil {
				msg = err.Error()
			}
			if tail := s.stderr.lastLine(); tail != "" {
				msg += ": " + tail
			}
			return fmt.Errorf("%s worker %d stopped before it was ready (%s)", c.opts.Target.Name, s.index, msg)
		}
	}
	return nil
}

func (c *Cluster) workersReported() bool {
	if !c.opts.Target.ReportsCounts {
		return true
	}
	for _, s := range c.slots {
		s.mu.Lock()
		st := s.stats
		s.mu.Unlock()
		if st == nil || !st.ready() {
			return false
		}
	}
	return true
}

func (c *Cluster) reusePortListeners() bool {
	if c.opts.Strategy != ReusePort {
		return true
	}
	return countListeners(c.addr) >= len(c.slots)
}

func (c *Cluster) notReadyError(url string, last error) error {
	what := fmt.Sprintf("%s did not answer %s within %s", c.opts.Target.Name, url, c.opts.StartTimeout)
	if !c.workersReported() {
		what = fmt.Sprintf("%s workers did not all report ready within %s", c.opts.Target.Name, c.opts.StartTimeout)
	} else if !c.reusePortListeners() {
		what = fmt.Sprintf("%s workers did not all listen on %s within %s", c.opts.Target.Name, c.addr, c.opts.StartTimeout)
	} else if last != nil {
		what += " (" + last.Error() + ")"
	}
	return &NotReadyError{What: what}
}

// NotReadyError says the target never served the listener it was given.
type NotReadyError struct{ What string }

func (e *NotReadyError) Error() string {
	return e.What + ": the command must serve the listener given in " + EnvListenFD + ", " + EnvConnFD + " or " + EnvListenAddr + " (see 'leaklab scale --help')"
}

// statsConn is the master's end of a worker's stats socket.
type statsConn struct {
	conn    *net.UnixConn
	updates chan WorkerCounts
	first   chan struct{}
	once    sync.Once
}

func newStatsPair() (*statsConn, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, os.NewSyscallError("socketpair", err)
	}
	mine := os.NewFile(uintptr(fds[0]), "leaklab-stats")
	defer mine.Close()
	c, err := net.FileConn(mine)
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, err
	}
	return &statsConn{conn: c.(*net.UnixConn), updates: make(chan WorkerCounts, 4), first: make(chan struct{})},
		os.NewFile(uintptr(fds[1]), "leaklab-stats-child"), nil
}

// read turns the worker's lines into updates until the socket closes.
func (s *statsConn) read() {
	sc := bufio.NewScanner(s.conn)
	for sc.Scan() {
		var wc WorkerCounts
		if json.Unmarshal(sc.Bytes(), &wc) != nil {
			continue
		}
		s.once.Do(func() { close(s.first) })
		select {
		case s.updates <- wc:
		default: // nobody asked; drop it
		}
	}
}

func (s *statsConn) ready() bool {
	select {
	case <-s.first:
		return true
	default:
		return false
	}
}

// query asks the worker for its counts; ok is false when it does not
// answer within timeout.
func (s *statsConn) query(timeout time.Duration) (WorkerCounts, bool) {
	if !s.ready() {
		return WorkerCounts{}, false
	}
	for drained := false; !drained; {
		select {
		case <-s.updates:
		default:
			drained = true
		}
	}
	if _, err := s.conn.Write([]byte{'\n'}); err != nil {
		return WorkerCounts{}, false
	}
	select {
	case wc := <-s.updates:
		return wc, true
	case <-time.After(timeout):
		return WorkerCounts{}, false
	}
}

func (s *statsConn) close() { s.conn.Close() }

// tailBuffer passes a worker's output on and keeps its last bytes, for
// error messages.
type tailBuffer struct {
	mu   sync.Mutex
	out  io.Writer
	tail []byte
}

const tailBytes = 2048

func newTailBuffer(out io.Writer) *tailBuffer { return &tailBuffer{out: out} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tail = append(t.tail, p...)
	if len(t.tail) > tailBytes {
		t.tail = append([]byte(nil), t.tail[len(t.tail)-tailBytes:]...)
	}
	_, _ = t.out.Write(p)
	return len(p), nil
}

func (t *tailBuffer) lastLine() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(string(t.tail)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// WorkerSnapshot is one worker at one moment.
type WorkerSnapshot struct {
	Index int
	PID   int
	Alive bool
	// CPU and PeakRSS cover every process in the worker's process group.
	CPU     time.Duration
	PeakRSS int64
	// Counts is what the worker reported; CountsKnown is false when it
	// does not speak the stats protocol or did not answer.
	Counts      WorkerCounts
	CountsKnown bool
	// Handed counts the connections the round-robin master passed to
	// this slot since Launch.
	Handed int64
}

// statsTimeout bounds how long a worker may take to report its counts.
const statsTimeout = 2 * time.Second

// Snapshot reads every worker's usage from /proc and asks it for its counts.
func (c *Cluster) Snapshot() []WorkerSnapshot {
	out := make([]WorkerSnapshot, len(c.slots))
	var wg sync.WaitGroup
	for i, s := range c.slots {
		wg.Go(func() {
			s.mu.Lock()
			snap := WorkerSnapshot{Index: s.index, PID: s.pid, Alive: s.alive, Handed: s.handed}
			stats := s.stats
			s.mu.Unlock()
			if snap.Alive {
				u := groupUsage(snap.PID)
				snap.CPU, snap.PeakRSS = u.CPU, u.PeakRSS
				if stats != nil {
					snap.Counts, snap.CountsKnown = stats.query(statsTimeout)
				}
			}
			out[i] = snap
		})
	}
	wg.Wait()
	return out
}
