package leaks_test

import (
	"strings"
	"testing"

	"github.com/leaklab/leaklab/leaks"
)

// Every culprit's source can be shown by 'exercise solution'.
func TestCulpritSource(t *testing.T) {
	for _, s := range leaks.All() {
		file, code, err := leaks.CulpritSource(s.Culprit)
		if err != nil {
			t.Errorf("%s: %v", s.Name, err)
			continue
		}
		name := s.Culprit[strings.LastIndex(s.Culprit, ".")+1:]
		if !strings.HasPrefix(file, "leaks/") || !strings.Contains(code, "func ") || !strings.Contains(code, name+"(") {
			t.Errorf("%s: source of %s from %s:\n%s", s.Name, s.Culprit, file, code)
		}
	}
}
