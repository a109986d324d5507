package scale

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/leaklab/leaklab/internal/childproc"
)

// Strategy is how the processes of a cluster share one port.
type Strategy string

// The strategies 'leaklab scale' compares.
const (
	// Single is one process with GOMAXPROCS=workers: the Go way.
	Single Strategy = "single"
	// ReusePort is one process per worker, each with its own listening
	// socket on the same port (SO_REUSEPORT); the kernel hashes each new
	// connection to one of them.
	ReusePort Strategy = "reuseport"
	// RoundRobin is Node's default cluster scheduling: the master accepts
	// every connection and passes it to the next worker over a unix
	// socket (SCM_RIGHTS).
	RoundRobin Strategy = "roundrobin"
	// SharedFD is Node's SCHED_NONE: every worker inherits the master's
	// listening socket and they race to accept from it.
	SharedFD Strategy = "shared-fd"
)

// AllStrategies lists every strategy in report order.
var AllStrategies = []Strategy{Single, ReusePort, RoundRobin, SharedFD}

// ParseStrategies reads a comma-separated list such as
// "single,reuseport". Duplicates are an error.
func ParseStrategies(list string) ([]Strategy, error) {
	var out []Strategy
	seen := map[Strategy]bool{}
	for _, f := range strings.Split(list, ",") {
		s := Strategy(strings.TrimSpace(f))
		if s == "" {
			continue
		}
		known := false
		for _, k := range AllStrategies {
			known = known || k == s
		}
		if !known {
			return nil, fmt.Errorf("unknown strategy %q (want some of %s)", s, strategyNames())
		}
		if seen[s] {
			return nil, fmt.Errorf("strategy %q given twice", s)
		}
		seen[s] = true
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no strategy given (want some of %s)", strategyNames())
	}
	return out, nil
}

func strategyNames() string {
	names := make([]string, len(AllStrategies))
	for i, s := range AllStrategies {
		names[i] = string(s)
	}
	return strings.Join(names, ",")
}

// Defaults for LaunchOptions fields left zero.
const (
	DefaultStartTimeout   = 10 * time.Second
	DefaultReadyPath      = "/"
	DefaultProcsPerWorker = 1
	// stopGrace is how long workers get to exit on SIGTERM before their
	// process groups are killed.
	stopGrace = 3 * time.Second
	// restartDelay spaces restarts so a worker that crashes at once
	// cannot spin the CPU; crashLoopLimit restarts of one worker, each
	// within crashLoopWindow of its start, and the master gives it up.
	restartDelay    = 100 * time.Millisecond
	crashLoopLimit  = 5
	crashLoopWindow = time.Second
)

// Target is what each worker process runs.
type Target struct {
	// Name identifies the target in reports: a service name or a command.
	Name string
	// Argv is the worker's command line; Argv[0] is a path.
	Argv []string
	// Env is added to the worker's environment (after os.Environ and
	// before the protocol variables).
	Env []string
	// ReadyPath is requested until it answers to decide the cluster is up;
	// DefaultReadyPath when empty.
	ReadyPath string
	// ReportsCounts says the worker speaks the stats protocol (EnvStatsFD);
	// Launch then also waits for every worker's first report.
	ReportsCounts bool
}

// LaunchOptions describe one cluster.
type LaunchOptions struct {
	Target   Target
	Strategy Strategy
	// Workers is the number of processes, except for Single, where it is
	// the GOMAXPROCS of the one process.
	Workers int
	// ProcsPerWorker is each process's GOMAXPROCS in the multi-process
	// strategies; DefaultProcsPerWorker when zero.
	ProcsPerWorker int
	// Addr is the loopback host:port to serve; port 0 picks a free one.
	Addr         string
	StartTimeout time.Duration
	// Stderr receives the workers' standard error; discarded when nil.
	Stderr io.Writer
}

// Cluster is a running set of worker processes behind one port.
type Cluster struct {
	opts     LaunchOptions
	addr     netip.AddrPort
	ln       *net.TCPListener // the master's listener (not reuseport)
	lnFile   *os.File         // its fd, inherited by single and shared-fd workers
	reserved *portReservation // reuseport: holds the port
	slots    []*workerSlot

	restarts atomic.Int64
	gaveUp   atomic.Int64 // workers no longer restarted: they crash-looped
	launched atomic.Bool  // restarts only happen after start-up succeeded

	mu       sync.Mutex // guards stopping against new spawns
	stopping bool
	stopCh   chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup // supervisors and the dispatcher
	rrNext   int            // dispatcher only
	// masterTID is the OS thread the round-robin dispatcher is locked to,
	// so that its CPU can be told from the load generator's in this
	// process; 0 for the other strategies.
	masterTID atomic.Int64
}

