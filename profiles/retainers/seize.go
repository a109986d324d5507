package retainers

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/go-delve/delve/pkg/dwarf/op"
	"github.com/go-delve/delve/pkg/elfwriter"
	"github.com/go-delve/delve/pkg/proc"
	"github.com/go-delve/delve/pkg/proc/linutil"
	"golang.org/x/sys/unix"
)

// seizedProcess is a delve process backed by PTRACE_SEIZE. leaklab does
// not use delve's own attach, for two reasons: delve reads the binary's
// debug info after stopping the target (seconds of pause for a large
// binary), where a seizedProcess lets delve read it while the target still
// runs and stops it only for the walk; and PTRACE_SEIZE stops threads
// with PTRACE_INTERRUPT instead of SIGSTOP, so when leaklab dies the
// kernel detaches and the target simply runs on. It never writes to the
// target: no breakpoints, no register changes.
type seizedProcess struct {
	// The embedded interface supplies the methods of tracing features
	// leaklab never uses (uprobes); calling one would panic.
	proc.ProcessInternal

	pid     int
	bi      *proc.BinaryInfo
	bps     proc.BreakpointMap
	mem     vmReader
	main    *seizedThread
	threads map[int]*seizedThread
	tracer  *tracerThread
}

// seizedThread is one thread of the target; its registers are known only
// while it is stopped.
type seizedThread struct {
	proc.Thread // unused methods, as above
	p           *seizedProcess
	tid         int
	regs        *linutil.AMD64Registers
	common      proc.CommonThread
	seized      bool
	// signal is a signal the thread stopped with instead of our interrupt,
	// delivered again on detach.
	signal int
}

func newSeizedProcess(pid int) *seizedProcess {
	p := &seizedProcess{pid: pid, bi: proc.NewBinaryInfo("linux", runtime.GOARCH, true), mem: vmReader{pid: pid},
		threads: map[int]*seizedThread{}, bps: proc.NewBreakpointMap()}
	p.main = &seizedThread{p: p, tid: pid}
	p.threads[pid] = p.main
	return p
}

// target builds delve's Target for p while the process runs: this is
// where the binary's DWARF is read.
func (p *seizedProcess) target() (*proc.TargetGroup, *proc.Target, error) {
	grp, add := proc.NewGroup(seizedGroup{p}, proc.NewTargetGroupConfig{StopReason: proc.StopAttached})
	// /proc/PID/exe works even when the file on disk was replaced or
	// deleted since the target started.
	tgt, err := add(p, p.pid, p.main, fmt.Sprintf("/proc/%d/exe", p.pid), proc.StopAttached, "")
	if err != nil {
		return nil, nil, err
	}
	return grp, tgt, nil
}

func (p *seizedProcess) BinInfo() *proc.BinaryInfo { return p.bi }
func (p *seizedProcess) EntryPoint() (uint64, error) {
	auxv, err := os.ReadFile(fmt.Sprintf("/proc/%d/auxv", p.pid))
	if err != nil {
		return 0, err
	}
	return linutil.EntryPointFromAuxv(auxv, 8), nil
}
func (p *seizedProcess) FindThread(id int) (proc.Thread, bool) {
	t, ok := p.threads[id]
	if !ok {
		return nil, false
	}
	return t, true
}
func (p *seizedProcess) ThreadList() []proc.Thread {
	out := make([]proc.Thread, 0, len(p.threads))
	for _, t := range p.threads {
		if t.regs != nil {
			out = append(out, t)
		}
	}
	return out
}
func (p *seizedProcess) Breakpoints() *proc.BreakpointMap    { return &p.bps }
func (p *seizedProcess) Memory() proc.MemoryReadWriter       { return p.mem }
func (p *seizedProcess) Valid() (bool, error)                { return true, nil }
func (p *seizedProcess) SupportsBPF() bool                   { return false }
func (p *seizedProcess) FollowExec(bool) error               { return nil }
func (p *seizedProcess) StartCallInjection() (func(), error) { return func() {}, nil }
func (p *seizedProcess) RequestManualStop(*proc.ContinueOnceContext) error {
	return nil
}
func (p *seizedProcess) WriteBreakpoint(*proc.Breakpoint) error {
	return errors.New("leaklab never writes to the target")
}
func (p *seizedProcess) EraseBreakpoint(*proc.Breakpoint) error { return nil }
func (p *seizedProcess) MemoryMap() ([]proc.MemoryMapEntry, error) {
	return nil, proc.ErrMemoryMapNotSupported
}
func (p *seizedProcess) DumpProcessNotes(notes []elfwriter.Note, _ func()) (bool, []elfwriter.Note, error) {
	return false, notes, nil
}

