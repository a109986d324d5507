package escape

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkAnalyzeVsPeer times Analyze and the bare 'go build
// -gcflags=-m=2' it wraps side by side on the lesson package. Each
// iteration builds a fresh copy (the build cache keys on the directory),
// so both compile the package while the standard library comes from the
// cache. scripts/bench-escape.sh does the same on a large module.
//
//	go test -run '^$' -bench AnalyzeVsPeer ./profiles/escape
func BenchmarkAnalyzeVsPeer(b *testing.B) {
	src := "../../leaks/escapes"
	fresh := func(b *testing.B, i int) string {
		dir := filepath.Join(b.TempDir(), strconv.Itoa(i))
		if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
			b.Fatal(err)
		}
		// A module of its own, so the copy builds outside this module.
		if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/lesson\n\ngo 1.26\n"), 0o644); err != nil {
			b.Fatal(err)
		}
		return dir
	}
	b.Run("go-build-m2", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			dir := fresh(b, i)
			b.StartTimer()
			cmd := exec.Command("go", "build", "-o", os.DevNull, "-gcflags=-m=2", ".")
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%v\n%s", err, out)
			}
		}
	})
	b.Run("leaklab-escape", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			dir := fresh(b, i)
			b.StartTimer()
			if _, err := Analyze(context.Background(), Options{Dir: dir, Packages: []string{"."}}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
