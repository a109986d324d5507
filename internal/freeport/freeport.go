// Package freeport finds free loopback ports for a child process to bind
// later (the tests' 'run --all --base-port', the real-world suite's
// servers). It looks below the kernel's ephemeral range: the kernel hands
// out ports from that range to every bind of port 0 and every outgoing
// connection, so a port found and closed inside it can be taken before
// the child binds it, as happened in CI on 2026-12-04 (a port of a
// --base-port range, and an etcd peer port, each under a whole run's
// load). Below the range only another explicit bind can take it, and a
// random start keeps processes that ask at once apart.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// bottom is the lowest port handed out.
const bottom = 10000

// Range returns the first of n consecutive loopback ports below the
// ephemeral range that nothing listens on.
func Range(n int) (int, error) {
	top := ephemeralStart() - n
	if top <= bottom {
		return 0, fmt.Errorf("no room for %d ports between %d and the ephemeral range", n, bottom)
	}
	start := bottom + rand.IntN(top-bottom)
	for i := 0; i < 50; i++ {
		base := bottom + (start-bottom+i*(n+7))%(top-bottom)
		if free(base, n) {
			return base, nil
		}
	}
	return 0, fmt.Errorf("no %d consecutive free loopback ports below the ephemeral range", n)
}

// free says whether nothing listens on the n ports from base.
func free(base, n int) bool {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for p := base; p < base+n; p++ {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			return false
		}
		lns = append(lns, ln)
	}
	return true
}

// ephemeralStart is the first port of the kernel's ephemeral range
// (Linux's default when it cannot be read).
func ephemeralStart() int {
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if lo, err := strconv.Atoi(f[0]); err == nil && lo > 0 {
				return lo
			}
		}
	}
	return 32768
}
