package scale

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// The worker protocol: how a process started by Launch finds its listener.
// Exactly one of EnvListenFD, EnvConnFD and EnvListenAddr is set; a
// command given to 'leaklab scale --cmd' must honour all three to run
// under every strategy. EnvStatsFD is optional.
const (
	// EnvListenFD names an inherited, already listening TCP socket (always
	// fd 3): accept on it. Strategies single and shared-fd; under
	// shared-fd every worker holds the same socket and they race to accept.
	EnvListenFD = "LEAKLAB_LISTEN_FD"
	// EnvConnFD names an inherited unix stream socket (always fd 3) on
	// which the master sends accepted TCP connections, one file descriptor
	// per message (SCM_RIGHTS, with a one-byte payload). Strategy
	// roundrobin.
	EnvConnFD = "LEAKLAB_CONN_FD"
	// EnvListenAddr is the host:port to bind and listen on yourself, with
	// SO_REUSEPORT set when EnvReusePort is "1". Strategy reuseport. It is
	// also set, for information, under the other strategies.
	EnvListenAddr = "LEAKLAB_LISTEN_ADDR"
	EnvReusePort  = "LEAKLAB_REUSEPORT"
	// EnvStatsFD, when set, names a unix stream socket (always fd 4) over
	// which a worker may report what it served: a JSON WorkerCounts line
	// as soon as it is ready, then one more for every newline the master
	// writes. A worker that never writes is still measured, only its share
	// of connections and requests is unknown.
	EnvStatsFD = "LEAKLAB_STATS_FD"
	// EnvWorkerIndex is the worker's slot, 0 to workers-1, for logs.
	EnvWorkerIndex = "LEAKLAB_WORKER"
)

// The file descriptors the protocol uses (ExtraFiles start at 3).
const (
	listenerFD = 3
	statsFD    = 4
)

// WorkerCounts is what a worker reports over the stats socket.
type WorkerCounts struct {
	PID         int   `json:"pid"`
	Connections int64 `json:"connections"`
	Requests    int64 `json:"requests"`
}

// Worker is the worker's side of the protocol: the listener the master
// arranged, counting what it accepts, and the stats socket.
type Worker struct {
	ln          net.Listener
	connections atomic.Int64
	requests    atomic.Int64
	stats       *os.File
	closeOnce   sync.Once
}

// ErrNotAWorker is returned by NewWorker in a process that was not
// started by Launch (none of the listener variables is set).
var ErrNotAWorker = errors.New("not started by 'leaklab scale': none of " + EnvListenFD + ", " + EnvConnFD + ", " + EnvListenAddr + " is set")

// NewWorker takes the listener described by the environment.
func NewWorker() (*Worker, error) {
	ln, err := workerListener()
	if err != nil {
		return nil, err
	}
	w := &Worker{}
	w.ln = &countingListener{Listener: ln, accepted: &w.connections}
	if os.Getenv(EnvStatsFD) != "" {
		w.stats = os.NewFile(statsFD, "leaklab-stats")
	}
	return w, nil
}

func workerListener() (net.Listener, error) {
	switch {
	case os.Getenv(EnvListenFD) != "":
		f := os.NewFile(uintptr(fdFromEnv(EnvListenFD, listenerFD)), "leaklab-listener")
		defer f.Close() // FileListener dups it
		ln, err := net.FileListener(f)
		if err != nil {
			return nil, fmt.Errorf("%s: not a listening socket: %w", EnvListenFD, err)
		}
		return ln, nil
	case os.Getenv(EnvConnFD) != "":
		f := os.NewFile(uintptr(fdFromEnv(EnvConnFD, listenerFD)), "leaklab-conns")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			return nil, fmt.Errorf("%s: not a unix socket: %w", EnvConnFD, err)
		}
		uc, ok := c.(*net.UnixConn)
		if !ok {
			c.Close()
			return nil, fmt.Errorf("%s: not a unix socket", EnvConnFD)
		}
		addr, err := net.ResolveTCPAddr("tcp", os.Getenv(EnvListenAddr))
		if err != nil {
			uc.Close()
			return nil, fmt.Errorf("%s: %w", EnvListenAddr, err)
		}
		return &passedConnListener{conn: uc, addr: addr}, nil
	case os.Getenv(EnvListenAddr) != "":
		return listenTCP(os.Getenv(EnvListenAddr), os.Getenv(EnvReusePort) == "1")
	}
	return nil, ErrNotAWorker
}

func fdFromEnv(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 2 {
		return n
	}
	return def
}

// Listener is what the worker should serve.
func (w *Worker) Listener() net.Listener { return w.ln }

// Middleware counts the requests the worker serves.
func (w *Worker) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.requests.Add(1)
		next.ServeHTTP(rw, r)
	})
}

// Counts is what the worker has served so far.
func (w *Worker) Counts() WorkerCounts {
	return WorkerCounts{PID: os.Getpid(), Connections: w.connections.Load(), Requests: w.requests.Load()}
}

// ServeStats tells the master the worker is ready and answers its
// queries until the master closes the socket. Call it once the listener
// is being served; it returns at once without a stats socket.
func (w *Worker) ServeStats() {
	if w.stats == nil {
		return
	}
	enc := json.NewEncoder(w.stats)
	if enc.Encode(w.Counts()) != nil {
		return
	}
	r := bufio.NewReader(w.stats)
	for {
		if _, err := r.ReadString('\n'); err != nil {
			return
		}
		if enc.Encode(w.Counts()) != nil {
			return
		}
	}
}

// Close releases the stats socket (the listener belongs to the server).
func (w *Worker) Close() {
	w.closeOnce.Do(func() {
		if w.stats != nil {
			w.stats.Close()
		}
	})
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	accepted *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// passedConnListener accepts the TCP connections the master passes over a
// unix socket, as round-robin scheduling needs.
type passedConnListener struct {
	conn *net.UnixConn
	addr net.Addr
	mu   sync.Mutex // one receiver at a time: a message carries one fd
}

func (l *passedConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		_, oobn, _, _, err := l.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) {
				return nil, net.ErrClosed
			}
			return nil, err
		}
		if oobn == 0 {
			return nil, net.ErrClosed // the master closed its end: no more connections
		}
		fd, err := parseOneFD(oob[:oobn])
		if err != nil {
			return nil, err
		}
		f := os.NewFile(uintptr(fd), "passed-conn")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			continue // not a socket after all; the master's mistake, not fatal
		}
		return c, nil
	}
}

func parseOneFD(oob []byte) (int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return -1, fmt.Errorf("receiving a connection: %w", err)
	}
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil || len(fds) == 0 {
			continue
		}
		for _, extra := range fds[1:] {
			unix.Close(extra)
		}
		return fds[0], nil
	}
	return -1, errors.New("receiving a connection: message carried no file descriptor")
}

func (l *passedConnListener) Close() error   { return l.conn.Close() }
func (l *passedConnListener) Addr() net.Addr { return l.addr }