func (t *seizedThread) Breakpoint() *proc.BreakpointState    { return &proc.BreakpointState{} }
func (t *seizedThread) ThreadID() int                        { return t.tid }
func (t *seizedThread) BinInfo() *proc.BinaryInfo            { return t.p.bi }
func (t *seizedThread) ProcessMemory() proc.MemoryReadWriter { return t.p.mem }
func (t *seizedThread) SetCurrentBreakpoint(bool) error      { return nil }
func (t *seizedThread) SoftExc() bool                        { return false }
func (t *seizedThread) Common() *proc.CommonThread           { return &t.common }
func (t *seizedThread) Registers() (proc.Registers, error) {
	if t.regs == nil {
		return nil, errors.New("thread is running")
	}
	return t.regs, nil
}
func (t *seizedThread) RestoreRegisters(proc.Registers) error {
	return errors.New("leaklab never changes the target's registers")
}
func (t *seizedThread) SetReg(uint64, *op.DwarfRegister) error {
	return errors.New("leaklab never changes the target's registers")
}

// seizedGroup is the process group delve drives; leaklab never resumes
// through it.
type seizedGroup struct{ p *seizedProcess }

func (g seizedGroup) ContinueOnce(*proc.ContinueOnceContext) (proc.Thread, proc.StopReason, error) {
	return nil, proc.StopUnknown, errors.New("leaklab does not resume the target through delve")
}
func (g seizedGroup) StepInstruction(int) error { return errors.New("not supported") }
func (g seizedGroup) Detach(int, bool) error    { return g.p.detach() }
func (g seizedGroup) Close() error              { return nil }

// vmReader reads the target's memory with process_vm_readv, which works
// whether or not the target is stopped.
type vmReader struct{ pid int }

func (m vmReader) ReadMemory(buf []byte, addr uint64) (int, error) {
	if len(buf) == 0 {
		return 0, nil
	}
	local := []unix.Iovec{{Base: &buf[0]}}
	local[0].SetLen(len(buf))
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(buf)}}
	n, err := unix.ProcessVMReadv(m.pid, local, remote, 0)
	if err != nil {
		return 0, fmt.Errorf("reading %d bytes at %#x: %w", len(buf), addr, err)
	}
	return n, nil
}

// readBatch reads len(addrs) blocks of size bytes in as few system calls
// as the kernel allows (1024 blocks each); a block it cannot read is left
// zero.
func (m vmReader) readBatch(buf []byte, addrs []uint64, size int) {
	const maxIov = 1024
	for lo := 0; lo < len(addrs); lo += maxIov {
		hi := min(lo+maxIov, len(addrs))
		local := []unix.Iovec{{Base: &buf[lo*size]}}
		local[0].SetLen((hi - lo) * size)
		remote := make([]unix.RemoteIovec, 0, hi-lo)
		for _, a := range addrs[lo:hi] {
			remote = append(remote, unix.RemoteIovec{Base: uintptr(a), Len: size})
		}
		n, err := unix.ProcessVMReadv(m.pid, local, remote, 0)
		if err != nil || n < (hi-lo)*size {
			// a bad address stops the call there: read the rest one by one
			done := max(n, 0) / size
			for i := lo + done; i < hi; i++ {
				if _, err := m.ReadMemory(buf[i*size:(i+1)*size], addrs[i]); err != nil {
					clear(buf[i*size : (i+1)*size])
				}
			}
		}
	}
}

func (m vmReader) WriteMemory(uint64, []byte) (int, error) {
	return 0, errors.New("leaklab never writes to the target")
}

// tracerThread runs every ptrace request on one locked OS thread: the
// kernel knows a tracer by thread, not by process.
type tracerThread struct {
	work chan func()
}

func newTracerThread() *tracerThread {
	t := &tracerThread{work: make(chan func())}
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		for f := range t.work {
			f()
		}
	}()
	return t
}

func (t *tracerThread) do(f func()) {
	done := make(chan struct{})
	t.work <- func() { f(); close(done) }
	<-done
}

func (t *tracerThread) stop() { close(t.work) }

// stop seizes and interrupts every thread of the target, repeating until
// no new thread appeared, and reads their registers.
func (p *seizedProcess) stop() error {
	p.tracer = newTracerThread()
	seized := map[int]bool{}
	for round := 0; ; round++ {
		tids, err := taskIDs(p.pid)
		if err != nil {
			return err
		}
		fresh := 0
		for _, tid := range tids {
			if seized[tid] {
				continue
			}
			fresh++
			var err error
			p.tracer.do(func() { err = p.seizeThread(tid) })
			if errors.Is(err, unix.ESRCH) {
				continue // exited meanwhile
			}
			if err != nil {
				if len(seized) == 0 && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)) {
					return fmt.Errorf("%w: %v", ErrPtraceDenied, err)
				}
				return fmt.Errorf("stopping thread %d: %w", tid, err)
			}
			seized[tid] = true
		}
		if fresh == 0 {
			break
		}
		if round > 100 {
			return errors.New("the target keeps creating threads; cannot stop it")
		}
	}
	return nil
}

