package escape

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
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

// Comparison is what changed between the analysis of a base revision and
// the current tree. does-not-escape findings are not compared: a new
// function brings many and none costs anything.
type Comparison struct {
	Base       string    `json:"base"`
	Introduced []Finding `json:"introduced"`
	Removed    []Finding `json:"removed"`
}

// NewHeapEscapes counts introduced findings that allocate on the heap.
func (c *Comparison) NewHeapEscapes() int {
	n := 0
	for _, f := range c.Introduced {
		if f.Kind.Heap() {
			n++
		}
	}
	return n
}

// Compare matches findings by package directory, function, kind and
// message, not by line, so an edit that only moves code does not count as
// a change; a finding that appears more often than before counts as
// introduced.
func Compare(base, head []Finding) *Comparison {
	key := func(f Finding) string {
		return path.Dir(filepath.ToSlash(f.File)) + "\x00" + f.Function + "\x00" + string(f.Kind) + "\x00" + f.Message
	}
	remaining := map[string]int{}
	for _, f := range base {
		if f.Kind != KindDoesNotEscape {
			remaining[key(f)]++
		}
	}
	c := &Comparison{Introduced: []Finding{}, Removed: []Finding{}}
	for _, f := range head {
		if f.Kind == KindDoesNotEscape {
			continue
		}
		k := key(f)
		if remaining[k] > 0 {
			remaining[k]--
			continue
		}
		c.Introduced = append(c.Introduced, f)
	}
	for i := len(base) - 1; i >= 0; i-- {
		f := base[i]
		if f.Kind == KindDoesNotEscape {
			continue
		}
		if k := key(f); remaining[k] > 0 {
			remaining[k]--
			c.Removed = append(c.Removed, f)
		}
	}
	for i, j := 0, len(c.Removed)-1; i < j; i, j = i+1, j-1 {
		c.Removed[i], c.Removed[j] = c.Removed[j], c.Removed[i]
	}
	return c
}

// WithoutPackages returns the findings of packages other than those that
// failed. Compare needs it when a package did not build at the base: all
// its findings would count as introduced although nothing is known of what
// it had there.
func WithoutPackages(fs []Finding, failed []Failure) []Finding {
	if len(failed) == 0 {
		return fs
	}
	skip := make(map[string]bool, len(failed))
	for _, fl := range failed {
		skip[fl.Package] = true
	}
	out := make([]Finding, 0, len(fs))
	for _, f := range fs {
		if !skip[f.Package] {
			out = append(out, f)
		}
	}
	return out
}

// AnalyzeRevision analyses the same packages as they are at the git
// revision ref, in a temporary worktree that is removed afterwards. File
// names in its report are relative to the same directory as in the
// current tree's, so the two reports can be compared.
func AnalyzeRevision(ctx context.Context, opts Options, ref string) (*Report, error) {
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	top, err := git(ctx, dir, "rev-parse", "--show-toplevel")
	if err != nil {
		return nil, fmt.Errorf("--base needs a git repository: %w", err)
	}
	if _, err := git(ctx, top, "rev-parse", "--verify", "--quiet", ref+"^{commit}"); err != nil {
		return nil, fmt.Errorf("--base %s: no such revision in %s", ref, top)
	}
	rel, err := filepath.Rel(top, dir)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "leaklab-escape-base-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	tree := filepath.Join(tmp, "tree")
	if _, err := git(ctx, top, "worktree", "add", "--detach", "--quiet", tree, ref); err != nil {
		return nil, err
	}
	defer func() {
		// A fresh context: the worktree must go even when ctx was cancelled.
		git(context.Background(), top, "worktree", "remove", "--force", tree)
	}()
	opts.Dir = filepath.Join(tree, rel)
	r, err := Analyze(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("at %s: %w", ref, err)
	}
	return r, nil
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("git %s: %s", args[0], msg)
	}
	return strings.TrimSpace(string(out)), nil
}
