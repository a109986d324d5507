package testbin

import (
	"bytes"
	"compress/gzip"
	"sync"
)

// GzipBomb returns size bytes of zeros (rounded down to whole MiB),
// gzipped at the best compression: tens of kilobytes on the wire, for
// tests of what a reader does with a profile that decompresses to far
// more than it weighs. Each size is made once per test process and
// shared, since compressing 100 MiB takes a second (several under the
// race detector); callers must not change the bytes.
func GzipBomb(size int) []byte {
	bombs.Lock()
	defer bombs.Unlock()
	if b, ok := bombs.made[size]; ok {
		return b
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for range size >> 20 {
		zw.Write(zeros)
	}
	zw.Close()
	if bombs.made == nil {
		bombs.made = map[int][]byte{}
	}
	bombs.made[size] = buf.Bytes()
	return bombs.made[size]
}

var bombs struct {
	sync.Mutex
	made map[int][]byte
}
