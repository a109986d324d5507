package profiles

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/proccpu"
)

// BenchmarkStoreSaveByStoreSize saves heap profiles from 16 goroutines at
// once (as a collector's concurrent captures do) into a store that
// already holds 0 or 60,000 files (a 1,000-target collector's 5 m of
// retention): whether a save costs more in a bigger store. Read the
// kernel's share from the cpu-ns/op metric (user and system CPU of the
// process), not ns/op alone.
//
//	go test ./profiles -run '^$' -bench StoreSaveByStoreSize -benchtime 4000x
func BenchmarkStoreSaveByStoreSize(b *testing.B) {
	for _, files := range []int{0, 60_000} {
		b.Run(fmt.Sprintf("files=%d", files), func(b *testing.B) {
			s, err := Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			for i := range files / 2 { // a profile and its metadata each
				name := fmt.Sprintf("20261203-%06d-heap-%06x", i, i)
				for _, ext := range []string{profileExt, metaExt} {
					if err := os.WriteFile(filepath.Join(s.Dir(), name+ext), []byte("x"), 0o600); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.SetParallelism(8) // 16 savers on 2 CPUs
			c0 := proccpu.Self()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				c, err := ReadFile(filepath.Join("testdata", "heap-base.pb.gz"), Limits{})
				if err != nil {
					b.Error(err)
					return
				}
				for pb.Next() {
					c.Meta.Time, c.Meta.Target = time.Now(), "http://127.0.0.1:1"
					if _, err := s.Save(c); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(proccpu.Self()-c0)/float64(b.N), "cpu-ns/op")
		})
	}
}
