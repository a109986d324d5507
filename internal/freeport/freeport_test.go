package freeport

import (
	"net"
	"strconv"
	"testing"
)

// Range gives n consecutive ports below the ephemeral range that can all
// be bound, and refuses a range that cannot fit there.
func TestRange(t *testing.T) {
	const n = 38
	base, err := Range(n)
	if err != nil {
		t.Fatal(err)
	}
	if base < bottom || base+n > ephemeralStart() {
		t.Errorf("ports %d-%d, want them within %d-%d", base, base+n-1, bottom, ephemeralStart()-1)
	}
	for p := base; p < base+n; p++ {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d of the range: %v", p, err)
		}
		ln.Close()
	}
	if _, err := Range(ephemeralStart()); err == nil {
		t.Error("a range as long as the ports below the ephemeral range was found")
	}
}

// A taken port makes its range not free.
func TestFreeSeesATakenPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	if free(port-1, 3) {
		t.Errorf("ports %d-%d reported free with %d taken", port-1, port+1, port)
	}
}
