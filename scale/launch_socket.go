package scale

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"github.com/leaklab/leaklab/internal/opterr"
	"golang.org/x/sys/unix"
)

// listenTCP listens on addr, with SO_REUSEPORT when reusePort is set so
// that several processes can each have their own listening socket on the
// same port and the kernel spreads new connections over them.
func listenTCP(addr string, reusePort bool) (net.Listener, error) {
	lc := net.ListenConfig{}
	if reusePort {
		lc.Control = func(network, address string, c syscall.RawConn) error {
			return setReusePort(c)
		}
	}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, &PortError{Addr: addr, Err: err}
	}
	return ln, nil
}

func setReusePort(c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	return serr
}

// PortError says the cluster could not have its port.
type PortError struct {
	Addr string
	Err  error
}

func (e *PortError) Error() string {
	if errors.Is(e.Err, syscall.EADDRINUSE) {
		return fmt.Sprintf("cannot listen on %s: the port is taken (choose another with --addr, or port 0 for a free one)", e.Addr)
	}
	return fmt.Sprintf("cannot listen on %s: %v", e.Addr, e.Err)
}

func (e *PortError) Unwrap() error { return e.Err }

// portReservation holds a port for the reuseport strategy: a socket bound
// with SO_REUSEPORT but never listening. Binding it fails if another
// program has the port, and while the master holds it no one else can
// take the port between worker restarts. A socket that does not listen
// receives no connections, so it does not join the workers' share.
type portReservation struct {
	fd   int
	addr netip.AddrPort
}

func reservePort(addr string) (*portReservation, error) {
	ap, err := resolveLoopback(addr)
	if err != nil {
		return nil, err
	}
	family := unix.AF_INET
	var sa unix.Sockaddr = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	if ap.Addr().Is6() {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("setsockopt", err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, &PortError{Addr: addr, Err: os.NewSyscallError("bind", err)}
	}
	bound, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("getsockname", err)
	}
	port := 0
	switch b := bound.(type) {
	case *unix.SockaddrInet4:
		port = b.Port
	case *unix.SockaddrInet6:
		port = b.Port
	}
	return &portReservation{fd: fd, addr: netip.AddrPortFrom(ap.Addr(), uint16(port))}, nil
}

func (r *portReservation) Close() { unix.Close(r.fd) }

// resolveLoopback parses host:port and insists on a loopback address:
// the cluster's services serve /debug/pprof.
func resolveLoopback(addr string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.AddrPort{}, addrError(addr, "want host:port, e.g. 127.0.0.1:0")
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return netip.AddrPort{}, addrError(addr, "the cluster listens on loopback only (127.0.0.1 or ::1)")
	}
	ap, err := netip.ParseAddrPort(net.JoinHostPort(ip.String(), port))
	if err != nil {
		return netip.AddrPort{}, addrError(addr, "bad port")
	}
	return ap, nil
}

// addrError is an address the cluster will not listen on.
func addrError(addr, reason string) error {
	return opterr.Errorf("Addr", "invalid address %q: %s", addr, reason)
}
