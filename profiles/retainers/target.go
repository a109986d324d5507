package retainers

import (
	"bufio"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Refusal is a reason not to attach, found before touching the target: not
// a Go program, no DWARF, an unsupported Go version, another tracer, a
// pause over the limit. Its message is one line saying what to do.
type Refusal struct{ Reason string }

func (r *Refusal) Error() string { return r.Reason }

func refusef(format string, args ...any) error {
	return &Refusal{Reason: fmt.Sprintf(format, args...)}
}

// SupportedGoVersions are the target Go releases whose heap layout (span
// table, malloc headers, swiss maps) the scan knows; each is tested.
var SupportedGoVersions = []string{"go1.26", "go1.27"}

// target is what /proc says about the process, read before attaching.
type target struct {
	pid       int
	exe       string // /proc/PID/exe, readable even when the file was replaced
	name      string // comm
	goVersion string
	rssBytes  int64
	tracerPID int
}

func inspect(pid int) (*target, error) {
	t := &target{pid: pid, exe: fmt.Sprintf("/proc/%d/exe", pid)}
	ppid := 0
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, refusef("no process with PID %d", pid)
		}
		return nil, fmt.Errorf("cannot read /proc/%d/status: %w", pid, err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		switch k {
		case "Name":
			t.name = v
		case "PPid":
			ppid, _ = strconv.Atoi(v)
		case "TracerPid":
			t.tracerPID, _ = strconv.Atoi(v)
		case "VmRSS":
			kb, _ := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
			t.rssBytes = kb << 10
		}
	}
	if pid == os.Getpid() {
		return nil, refusef("PID %d is leaklab itself", pid)
	}
	if ppid == os.Getpid() {
		// This process may be waiting for its child (os/exec does), and such
		// a wait would take the child's ptrace stops as exits.
		return nil, refusef("PID %d is a child of this process; scan it from another process (leaklab retainers %d)", pid, pid)
	}
	bi, err := buildinfo.ReadFile(t.exe)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return nil, refusef("cannot read the executable of PID %d (%s): permission denied; run as the target's user or as root", pid, t.name)
		}
		return nil, refusef("PID %d (%s) is not a Go program (%v)", pid, t.name, err)
	}
	t.goVersion = bi.GoVersion
	if !Supported(t.goVersion) {
		return nil, refusef("PID %d (%s) was built with %s; leaklab retainers supports %s", pid, t.name, t.goVersion, strings.Join(SupportedGoVersions, ", "))
	}
	if err := hasDWARF(t.exe); err != nil {
		return nil, refusef("PID %d (%s) has no DWARF debug info (%v); rebuild it without -ldflags=-s -w", pid, t.name, err)
	}
	if t.tracerPID != 0 {
		tracer := processOf(t.tracerPID)
		return nil, refusef("PID %d (%s) is already traced by PID %d (%s); detach that debugger first", pid, t.name, tracer, commOf(tracer))
	}
	return t, nil
}

// Supported says whether a Go release (as runtime.Version and debug/buildinfo
// spell it) is one the scan supports. It matches the release prefix, so go1.26.8 and
// go1.27.3-X:nodwarf5 both count; a development build (devel ...) does not.
func Supported(v string) bool {
	for _, s := range SupportedGoVersions {
		if v == s || strings.HasPrefix(v, s+".") || strings.HasPrefix(v, s+"-") || strings.HasPrefix(v, s+"rc") {
			return true
		}
	}
	return false
}

func hasDWARF(exe string) error {
	f, err := elf.Open(exe)
	if err != nil {
		return err
	}
	defer f.Close()
	if f.Section(".debug_info") == nil && f.Section(".zdebug_info") == nil {
		return errors.New("no .debug_info section")
	}
	return nil
}

// processOf returns the process (thread group) of a thread ID, as
// TracerPid names a thread.
func processOf(tid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", tid))
	if err != nil {
		return tid
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Tgid:"); ok {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				return n
			}
		}
	}
	return tid
}

func commOf(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

// PIDForURL finds the process on this machine that listens on the TCP
// port of a loopback URL (http://127.0.0.1:8080, http://localhost:8080).
func PIDForURL(raw string) (int, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return 0, fmt.Errorf("%q is neither a PID nor a URL like http://127.0.0.1:8080", raw)
	}
	host, portStr := u.Hostname(), u.Port()
	if portStr == "" {
		portStr = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return 0, fmt.Errorf("%q has no valid port", raw)
	}
	if host != "localhost" {
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return 0, fmt.Errorf("%s is not a loopback address: retainers attaches to a process on this machine; give its PID", host)
		}
	}
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		if err := listeningInodes(f, port, inodes); err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, err
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("nothing listens on TCP port %d on this machine", port)
	}
	pids, err := socketOwners(inodes)
	if err != nil {
		return 0, err
	}
	switch len(pids) {
	case 0:
		return 0, fmt.Errorf("cannot see which process listens on port %d (its /proc entries are not readable: run as its user or as root)", port)
	case 1:
		return pids[0], nil
	}
	return 0, fmt.Errorf("several processes listen on port %d (PIDs %v); give one PID", port, pids)
}

// listeningInodes adds the socket inodes of the LISTEN sockets on port
// found in a /proc/net/tcp-format file.
func listeningInodes(file string, port int, inodes map[string]bool) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != "0A" { // 0A: TCP_LISTEN
			continue
		}
		_, p, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(p, 16, 16); err == nil && int(n) == port {
			inodes[fields[9]] = true
		}
	}
	return sc.Err()
}

// socketOwners lists the processes holding a descriptor on one of the
// socket inodes, skipping processes whose descriptors it cannot read.
func socketOwners(inodes map[string]bool) ([]int, error) {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		dir := filepath.Join("/proc", p.Name(), "fd")
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(dir, fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			if inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids, nil
}
