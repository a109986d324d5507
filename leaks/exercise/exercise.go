// Package exercise turns the sample-service catalog into leak-hunting
// exercises: it remembers each one's progress (hints revealed, where the
// service runs, whether it was solved) and judges a user's diagnosis
// against the catalog's culprit.
package exercise

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/leaklab/leaklab/internal/atomicfile"
)

// progressFile is the name of the progress file in the leaklab home.
const progressFile = "exercises.json"

// Progress is what is remembered about one exercise between commands.
type Progress struct {
	Name         string    `json:"name"`
	HintsShown   int       `json:"hints_shown"`
	Started      time.Time `json:"started,omitempty"`
	URL          string    `json:"url,omitempty"` // where 'exercise start' runs the service
	Answers      []string  `json:"answers,omitempty"`
	Solved       bool      `json:"solved"`
	SolutionRead bool      `json:"solution_read"`
}

// Book is every exercise's progress, kept in a JSON file.
type Book struct {
	path      string
	Exercises map[string]*Progress `json:"exercises"`
}

// Open reads the progress file in dir (the leaklab home), or starts an
// empty book when there is none yet.
func Open(dir string) (*Book, error) {
	b := &Book{path: filepath.Join(dir, progressFile), Exercises: map[string]*Progress{}}
	raw, err := os.ReadFile(b.path)
	if errors.Is(err, fs.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, b); err != nil {
		return nil, errors.New(b.path + " is damaged (" + err.Error() + "); delete it to start over")
	}
	if b.Exercises == nil {
		b.Exercises = map[string]*Progress{}
	}
	return b, nil
}

// Get returns the progress of an exercise, creating it if needed.
func (b *Book) Get(name string) *Progress {
	p := b.Exercises[name]
	if p == nil {
		p = &Progress{Name: name}
		b.Exercises[name] = p
	}
	return p
}

// Save writes the book atomically.
func (b *Book) Save() error {
	if err := os.MkdirAll(filepath.Dir(b.path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(b.path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(b)
	})
}

// Matches reports whether a user's answer names the culprit. The package
// path may be left out and the receiver written with or without the
// pointer and parentheses: "(*pageCache).render", "pageCache.render" and
// "leaks.(*pageCache).render" all name the same method.
func Matches(answer, culprit string) bool {
	norm := func(s string) string {
		s = strings.TrimSpace(s)
		if i := strings.LastIndexByte(s, '/'); i >= 0 {
			s = s[i+1:]
		}
		s = strings.NewReplacer("(", "", ")", "", "*", "").Replace(s)
		return s
	}
	a, c := norm(answer), norm(culprit)
	if a == "" {
		return false
	}
	// c is "leaks.T.m" or "leaks.f"; accept the same without the package.
	return a == c || "leaks."+a == c
}
