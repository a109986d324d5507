package retainers

import (
	"context"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/go-delve/delve/pkg/dwarf/godwarf"
	"github.com/go-delve/delve/pkg/proc"
)

// gDead is the runtime's _Gdead goroutine status.
const gDead = 6

// scanner finds the roots of a stopped target and walks the heap from
// them.
type scanner struct {
	ctx      context.Context
	tgt      *proc.Target
	types    *typeIndex
	maxDepth int
	// set by prepare
	allspans    uint64 // address of runtime.mheap_.allspans
	mspan       godwarf.Type
	moduleTypes uint64 // address of runtime.firstmoduledata.types
	// specials is the layout of the spans' specials; specialsOff says why
	// there is none.
	specials    *specialLayout
	specialsOff string
}

func (s *scanner) scan() (*Report, error) {
	mem := s.tgt.Memory()
	rep := &Report{PhaseSeconds: map[string]float64{}}
	phaseStart := time.Now()
	phase := func(name string) {
		now := time.Now()
		rep.PhaseSeconds[name] = now.Sub(phaseStart).Seconds()
		phaseStart = now
	}
	var hdr [3 * ptrSize]byte // the allspans slice header
	if err := readFull(mem, hdr[:], s.allspans); err != nil {
		return nil, fmt.Errorf("reading runtime.mheap_.allspans: %w", err)
	}
	h, err := loadHeap(mem, binary.LittleEndian.Uint64(hdr[:]), int(binary.LittleEndian.Uint64(hdr[ptrSize:])), s.mspan)
	if err != nil {
		return nil, err
	}
	if err := readFull(mem, hdr[:ptrSize], s.moduleTypes); err != nil {
		return nil, fmt.Errorf("reading runtime.firstmoduledata.types: %w", err)
	}
	s.types.typesBase = binary.LittleEndian.Uint64(hdr[:ptrSize])
	w := newWalker(s.ctx, mem, h, s.types, s.maxDepth)
	rep.HeapBytes = h.allocatedBytes()
	phase("spans")
	sp := &specials{}
	rep.SpecialsOff = s.specialsOff
	if s.specials != nil {
		sp = readSpecials(mem, h, s.specials)
		w.sampled, w.samples = sp.sampled, sp.samples
		rep.Finalizers, rep.Cleanups, rep.SampledObjects = len(sp.finalizers), len(sp.cleanups), len(sp.samples)
		phase("specials")
	}

	// Typed roots first, all of them before the walk, so that every
	// object is counted on its shortest typed chain; then the memory
	// whose types are unknown (stack slots no variable describes, the
	// data and bss sections) may claim what is left.
	gs, _, err := proc.GoroutinesInfo(s.tgt, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("listing goroutines: %w", err)
	}
	type frameRange struct {
		label  string
		lo, hi uint64
	}
	var unnamed []frameRange
	for _, g := range gs {
		if g.Status == gDead {
			continue
		}
		rep.Goroutines++
		frames, err := proc.GoroutineStacktrace(s.tgt, g, 1024, 0)
		if err != nil {
			continue
		}
		threadID := 0
		if g.Thread != nil {
			threadID = g.Thread.ThreadID()
		}
		for i, f := range frames {
			if f.Current.Fn == nil {
				continue
			}
			fn := shortType(f.Current.Fn.Name)
			if lo, hi := f.Regs.SP(), uint64(f.Regs.CFA); hi > lo && hi-lo < 1<<20 {
				unnamed = append(unnamed, frameRange{label: fn + " frame (no variable)", lo: lo, hi: hi})
			}
			if f.Inlined && i > 0 {
				continue // its variables belong to the physical frame listed before
			}
			fscope := proc.FrameToScope(s.tgt, mem, g, threadID, frames[i:]...)
			vars, err := fscope.Locals(0, "")
			if err != nil {
				continue
			}
			for _, v := range vars {
				s.rootVar(w, fscope, fn+" frame: "+v.Name, v)
				rep.Roots++
			}
		}
		if err := s.ctx.Err(); err != nil {
			return nil, err
		}
	}
	phase("goroutines")
	// Runtime globals (the scheduler's lists, the GC's work buffers) hold
	// much that a program's own globals hold too; the program's win.
	for pass := 0; pass < 2; pass++ {
		for _, g := range s.types.globals {
			if strings.HasPrefix(g.name, "runtime.") != (pass == 1) {
				continue
			}
			s.rootGlobal(w, g)
			rep.Roots++
		}
	}
	phase("globals")
	if err := w.run(); err != nil {
		return nil, err
	}
	phase("walk")
	// Finalizers and cleanups keep alive what nothing else does.
	rep.Roots += w.rootSpecials(sp)
	if err := w.run(); err != nil {
		return nil, err
	}
	phase("finalizers")

	for _, f := range unnamed {
		s.rootMemory(w, f.label, f.lo, f.hi-f.lo)
	}
	for _, sec := range dataSections(s.tgt.BinInfo().Images[0].Path) {
		s.rootMemory(w, "data/bss (no variable)", sec[0]+s.types.bias, sec[1])
	}
	if err := w.run(); err != nil {
		return nil, err
	}
	phase("untyped")
	rep.Chains, rep.BytesAttributed = w.chains(w.allocations(sp))
	return rep, nil
}

