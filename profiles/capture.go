package profiles

import (
	"context"
	"fmt"
	"io"
)

// Capture fetches one profile from target and saves it in file, or in the
// store when file is "" (as received, not compressed a second time).
func Capture(ctx context.Context, target string, opts FetchOptions, store *Store, file string) (Saved, error) {
	if file == "" {
		opts.KeepRaw = true
	}
	c, err := Fetch(ctx, target, opts)
	if err != nil {
		return Saved{}, err
	}
	if file != "" {
		if err := WriteFile(file, c); err != nil {
			return Saved{}, fmt.Errorf("cannot write %s: %w", file, err)
		}
		return Saved{Meta: c.Meta, File: file}, nil
	}
	m, err := store.SaveRaw(c, c.Raw())
	return Saved{Meta: m}, err
}

// CaptureAll fetches every type of profile target offers (see FetchAll)
// and saves each in the store. It returns every type's outcome and the
// types that failed; the error is for the store alone.
func CaptureAll(ctx context.Context, target string, opts FetchOptions, store *Store) (SavedList, []string, error) {
	opts.KeepRaw = true
	var saved SavedList
	var failed []string
	for _, r := range FetchAll(ctx, target, opts) {
		s := Saved{Meta: Meta{Type: r.Type, Target: target}}
		switch {
		case r.Skipped:
			s.Skipped = r.Err.Error()
		case r.Err != nil:
			s.Error = r.Err.Error()
			failed = append(failed, r.Type)
		default:
			var err error
			if s.Meta, err = store.SaveRaw(r.Captured, r.Captured.Raw()); err != nil {
				return saved, failed, err
			}
		}
		saved = append(saved, s)
	}
	return saved, failed, nil
}

// Saved is a captured profile, saved in the store or a file, or the
// reason it was not: skipped (the target does not offer the type) or
// failed.
type Saved struct {
	Meta
	File    string `json:"file,omitempty"`
	Skipped string `json:"skipped,omitempty"`
	Error   string `json:"error,omitempty"`
}

// WriteText writes one line saying what was saved where.
func (s Saved) WriteText(w io.Writer) error {
	switch {
	case s.Skipped != "":
		_, err := fmt.Fprintf(w, "skipped %s: %s\n", s.Type, s.Skipped)
		return err
	case s.Error != "":
		_, err := fmt.Fprintf(w, "failed  %s: %s\n", s.Type, s.Error)
		return err
	}
	where := s.ID
	if s.File != "" {
		where = s.File
	}
	service := ""
	if s.Service != "" {
		service = " (" + s.Service + ")"
	}
	_, err := fmt.Fprintf(w, "saved %s: %s profile of %s%s, %d samples\n", where, s.Type, s.Target, service, s.Samples)
	return err
}

// SavedList is several captures' outcomes.
type SavedList []Saved

// WriteText writes one line per capture.
func (l SavedList) WriteText(w io.Writer) error {
	for _, s := range l {
		if err := s.WriteText(w); err != nil {
			return err
		}
	}
	return nil
}
