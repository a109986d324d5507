// Package proccpu reads the CPU time this process has used: what the load
// generator reports per request and what benchmarks report beside wall
// time on a machine shared with other work.
package proccpu

import (
	"syscall"
	"time"
)

// Self is the user plus system CPU time this process has used (0 when
// the kernel does not say).
func Self() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
