package scale

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat times; Linux fixes it
// at 100 for user space whatever the kernel's own tick rate.
const clockTicks = 100

// procUsage is what /proc says about the processes of one worker group.
type procUsage struct {
	CPU       time.Duration // user+system time of every process in the group
	PeakRSS   int64         // sum of the processes' VmHWM, in bytes
	Processes int
}

// groupUsage sums CPU time and peak RSS over every process whose process
// group is pgid: the worker and anything it started.
func groupUsage(pgid int) procUsage {
	var u procUsage
	if pgid <= 0 {
		return u
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return u
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readProcStat(pid)
		if err != nil || st.pgrp != pgid {
			continue
		}
		u.Processes++
		u.CPU += st.cpu
		u.PeakRSS += peakRSS(pid)
	}
	return u
}

type procStat struct {
	ppid, pgrp int
	cpu        time.Duration
}

// readProcStat parses /proc/PID/stat. The command name in parentheses may
// itself contain spaces and parentheses, so fields are counted from the
// last ')'.
func readProcStat(pid int) (procStat, error) {
	return readStatFile("/proc/" + strconv.Itoa(pid) + "/stat")
}

// readStatFile parses a /proc/PID/stat or /proc/PID/task/TID/stat file.
func readStatFile(path string) (procStat, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return procStat{}, err
	}
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("%s: no command name", path)
	}
	f := strings.Fields(string(raw[i+1:]))
	// f[0] is field 3 (state): ppid is field 4, pgrp 5, utime 14, stime 15.
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("%s: %d fields", path, len(f))
	}
	ppid, _ := strconv.Atoi(f[1])
	pgrp, _ := strconv.Atoi(f[2])
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return procStat{ppid: ppid, pgrp: pgrp, cpu: time.Duration(utime+stime) * time.Second / clockTicks}, nil
}

// peakRSS is the process's VmHWM (the most resident memory it ever had)
// in bytes, 0 when unknown.
func peakRSS(pid int) int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// countListeners counts TCP sockets in the LISTEN state on addr's port,
// from /proc/net/tcp (or tcp6): under reuseport there is one per worker
// that is ready.
func countListeners(addr netip.AddrPort) int {
	file := "/proc/net/tcp"
	if addr.Addr().Is6() {
		file = "/proc/net/tcp6"
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	port := fmt.Sprintf(":%04X", addr.Port())
	n := 0
	for _, line := range strings.Split(string(raw), "\n")[1:] {
		f := strings.Fields(line)
		// sl local_address rem_address st ...; 0A is TCP_LISTEN.
		if len(f) > 3 && strings.HasSuffix(f[1], port) && f[3] == "0A" {
			n++
		}
	}
	return n
}