// prepare finds, before the target is stopped, where the runtime keeps
// what the scan reads first: the span table (runtime.mheap_.allspans),
// the types section (runtime.firstmoduledata.types), the layout of a
// type descriptor (internal/abi.Type); and hooks delve's function and
// type lookups into the type index.
func (s *scanner) prepare() error {
	bi := s.tgt.BinInfo()
	find := func(name string) (global, error) {
		for _, g := range s.types.globals {
			if g.name == name {
				return g, nil
			}
		}
		return global{}, fmt.Errorf("the target has no %s in its DWARF: unsupported runtime", name)
	}
	mheap, err := find("runtime.mheap_")
	if err != nil {
		return err
	}
	f, err := fieldOffsets(mheap.typ, "allspans")
	if err != nil {
		return err
	}
	st, ok := godwarf.ResolveTypedef(f["allspans"].Type).(*godwarf.SliceType)
	if !ok {
		return fmt.Errorf("runtime.mheap_.allspans is a %s, not a slice: unsupported runtime", f["allspans"].Type)
	}
	pt, ok := godwarf.ResolveTypedef(st.ElemType).(*godwarf.PtrType)
	if !ok {
		return fmt.Errorf("runtime.mheap_.allspans holds %s: unsupported runtime", st.ElemType)
	}
	s.allspans, s.mspan = mheap.addr+s.types.bias+uint64(f["allspans"].ByteOffset), pt.Type
	md, err := find("runtime.firstmoduledata")
	if err != nil {
		return err
	}
	if f, err = fieldOffsets(md.typ, "types"); err != nil {
		return err
	}
	s.moduleTypes = md.addr + s.types.bias + uint64(f["types"].ByteOffset)
	abiType, err := bi.FindType("internal/abi.Type")
	if err != nil {
		return fmt.Errorf("no internal/abi.Type in the target's DWARF: %w", err)
	}
	if f, err = fieldOffsets(abiType, "Str", "TFlag"); err != nil {
		return err
	}
	s.types.strOff, s.types.tflagOff = f["Str"].ByteOffset, f["TFlag"].ByteOffset
	s.types.funcName = func(pc uint64) string {
		if fn := bi.PCToFunc(pc); fn != nil {
			return fn.Name
		}
		return ""
	}
	s.types.findType = func(name string) godwarf.Type {
		t, err := bi.FindType(name)
		if err != nil {
			return nil
		}
		return t
	}
	s.types.funcEntry = func(pc uint64) (string, uint64) {
		if fn := bi.PCToFunc(pc); fn != nil {
			return fn.Name, fn.Entry
		}
		return "", 0
	}
	if s.specials, err = loadSpecialLayout(s.types.findType); err != nil {
		s.specialsOff = "the runtime's specials could not be read (" + err.Error() + "): no finalizer roots, no allocation sites"
	}
	return nil
}

// rootVar starts chains at one variable.
func (s *scanner) rootVar(w *walker, scope *proc.EvalScope, label string, v *proc.Variable) {
	if v == nil || v.Unreadable != nil || v.RealType == nil {
		return
	}
	root := w.child(0, label)
	emit := func(e edge) { w.follow(root, false, e) }
	if v.Flags&proc.VariableFakeAddress != 0 || v.Addr == 0 {
		// held in registers: only a pointer's value can be had, by loading it
		if v.Kind != reflect.Ptr && v.Kind != reflect.Map {
			return
		}
		lv, err := scope.EvalExpression(v.Name, proc.LoadConfig{FollowPointers: true})
		if err != nil || lv.Kind != reflect.Ptr || len(lv.Children) != 1 {
			return
		}
		c := lv.Children[0]
		emit(edge{ptr: c.Addr, typ: c.RealType})
		return
	}
	if sp, _ := w.heap.find(v.Addr); sp != nil {
		// an escaped local: the variable is itself a heap object
		emit(edge{ptr: v.Addr, typ: v.RealType})
		return
	}
	size := v.RealType.Size()
	if size <= 0 || size > 1<<30 || !w.hasPointers(v.RealType) {
		return
	}
	buf := make([]byte, size)
	if readFull(w.mem, buf, v.Addr) != nil {
		return
	}
	w.value(buf, v.RealType, "", false, emit)
}

// rootGlobal starts chains at a global variable.
func (s *scanner) rootGlobal(w *walker, g global) {
	size := g.typ.Size()
	if size > 1<<30 {
		return
	}
	buf := make([]byte, size)
	if readFull(w.mem, buf, g.addr+s.types.bias) != nil {
		return
	}
	root := w.child(0, shortType(g.name))
	w.value(buf, g.typ, "", false, func(e edge) { w.follow(root, false, e) })
}

// rootMemory starts chains at memory of unknown type.
func (s *scanner) rootMemory(w *walker, label string, addr, size uint64) {
	if size == 0 || size > 1<<30 {
		return
	}
	buf := make([]byte, size)
	if readFull(w.mem, buf, addr) != nil {
		return
	}
	w.conservative(w.child(0, label), buf)
}

// dataSections lists the address and size of the executable's .data and
// .bss, which hold the globals (the noptr sections hold no pointers).
func dataSections(exe string) [][2]uint64 {
	f, err := elf.Open(exe)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out [][2]uint64
	for _, name := range []string{".data", ".bss"} {
		if sec := f.Section(name); sec != nil && sec.Addr != 0 {
			out = append(out, [2]uint64{sec.Addr, sec.Size})
		}
	}
	return out
}