// Launch starts the cluster and returns once it answers on its port. On
// any error it has already stopped every process it started.
func Launch(ctx context.Context, opts LaunchOptions) (*Cluster, error) {
	if len(opts.Target.Argv) == 0 {
		return nil, errors.New("scale: Launch needs Target.Argv")
	}
	if opts.Workers < 1 {
		return nil, fmt.Errorf("workers must be at least 1, not %d", opts.Workers)
	}
	if opts.ProcsPerWorker == 0 {
		opts.ProcsPerWorker = DefaultProcsPerWorker
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	if opts.Target.ReadyPath == "" {
		opts.Target.ReadyPath = DefaultReadyPath
	}
	if opts.Stderr == nil {
		opts.Stderr = io.Discard
	}
	opts.Stderr = &lockedWriter{w: opts.Stderr} // every worker writes to it
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	ap, err := resolveLoopback(opts.Addr)
	if err != nil {
		return nil, err
	}
	processes := opts.Workers
	if opts.Strategy == Single {
		processes = 1
	}
	c := &Cluster{opts: opts, stopCh: make(chan struct{})}
	switch opts.Strategy {
	case ReusePort:
		c.reserved, err = reservePort(ap.String())
		if err != nil {
			return nil, err
		}
		c.addr = c.reserved.addr
	case Single, SharedFD, RoundRobin:
		ln, err := listenTCP(ap.String(), false)
		if err != nil {
			return nil, err
		}
		c.ln = ln.(*net.TCPListener)
		c.addr = c.ln.Addr().(*net.TCPAddr).AddrPort()
		if opts.Strategy != RoundRobin {
			// The workers inherit a dup of the socket; the master keeps
			// only that dup (to start replacements), not a listener of
			// its own that would wake it for every connection.
			c.lnFile, err = c.ln.File()
			c.ln.Close()
			c.ln = nil
			if err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("unknown strategy %q", opts.Strategy)
	}

	for i := range processes {
		c.slots = append(c.slots, &workerSlot{index: i, stderr: newTailBuffer(opts.Stderr)})
	}
	for _, s := range c.slots {
		if err := c.startWorker(s); err != nil {
			c.Stop()
			return nil, err
		}
	}
	if opts.Strategy == RoundRobin {
		c.wg.Add(1)
		go c.dispatch()
	}
	if err := c.waitReady(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	c.launched.Store(true)
	return c, nil
}

// URL is the cluster's base URL.
func (c *Cluster) URL() string { return "http://" + c.addr.String() }

// Addr is the host:port the cluster serves.
func (c *Cluster) Addr() string { return c.addr.String() }

// Strategy is how the cluster shares its port.
func (c *Cluster) Strategy() Strategy { return c.opts.Strategy }

// MasterCPU is the CPU time the round-robin master (accepting and handing
// connections to workers) has used since Launch: its thread's user and
// system time from /proc. It is 0 for strategies without a master.
func (c *Cluster) MasterCPU() time.Duration {
	tid := c.masterTID.Load()
	if tid == 0 {
		return 0
	}
	st, err := readStatFile(fmt.Sprintf("/proc/self/task/%d/stat", tid))
	if err != nil {
		return 0 // the thread is gone: the dispatcher has stopped
	}
	return st.cpu
}

// Restarts counts workers restarted after a crash since Launch.
func (c *Cluster) Restarts() int { return int(c.restarts.Load()) }

// GaveUp counts the workers the master stopped restarting: each crashed
// crashLoopLimit times in a row, within crashLoopWindow of its start.
func (c *Cluster) GaveUp() int { return int(c.gaveUp.Load()) }

// PIDs returns the current process ID of each worker (0 for a worker
// that is down).
func (c *Cluster) PIDs() []int {
	out := make([]int, len(c.slots))
	for i, s := range c.slots {
		s.mu.Lock()
		if s.alive {
			out[i] = s.pid
		}
		s.mu.Unlock()
	}
	return out
}

// Stop ends every worker (SIGTERM, then SIGKILL to its process group
// after a grace period), waits for them and releases the port. It is
// safe to call more than once.
func (c *Cluster) Stop() {
	c.stopOnce.Do(func() {
		c.mu.Lock()
		c.stopping = true
		close(c.stopCh)
		c.mu.Unlock()
		if c.ln != nil {
			c.ln.Close() // ends the dispatcher
		}
		// No worker starts once stopping is set, so these are the last.
		procs := make([]*childproc.Proc, len(c.slots))
		for i, s := range c.slots {
			procs[i] = s.current()
		}
		childproc.StopAll(procs, stopGrace)
		for _, s := range c.slots {
			s.killGroup() // the worker's own children, if it left any
			<-s.exitedChan()
		}
		c.wg.Wait()
		for _, s := range c.slots {
			s.closeSockets()
		}
		if c.lnFile != nil {
			c.lnFile.Close()
		}
		if c.reserved != nil {
			c.reserved.Close()
		}
	})
}

// lockedWriter serialises writes from several workers' output copiers.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
