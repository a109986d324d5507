// Package opterr is the one error type for an option a package refuses
// (a negative interval, a URL of the wrong scheme, an unknown profile
// type): the caller asked for something that cannot be done, rather than
// something going wrong while doing it. Packages validate their own
// options and return it; cmd/leaklab maps it to a usage error (exit 2) in
// one place, so a command does not check its flags a second time.
package opterr

import (
	"errors"
	"fmt"
)

// Error is an option that cannot make a run. Its message names the option
// as the package's documentation does (e.g. "max-leak", "pyroscope URL"),
// not as a command-line flag.
type Error struct {
	Option string // the option refused, e.g. "pyroscope"
	Err    error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error for option with a formatted message, which
// should name the option.
func Errorf(option, format string, args ...any) error {
	return &Error{Option: option, Err: fmt.Errorf(format, args...)}
}

// Is reports whether err is, or wraps, an option error.
func Is(err error) bool {
	var e *Error
	return errors.As(err, &e)
}
