package dashboards

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leaklab/leaklab/internal/opterr"
)

// A directory with files in it is a refused option (ExportOptions.Force),
// and what was exported reads as a list of files and the next command.
func TestExportedAndRefusal(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mine.txt"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Export(context.Background(), dir, ExportOptions{})
	var notEmpty *NotEmptyError
	if !opterr.Is(err) || !errors.As(err, &notEmpty) || !strings.Contains(err.Error(), "or Force to overwrite") {
		t.Errorf("Export into a directory with files: %v, want an option error wrapping a NotEmptyError", err)
	}
	var text bytes.Buffer
	if err := (Exported{Dir: "DIR", Files: []string{"DIR/a", "DIR/b"}}).WriteText(&text); err != nil {
		t.Fatal(err)
	}
	want := "DIR/a\nDIR/b\n\nwrote 2 files; start the services with:\n  leaklab run --all --targets-file DIR/prometheus/targets/leaklab.json\n"
	if text.String() != want {
		t.Errorf("text %q, want %q", &text, want)
	}
}
