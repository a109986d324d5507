package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "report.html")
	if err := WriteBytes(path, []byte("first")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != Mode {
		t.Fatalf("after Write: %v, %v; want mode %v", fi, err, Mode)
	}
	// A failing writer leaves the old content and no temporary file.
	boom := errors.New("boom")
	err := Write(path, func(w io.Writer) error {
		w.Write([]byte("half of the sec"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Write with a failing writer: %v", err)
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != "first" {
		t.Errorf("after a failed Write: %q, %v; want the old content", data, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Errorf("directory holds %v, %v; want only report.html", entries, err)
	}
}

// A place that fails (a link onto a taken name) leaves nothing behind.
func TestWriteViaPlaceFails(t *testing.T) {
	dir := t.TempDir()
	taken := filepath.Join(dir, "taken")
	if err := os.WriteFile(taken, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := WriteVia(dir, ".tmp-*", 0o600, func(f *os.File) error {
		_, err := f.WriteString("new")
		return err
	}, func(tmp string) error { return os.Link(tmp, taken) })
	if !errors.Is(err, os.ErrExist) {
		t.Fatalf("WriteVia onto a taken name: %v, want it refused", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %v; want only the taken file", entries)
	}
}
