package scale

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The event-loop engine drives the closed model over plain HTTP the way
// wrk does: a few loops (one per CPU the process may use), each owning a
// share of the connections as non-blocking sockets in an epoll set of its
// own. A goroutine per connection costs the Go scheduler a park, a
// netpoll wake-up and a switch for every response, plus a read that finds
// nothing before the response is in; a loop costs one write and one read
// per request and an epoll_wait for many (docs/load.md has the
// measurement). HTTPS and the open model keep the goroutine engine.

// The loops call read, write and epoll_wait (with a zero timeout) as raw
// system calls: none of them blocks, so the runtime need not hand the
// loop's P to another thread meanwhile, and sysmon, which otherwise
// wakes every 20us to retake Ps from threads in system calls, stays
// asleep (a profile showed sysmon at 10% of the generator's CPU). A loop
// that finds no event waits in the Go netpoller on its epoll set's
// descriptor instead of in epoll_wait.

// Under the race detector, read and write go through package syscall,
// which tells the detector that what one process writes to a socket
// happens before what another reads from it (tests rely on that, as they
// do with net.Conn).
func rawRead(fd int, b []byte) (int, error) {
	if raceEnabled {
		return syscall.Read(fd, b)
	}
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func rawWrite(fd int, b []byte) (int, error) {
	if raceEnabled {
		return syscall.Write(fd, b)
	}
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// epollNow returns the events ready now, without waiting.
func epollNow(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// loopPoll bounds how long a loop waits in epoll_wait, and so how late it
// notices an interrupt or a request's timeout.
const loopPoll = 5 * time.Millisecond

// errLoopTimeout is a request that got no whole response within the
// timeout.
var errLoopTimeout = fmt.Errorf("no whole response within the timeout: %w", os.ErrDeadlineExceeded)

// loopTarget resolves the plan's target for the event loops. It refuses
// (false) what the loops do not do: TLS, the open model, and a host
// name with several addresses, where the goroutine engine's dialer tries
// each in turn.
func loopTarget(ctx context.Context, p *loadPlan) (netip.AddrPort, bool) {
	if p.tls != nil || p.rate > 0 || p.forceGoroutines {
		return netip.AddrPort{}, false
	}
	host, portText, err := net.SplitHostPort(p.dialAddr)
	if err != nil {
		return netip.AddrPort{}, false
	}
	port, err := net.LookupPort("tcp", portText)
	if err != nil {
		return netip.AddrPort{}, false
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil || len(addrs) != 1 {
			return netip.AddrPort{}, false
		}
		addr = addrs[0]
	}
	addr = addr.Unmap()
	if addr.Zone() != "" {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(addr, uint16(port)), true
}

// sockaddr is target for connect; each loop has its own, as
// unix.Connect writes into it.
func sockaddr(target netip.AddrPort) (unix.Sockaddr, int) {
	if target.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(target.Port()), Addr: target.Addr().As4()}, unix.AF_INET
	}
	return &unix.SockaddrInet6{Port: int(target.Port()), Addr: target.Addr().As16()}, unix.AF_INET6
}

// prepareEventLoops sets up the loops for run, with run.workers holding
// one per loop for that loop's counts, and returns the function that
// starts them; nil when the plan needs the goroutine engine.
func prepareEventLoops(ctx context.Context, run *loadRun) func(context.Context, *sync.WaitGroup) {
	p := run.plan
	target, ok := loopTarget(ctx, p)
	if !ok {
		return nil
	}
	nloops := min(runtime.GOMAXPROCS(0), p.connections)
	loops := make([]*eventLoop, nloops)
	for i := range loops {
		epoll, epfd, err := newEpoll()
		if err != nil {
			for _, l := range loops[:i] {
				l.epoll.Close()
			}
			return nil
		}
		sa, family := sockaddr(target)
		loops[i] = &eventLoop{run: run, plan: p, w: newLoadWorker(run, p), epoll: epoll, epfd: epfd,
			sa: sa, family: family, events: make([]unix.EpollEvent, 128)}
	}
	run.workers = make([]*loadWorker, nloops)
	for i, l := range loops {
		run.workers[i] = l.w
	}
	for i := range p.connections {
		l := loops[i%nloops]
		l.conns = append(l.conns, &loopConn{index: len(l.conns), fd: -1,
			rb: readBuffer{buf: make([]byte, readBufferSize)}})
	}
	return func(ctx context.Context, wg *sync.WaitGroup) {
		for _, l := range loops {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l.serve(ctx)
			}()
		}
	}
}

// newEpoll returns a non-blocking epoll set as a file the Go netpoller
// watches: it is readable when one of its sockets has an event. The
// descriptor is returned too: File.Fd would make it blocking.
func newEpoll() (*os.File, int, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, -1, os.NewSyscallError("epoll_create1", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, -1, os.NewSyscallError("fcntl", err)
	}
	return os.NewFile(uintptr(epfd), "epoll"), epfd, nil
}

// Connection states in a loop.
const (
	lcIdle       = iota // no request: the run's bounds are reached
	lcQueued            // a request waits to be sent
	lcConnecting        // a non-blocking connect in progress
	lcWriting           // the request is (partly) unwritten
	lcReading           // waiting for the response
)

// loopConn is one connection of an event loop and its request in flight.
type loopConn struct {
	index int // in its loop's conns, and the epoll event's data
	fd    int // -1 when not connected
	state uint8
	used  bool // a response was read on it: a later failure may be a stale keep-alive
	// pendingRead: the socket became readable while no response was
	// awaited; epoll is edge-triggered and will not say so again.
	pendingRead bool
	gotBytes    bool // a byte of this response arrived
	retried     bool // this request was already retried on a new connection
	// hangup: the server has closed its end (or the socket has an
	// error), so a short read no longer means nothing more will come: the
	// end of the stream must still be read, and epoll will not say so again.
	hangup bool

	seq      int64
	sentAt   int64 // nanoseconds since the run's start
	deadline int64
	msg      []byte // the request
	written  int
	wbuf     []byte // msg's storage when the URL has {i}

	rb readBuffer
	p  responseParser
}

// eventLoop drives its connections' requests with one epoll set.
type eventLoop struct {
	run    *loadRun
	plan   *loadPlan
	w      *loadWorker // this loop's counts and latency histogram
	epoll  *os.File
	epfd   int // epoll's descriptor
	sa     unix.Sockaddr
	family int
	conns  []*loopConn
	events []unix.EpollEvent
	busy   int // connections with a request in flight
	// queue holds the connections whose next request is to be sent.
	// Sending from the main loop rather than from the completion of
	// the last request keeps the stack flat when requests fail at once
	// (a refused connect), one after the other.
	queue []*loopConn
}

// now is the time since the run's start: one monotonic clock reading.
func (l *eventLoop) now() int64 { return int64(time.Since(l.run.start)) }

func (l *eventLoop) serve(ctx context.Context) {
	defer func() {
		for _, c := range l.conns {
			l.closeConn(c)
		}
		l.epoll.Close()
	}()
	r := l.run
	var end int64 = -1
	if !r.end.IsZero() {
		end = int64(r.end.Sub(r.start))
	}
	raw, err := l.epoll.SyscallConn()
	if err != nil {
		l.failAll(err)
		return
	}
	l.queue = make([]*loopConn, 0, len(l.conns))
	now := l.now()
	for _, c := range l.conns {
		l.next(c, now, end)
	}
	var n int
	var waitErr error
	wait := func(fd uintptr) bool {
		n, waitErr = epollNow(int(fd), l.events)
		return n > 0 || (waitErr != nil && waitErr != unix.EINTR)
	}
	nextScan := int64(0)
	for l.busy > 0 {
		if r.stopped.Load() || ctx.Err() != nil {
			return // requests in flight are cut short: not measurements
		}
		// send may fail at once and queue the next request: a loop, not
		// a recursion.
		for i := 0; i < len(l.queue); i++ {
			l.send(l.queue[i], now, end)
		}
		l.queue = l.queue[:0]
		if l.busy == 0 {
			return
		}
		if now >= nextScan {
			for _, c := range l.conns {
				if c.state != lcIdle && now >= c.deadline {
					l.finish(c, 0, errLoopTimeout, now, end)
				}
			}
			// The wait for events ends by this deadline at the latest, so
			// that timeouts and interrupts are noticed.
			nextScan = now + int64(loopPoll)
			_ = l.epoll.SetReadDeadline(r.start.Add(time.Duration(nextScan)))
			if l.busy == 0 {
				return
			}
		}
		n = 0
		err := raw.Read(wait)
		now = l.now()
		if err == nil {
			err = waitErr
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			// Not expected with a valid epoll set; fail what is in flight
			// rather than spin.
			l.failAll(os.NewSyscallError("epoll_wait", err))
			return
		}
		for _, ev := range l.events[:n] {
			l.handle(l.conns[ev.Fd], ev.Events, now, end)
		}
	}
}

// failAll fails every request in flight with err and starts no more.
func (l *eventLoop) failAll(err error) {
	now := l.now()
	for _, c := range l.conns {
		if c.state != lcIdle {
			l.closeConn(c)
			c.state = lcIdle
			l.busy--
			l.w.recordLatency(now-c.sentAt, 0, err)
		}
	}
}

// next starts c's next request, or leaves c idle when a bound is reached.
func (l *eventLoop) next(c *loopConn, now, end int64) {
	r, p := l.run, l.plan
	if r.stopped.Load() || (end >= 0 && now >= end) {
		return
	}
	seq := r.tickets.Add(1) - 1
	if p.requests > 0 && seq >= p.requests {
		return
	}
	l.w.sent++
	l.busy++
	c.state = lcQueued
	c.seq, c.sentAt, c.deadline, c.retried = seq, now, now+int64(p.timeout), false
	c.msg = p.request
	if p.requestParts != nil {
		c.wbuf = p.appendRequest(c.wbuf[:0], seq)
		c.msg = c.wbuf
	}
	l.queue = append(l.queue, c)
}

// send writes c's request, connecting first when c has no connection.
func (l *eventLoop) send(c *loopConn, now, end int64) {
	c.written, c.gotBytes = 0, false
	c.p.reset(l.plan.head)
	if c.fd < 0 {
		if err := l.connect(c); err != nil {
			l.finish(c, 0, err, now, end)
			return
		}
		if c.state == lcConnecting {
			return
		}
	}
	l.write(c, now, end)
}

func (l *eventLoop) connect(c *loopConn) error {
	fd, err := unix.Socket(l.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	// As net.Dial does; and without keep-alive, close with a RST instead
	// of leaving TIME_WAIT sockets behind as connections churn.
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if !l.plan.keepAlive {
		_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(c.index)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		unix.Close(fd)
		return os.NewSyscallError("epoll_ctl", err)
	}
	c.fd, c.used, c.hangup, c.pendingRead = fd, false, false, false
	c.rb.start, c.rb.end = 0, 0
	switch err := unix.Connect(fd, l.sa); err {
	case nil:
		l.w.connects++
		c.state = lcWriting
	case unix.EINPROGRESS:
		c.state = lcConnecting
	default:
		l.closeConn(c)
		return l.dialError(err)
	}
	return nil
}

func (l *eventLoop) closeConn(c *loopConn) {
	if c.fd >= 0 {
		unix.Close(c.fd) // also leaves the epoll set
		c.fd = -1
	}
}

// handle reacts to epoll's events for c.
func (l *eventLoop) handle(c *loopConn, events uint32, now, end int64) {
	const readable = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLHUP | unix.EPOLLERR
	const writable = unix.EPOLLOUT | unix.EPOLLHUP | unix.EPOLLERR
	if events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		c.hangup = true
	}
	if events&readable != 0 && c.state != lcReading {
		// Read once the request is written.
		c.pendingRead = true
	}
	switch c.state {
	case lcConnecting:
		if events&writable == 0 {
			return
		}
		soerr, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err == nil && soerr != 0 {
			err = unix.Errno(soerr)
		}
		if err != nil {
			l.fail(c, l.dialError(err), now, end)
			return
		}
		l.w.connects++
		c.state = lcWriting
		l.write(c, now, end)
	case lcWriting:
		if events&writable != 0 {
			l.write(c, now, end)
		}
	case lcReading:
		if events&readable != 0 {
			l.read(c, now, end)
		}
	}
}

func (l *eventLoop) write(c *loopConn, now, end int64) {
	for c.written < len(c.msg) {
		n, err := rawWrite(c.fd, c.msg[c.written:])
		if err == unix.EAGAIN {
			c.state = lcWriting // epoll says when there is room
			return
		}
		if err != nil {
			l.fail(c, os.NewSyscallError("write", err), now, end)
			return
		}
		c.written += n
	}
	c.state = lcReading
	// Not read yet: the response cannot be in before the server has run,
	// and epoll says when it is; unless it said so before (the server may
	// have closed the connection while it was idle), or bytes are left
	// over from the last response.
	if c.pendingRead || c.hangup || c.rb.start < c.rb.end {
		c.pendingRead = false
		l.read(c, now, end)
	}
}

// read reads and parses what has arrived, until the socket is drained
// (epoll is edge-triggered) or the response is complete.
func (l *eventLoop) read(c *loopConn, now, end int64) {
	drained := false
	for {
		if c.rb.start < c.rb.end {
			c.gotBytes = true
			if err := c.rb.parse(&c.p); err != nil {
				l.fail(c, err, now, end)
				return
			}
			if c.p.done() {
				l.complete(c, now, end)
				return
			}
		}
		if drained {
			return // epoll says when more arrives
		}
		free := c.rb.free()
		if len(free) == 0 {
			l.fail(c, errHeadTooLong, now, end)
			return
		}
		n, err := rawRead(c.fd, free)
		switch {
		case err == unix.EAGAIN:
			return
		case err == unix.EINTR:
			continue
		case err != nil:
			l.fail(c, os.NewSyscallError("read", err), now, end)
			return
		case n == 0:
			if err := c.p.eof(c.gotBytes); err != nil {
				l.fail(c, err, now, end)
				return
			}
			l.complete(c, now, end)
			return
		}
		c.rb.end += n
		// A read that did not fill the buffer took everything there was,
		// unless the end of the stream is still to be read.
		drained = n < len(free) && !c.hangup
	}
}

// complete records c's response and starts its next request.
func (l *eventLoop) complete(c *loopConn, now, end int64) {
	c.used = true
	if !c.p.keep || !l.plan.keepAlive {
		l.closeConn(c)
	}
	l.finish(c, c.p.status, nil, now, end)
}

// fail ends c's connection after err; a request that failed on a reused
// connection before any response byte arrived is retried once on a new
// one, as the goroutine engine does (the server closed an idle
// keep-alive connection, which is not the server failing the request).
func (l *eventLoop) fail(c *loopConn, err error, now, end int64) {
	reused := c.used
	l.closeConn(c)
	if !c.retried && reused && !c.gotBytes && isStaleConn(err) && now < c.deadline {
		c.retried = true
		l.send(c, now, end)
		return
	}
	l.finish(c, 0, err, now, end)
}

// finish records c's request and starts the next one.
func (l *eventLoop) finish(c *loopConn, status int, err error, now, end int64) {
	if err != nil {
		l.closeConn(c)
	}
	c.state = lcIdle
	l.busy--
	if l.run.stopped.Load() {
		return // cut short by the interrupt: not a measurement
	}
	l.w.recordLatency(now-c.sentAt, status, err)
	l.next(c, now, end)
}

// dialError says which address a connect failed for, as net.Dial's
// errors do.
func (l *eventLoop) dialError(err error) error {
	return fmt.Errorf("dial tcp %s: %w", l.plan.dialAddr, os.NewSyscallError("connect", err))
}
