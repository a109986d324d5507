package main

import (
	"io"
	"os"
)

// ioStreams is where a command reads and writes. Tests pass buffers.
type ioStreams struct {
	In     io.Reader
	Out    io.Writer // reports and JSON
	ErrOut io.Writer // diagnostics and progress
	// ErrIsTerminal says whether progress can be drawn on ErrOut.
	ErrIsTerminal bool
}

func systemStreams() *ioStreams {
	return &ioStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr, ErrIsTerminal: isTerminal(os.Stderr)}
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
