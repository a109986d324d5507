package main

import (
	"encoding/json"
	"fmt"
	"io"
)

// outputFormat is the value of the shared --output flag.
type outputFormat string

const (
	outputText outputFormat = "text"
	outputJSON outputFormat = "json"
)

func (o *outputFormat) String() string { return string(*o) }
func (o *outputFormat) Type() string   { return "text|json" }
func (o *outputFormat) Set(s string) error {
	switch outputFormat(s) {
	case outputText, outputJSON:
		*o = outputFormat(s)
		return nil
	}
	return fmt.Errorf("must be text or json, not %q", s)
}

// render writes a report: v as indented JSON with --output json, else
// whatever text writes. Every reporting command goes through here.
func (f *factory) render(v any, text func(w io.Writer) error) error {
	if f.output == outputJSON {
		enc := json.NewEncoder(f.streams.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return text(f.streams.Out)
}

// renderJSONLine writes v as one line of JSON, for streams a script reads
// line by line.
func renderJSONLine(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}