func (p *seizedProcess) seizeThread(tid int) error {
	if err := ptrace(unix.PTRACE_SEIZE, tid, 0); err != nil {
		return err
	}
	t := p.threads[tid]
	if t == nil {
		t = &seizedThread{p: p, tid: tid}
		p.threads[tid] = t
	}
	t.seized, t.signal = true, 0
	if err := ptrace(unix.PTRACE_INTERRUPT, tid, 0); err != nil {
		return err
	}
	if err := p.waitStopped(t); err != nil {
		return err
	}
	var regs unix.PtraceRegs
	if err := unix.PtraceGetRegs(tid, &regs); err != nil {
		return err
	}
	t.regs = linutil.NewAMD64Registers(&linutil.AMD64PtraceRegs{
		R15: regs.R15, R14: regs.R14, R13: regs.R13, R12: regs.R12, Rbp: regs.Rbp, Rbx: regs.Rbx,
		R11: regs.R11, R10: regs.R10, R9: regs.R9, R8: regs.R8, Rax: regs.Rax, Rcx: regs.Rcx,
		Rdx: regs.Rdx, Rsi: regs.Rsi, Rdi: regs.Rdi, Orig_rax: regs.Orig_rax, Rip: regs.Rip,
		Cs: regs.Cs, Eflags: regs.Eflags, Rsp: regs.Rsp, Ss: regs.Ss, Fs_base: regs.Fs_base,
		Gs_base: regs.Gs_base, Ds: regs.Ds, Es: regs.Es, Fs: regs.Fs, Gs: regs.Gs,
	}, nil)
	return nil
}

// detach lets every seized thread go, redelivering a signal that one
// stopped with.
func (p *seizedProcess) detach() error {
	if p.tracer == nil {
		return nil
	}
	var errs []error
	p.tracer.do(func() {
		for tid, t := range p.threads {
			if !t.seized {
				continue
			}
			if err := ptrace(unix.PTRACE_DETACH, tid, uintptr(t.signal)); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("thread %d: %w", tid, err))
			}
			t.regs, t.seized, t.signal = nil, false, 0
		}
	})
	p.tracer.stop()
	p.tracer = nil
	return errors.Join(errs...)
}

// waitStopped waits until a seized thread is in its ptrace stop. It takes
// the stop's notification with wait4 when it can; it also watches the
// thread's state, in case another thread of this process took the
// notification (a waiter on a child process does, with __WALL semantics).
func (p *seizedProcess) waitStopped(t *seizedThread) error {
	deadline := time.Now().Add(stopTimeout)
	for {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(t.tid, &ws, unix.WALL|unix.WNOHANG, nil)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil && !errors.Is(err, unix.ECHILD):
			return err
		case wpid == t.tid && (ws.Exited() || ws.Signaled()):
			delete(p.threads, t.tid)
			t.seized = false
			return unix.ESRCH
		case wpid == t.tid && ws.Stopped():
			// Our interrupt shows as SIGTRAP with PTRACE_EVENT_STOP; any
			// other stop is a signal on its way in, delivered again on
			// detach.
			if sig := ws.StopSignal(); ws.TrapCause() != unix.PTRACE_EVENT_STOP && sig != unix.SIGTRAP {
				t.signal = int(sig)
			}
			return nil
		}
		state, err := threadState(p.pid, t.tid)
		if err != nil {
			return unix.ESRCH
		}
		if state == 't' {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("thread %d did not stop within %s (state %c)", t.tid, stopTimeout, state)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// stopTimeout bounds the wait for one thread to stop.
const stopTimeout = 5 * time.Second

// threadState is the one-letter state in /proc/PID/task/TID/stat.
func threadState(pid, tid int) (byte, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
	if err != nil {
		return 0, err
	}
	// pid (comm) S ...: comm may hold spaces and parentheses
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, fmt.Errorf("bad stat for thread %d", tid)
	}
	return b[i+2], nil
}

func ptrace(req, tid int, data uintptr) error {
	_, _, e := unix.Syscall6(unix.SYS_PTRACE, uintptr(req), uintptr(tid), 0, data, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

func taskIDs(pid int) ([]int, error) {
	ents, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "task"))
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, tid)
		}
	}
	return out, nil
}
