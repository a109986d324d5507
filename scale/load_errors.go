package scale

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// ErrorClass is what kind of failure a request met.
type ErrorClass int

// The error classes, in report order.
const (
	ErrRefused ErrorClass = iota // nothing listens: connection refused
	ErrReset                     // connection reset, or closed before a whole response
	ErrTimeout                   // no whole response within the timeout
	ErrNon2xx                    // a response, but not 2xx
	ErrOther                     // anything else: malformed response, TLS, DNS...
	numErrorClasses
)

var errorClassNames = [numErrorClasses]string{"refused", "reset", "timeout", "non_2xx", "other"}

// ErrorClasses lists every class in report order.
func ErrorClasses() []ErrorClass {
	return []ErrorClass{ErrRefused, ErrReset, ErrTimeout, ErrNon2xx, ErrOther}
}

func (c ErrorClass) String() string {
	if c < 0 || c >= numErrorClasses {
		return "unknown"
	}
	return errorClassNames[c]
}

// MarshalText makes classes readable as JSON map keys.
func (c ErrorClass) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// classify sorts a transport error into its class.
func classify(err error) ErrorClass {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return ErrRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return ErrReset
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return ErrTimeout
	}
	return ErrOther
}

// isStaleConn reports whether a failure on a reused connection looks like
// the server having closed it while idle.
func isStaleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
