package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/leaklab/leaklab/internal/opterr"
)

// Exit codes, decided here and nowhere else (see DESIGN.md).
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
	exitFound   = 3 // a leak or regression was found by a command looking for one
)

// usageError is a bad command line: exit 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// foundError means the command found what it looks for (a leak, a
// regression): exit 3. Its report has already been written.
type foundError struct{ what string }

func (e *foundError) Error() string { return e.what }

// exitCode prints err as one line on stderr and maps it to an exit code.
func exitCode(err error, streams *ioStreams) int {
	if err == nil {
		return exitOK
	}
	var found *foundError
	if errors.As(err, &found) {
		return exitFound
	}
	msg := strings.TrimSpace(err.Error())
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	fmt.Fprintf(streams.ErrOut, "leaklab: %s\n", msg)
	var usage *usageError
	// A package refusing an option (opterr) is a bad command line too:
	// commands leave those checks to the packages.
	if errors.As(err, &usage) || opterr.Is(err) || isCobraUsageError(msg) {
		return exitUsage
	}
	return exitFailure
}

// isCobraUsageError recognises the errors cobra returns for unknown
// commands and arguments, which it does not type.
func isCobraUsageError(msg string) bool {
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "requires at most", "invalid argument", "flag needs an argument"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}
