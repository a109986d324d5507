package escape

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// BenchmarkAnalyzeVsPeer times Analyze and the bare 'go build
// -gcflags=-m=2' it wraps side by side on the lesson package: every
// iteration runs both, in alternating order, each on a fresh copy (the
// build cache keys on the directory, so both compile the package while the
// standard library comes from the cache). It reports each one's time per
// run and their ratio. scripts/bench-escape.sh does the same on a large
// module.
//
//	go test -run '^$' -bench AnalyzeVsPeer -benchtime 20x ./profiles/escape
func BenchmarkAnalyzeVsPeer(b *testing.B) {
	src := "../../leaks/escapes"
	fresh := func(b *testing.B, name string) string {
		dir := filepath.Join(b.TempDir(), name)
		if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
			b.Fatal(err)
		}
		// A module of its own, so the copy builds outside this module.
		if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/lesson\n\ngo 1.26\n"), 0o644); err != nil {
			b.Fatal(err)
		}
		return dir
	}
	peer := func(dir string) {
		cmd := exec.Command("go", "build", "-o", os.DevNull, "-gcflags=-m=2", ".")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v\n%s", err, out)
		}
	}
	ours := func(dir string) {
		if _, err := Analyze(context.Background(), Options{Dir: dir, Packages: []string{"."}}); err != nil {
			b.Fatal(err)
		}
	}
	var peerTime, ourTime time.Duration
	timed := func(total *time.Duration, run func(string), dir string) {
		start := time.Now()
		run(dir)
		*total += time.Since(start)
	}
	n := 0
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		peerDir, ourDir := fresh(b, "peer"+strconv.Itoa(i)), fresh(b, "ours"+strconv.Itoa(i))
		b.StartTimer()
		if i%2 == 0 {
			timed(&peerTime, peer, peerDir)
			timed(&ourTime, ours, ourDir)
		} else {
			timed(&ourTime, ours, ourDir)
			timed(&peerTime, peer, peerDir)
		}
		n++
	}
	b.ReportMetric(float64(peerTime.Milliseconds())/float64(n), "go-build-ms/op")
	b.ReportMetric(float64(ourTime.Milliseconds())/float64(n), "leaklab-ms/op")
	b.ReportMetric(float64(ourTime)/float64(peerTime), "ratio")
}
