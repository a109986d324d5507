package escape

import (
	"path/filepath"
	"regexp"
	"strings"
)

// Filter selects findings. The zero Filter selects everything.
type Filter struct {
	// Kinds, when not empty, keeps only these kinds.
	Kinds []Kind
	// Func, when not nil, keeps findings whose function it matches.
	Func *regexp.Regexp
	// File, when not empty, keeps findings in this file: a path relative
	// to the analysed directory, its trailing elements ("server.go",
	// "leaks/escapes/escapes.go"), an absolute path or a path relative to
	// the current directory.
	File string
	// Dir is the analysed directory (Report.Dir), which findings' relative
	// file names are relative to; "" is the current directory. It lets an
	// absolute File match them.
	Dir string
}

// Apply returns the findings the filter keeps.
func (f Filter) Apply(fs []Finding) []Finding {
	out := make([]Finding, 0, len(fs))
	match := f.fileMatcher()
	for _, x := range fs {
		if len(f.Kinds) > 0 && !containsKind(f.Kinds, x.Kind) {
			continue
		}
		if f.Func != nil && !f.Func.MatchString(x.Function) {
			continue
		}
		if match != nil && !match(x.File) {
			continue
		}
		out = append(out, x)
	}
	return out
}

// fileMatcher returns what decides whether a finding's file is f.File, or
// nil when f.File is empty. Both sides are made absolute (the finding's
// against f.Dir, File against the current directory) so that an absolute
// File or one relative to the current directory matches too, and compared
// with symbolic links resolved when the plain paths differ.
func (f Filter) fileMatcher() func(file string) bool {
	if f.File == "" {
		return nil
	}
	rel := filepath.ToSlash(filepath.Clean(f.File))
	want, err := filepath.Abs(f.File)
	if err != nil {
		want = ""
	}
	wantReal := "" // want with symbolic links resolved; "" when it does not exist
	if want != "" {
		if r, err := filepath.EvalSymlinks(want); err == nil {
			wantReal = r
		}
	}
	dir, err := filepath.Abs(f.Dir)
	if err != nil {
		dir = ""
	}
	resolved := map[string]string{} // a finding's absolute file, symbolic links resolved
	return func(file string) bool {
		if file == rel || strings.HasSuffix(file, "/"+rel) {
			return true
		}
		if want == "" {
			return false
		}
		abs := filepath.FromSlash(file)
		if !filepath.IsAbs(abs) {
			if dir == "" {
				return false
			}
			abs = filepath.Join(dir, abs)
		}
		if abs == want {
			return true
		}
		if wantReal == "" {
			return false
		}
		r, ok := resolved[abs]
		if !ok {
			if r, err = filepath.EvalSymlinks(abs); err != nil {
				r = abs
			}
			resolved[abs] = r
		}
		return r == wantReal
	}
}

func containsKind(ks []Kind, k Kind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}
