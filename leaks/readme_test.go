package leaks_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leaklab/leaklab/leaks"
)

var update = flag.Bool("update", false, "rewrite the catalog table in docs/services.md")

// catalogPage is the manual page that holds the generated catalog table (it
// lived in README.md before the manual moved to docs/).
const catalogPage = "docs/services.md"

const (
	tableStart = "<!-- catalog:start (generated: go test ./leaks -run TestREADMECatalog -update) -->"
	tableEnd   = "<!-- catalog:end -->"
)

// The manual's catalog table is generated from the catalog; this fails when
// they drift apart.
func TestREADMECatalog(t *testing.T) {
	path := filepath.Join("..", filepath.FromSlash(catalogPage))
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	start, end := strings.Index(readme, tableStart), strings.Index(readme, tableEnd)
	if start < 0 || end < start {
		t.Fatalf("%s lacks the %q ... %q markers", catalogPage, tableStart, tableEnd)
	}
	want := catalogTable()
	got := readme[start+len(tableStart) : end]
	if got == want {
		return
	}
	if !*update {
		t.Fatalf("%s's catalog table is out of date; run: go test ./leaks -run TestREADMECatalog -update", catalogPage)
	}
	readme = readme[:start+len(tableStart)] + want + readme[end:]
	if err := os.WriteFile(path, []byte(readme), 0o644); err != nil {
		t.Fatal(err)
	}
}

func catalogTable() string {
	var b strings.Builder
	b.WriteString("\n| service | kind | what you see | drive it | profile |\n|---|---|---|---|---|\n")
	for _, s := range leaks.All() {
		ep := s.Endpoints[0]
		fmt.Fprintf(&b, "| `%s` | %s | %s | `%s %s` | %s |\n", s.Name, s.Kind, strings.ReplaceAll(s.Summary, "|", "\\|"), ep.Method, ep.Path, s.Profile)
	}
	return b.String()
}
