package escape

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/leaklab/leaklab/internal/childproc"
)

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
	var stderr bytes.Buffer
	out, err := childproc.Output(ctx, childproc.Spec{Argv: append([]string{"git"}, args...), Dir: dir, Stderr: &stderr})
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("git %s: %s", args[0], msg)
	}
	return strings.TrimSpace(string(out)), nil
}
