package profiles

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/leaklab/leaklab/internal/opterr"
)

// TypeAll asks CaptureCommandOptions for every type the target offers.
const TypeAll = "all"

// CaptureCommandOptions are a capture as 'leaklab capture' takes it: a
// type that may be TypeAll, labels as KEY=VALUE, a file instead of the
// store.
type CaptureCommandOptions struct {
	Target  string
	Type    string
	Seconds int
	Out     string // save in this file instead of the store (one type only)
	NoGC    bool
	Timeout time.Duration
	Labels  []string
	// OpenStore opens the store; it is not called with Out.
	OpenStore func() (*Store, error)
	// Waiting, when set, is told before a capture that waits (a cpu or
	// delta profile) what is captured from where.
	Waiting func(what, target string)
}

// Captures are the outcome of CaptureCommandOptions.Run: one Saved, or
// with TypeAll one per type and the types that failed. As JSON it is the
// one Saved or the list.
type Captures struct {
	One    *Saved
	All    SavedList
	Failed []string
	target string
}

// MarshalJSON writes the one capture, or the list.
func (c *Captures) MarshalJSON() ([]byte, error) {
	if c.One != nil {
		return json.Marshal(c.One)
	}
	return json.Marshal(c.All)
}

// WriteText writes one line per capture.
func (c *Captures) WriteText(w io.Writer) error {
	if c.One != nil {
		return c.One.WriteText(w)
	}
	return c.All.WriteText(w)
}

// Failure says which types of a TypeAll capture failed; nil when none.
func (c *Captures) Failure() error {
	if len(c.Failed) == 0 {
		return nil
	}
	return fmt.Errorf("%s: could not capture %s (see above)", c.target, strings.Join(c.Failed, ", "))
}

// Run checks c and captures: one profile into Out or the store, or with
// TypeAll every type into the store. Refused options are *opterr.Error,
// reported before anything is fetched or opened.
func (c CaptureCommandOptions) Run(ctx context.Context) (*Captures, error) {
	if c.Seconds < 0 {
		return nil, opterr.Errorf("Seconds", "Seconds must not be negative")
	}
	labels, err := ParseLabels(c.Labels)
	if err != nil {
		return nil, err
	}
	fo := FetchOptions{Type: c.Type, Seconds: c.Seconds, NoGC: c.NoGC, Timeout: c.Timeout, Labels: labels}
	out := &Captures{target: c.Target}
	if c.Type == TypeAll {
		if c.Out != "" {
			return nil, opterr.Combination([]string{"Out", "Type"}, "Out takes one profile; Type all saves each type in the store")
		}
		store, err := c.OpenStore()
		if err != nil {
			return nil, err
		}
		out.All, out.Failed, err = CaptureAll(ctx, c.Target, fo, store)
		return out, err
	}
	if _, _, _, err := ProfileURL(c.Target, fo); err != nil {
		return nil, err // an option error
	}
	var store *Store
	if c.Out == "" {
		if store, err = c.OpenStore(); err != nil {
			return nil, err
		}
	}
	if c.Waiting != nil && (c.Seconds > 0 || c.Type == TypeCPU) {
		what := c.Type
		if what == "" {
			what = "profile"
		}
		c.Waiting(what, c.Target)
	}
	saved, err := Capture(ctx, c.Target, fo, store, c.Out)
	if err != nil {
		return nil, err
	}
	out.One = &saved
	return out, nil
}
