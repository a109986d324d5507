package main

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

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
	msg := opterr.Reword(err, strings.TrimSpace(err.Error()), flagFor)
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

// flagsByOption names the flags whose names are not their option's name
// in kebab case (see flagFor).
var flagsByOption = map[string]string{
	"Connections":   "-c",
	"Requests":      "-n",
	"Duration":      "-d",
	"Headers":       "-H",
	"GCFlags":       "--gcflags",
	"Kinds":         "--kind",
	"Labels":        "--label",
	"Command":       "--cmd",
	"Window":        "--detect-window",
	"MaxSuspects":   "--max-suspects-per-target",
	"MaxStore":      "--max-store-size",
	"MaxPush":       "--max-push-size",
	"Tenant":        "--forward-tenant",
	"User":          "--forward-user",
	"PasswordFile":  "--forward-password-file",
	"MaxGoroutines": "--max-goroutines-per-request",
	"MaxRetained":   "--max-retained-per-request",
}

// flagFor is the flag a user typed for a package's option: packages word
// their option errors with field names (MaxLeak), the one line on stderr
// names the flag (--max-leak).
func flagFor(option string) string {
	if f, ok := flagsByOption[option]; ok {
		return f
	}
	// Kebab case, an acronym as one word: MaxLeak → max-leak, URL → url.
	r := []rune(option)
	var b strings.Builder
	b.WriteString("--")
	for i, c := range r {
		if i > 0 && unicode.IsUpper(c) && (unicode.IsLower(r[i-1]) || i+1 < len(r) && unicode.IsLower(r[i+1])) {
			b.WriteByte('-')
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
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
