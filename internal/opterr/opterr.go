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
	"strings"
)

// Error is an option that cannot make a run. Its message names the
// options as the package does, by their Go field names ("Every must be
// more than zero"), never as command-line flags: a library caller sets
// fields, not flags. A command renames them to its flags with Reword.
type Error struct {
	Option string   // the option refused, as its package names it, e.g. "Every"
	Others []string // further options the message names, e.g. "For" in "Every is longer than For"
	Err    error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Names is every option the message names: Option, then Others.
func (e *Error) Names() []string { return append([]string{e.Option}, e.Others...) }

// Errorf returns an *Error for option with a formatted message, which
// should name the option.
func Errorf(option, format string, args ...any) error {
	return &Error{Option: option, Err: fmt.Errorf(format, args...)}
}

// Combination returns an *Error for options that cannot go together (or
// need each other); the message names each of them. The first is the
// option refused.
func Combination(options []string, format string, args ...any) error {
	return &Error{Option: options[0], Others: options[1:], Err: fmt.Errorf(format, args...)}
}

// Is reports whether err is, or wraps, an option error.
func Is(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// Reword returns msg (the text of err, or of an error wrapping it) with
// each option name the option error in err names replaced, where it
// stands as a whole word, by rename(name): how a command says the message
// in its own flags. Only names written as exported Go fields (an upper-case
// first letter) are renamed, so a message naming an option in plain words
// ("unknown profile type") stays as it is. msg is returned as is when err
// holds no option error.
func Reword(err error, msg string, rename func(option string) string) string {
	var e *Error
	if !errors.As(err, &e) {
		return msg
	}
	for _, name := range e.Names() {
		if name != "" && 'A' <= name[0] && name[0] <= 'Z' {
			msg = replaceWord(msg, name, rename(name))
		}
	}
	return msg
}

// replaceWord replaces name in s where it stands alone: not part of a
// longer word, nor of a flag-like word joined by '-', nor inside double
// quotes, where messages quote the values they were given (%q).
func replaceWord(s, name, with string) string {
	parts := strings.Split(s, `"`)
	for i := 0; i < len(parts); i += 2 {
		parts[i] = replaceUnquoted(parts[i], name, with)
	}
	return strings.Join(parts, `"`)
}

func replaceUnquoted(s, name, with string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, name)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(name)
		if (i == 0 || !wordByte(s[i-1])) && (end == len(s) || !wordByte(s[end])) {
			b.WriteString(s[:i])
			b.WriteString(with)
		} else {
			b.WriteString(s[:end])
		}
		s = s[end:]
	}
}

func wordByte(c byte) bool {
	return c == '_' || c == '-' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
