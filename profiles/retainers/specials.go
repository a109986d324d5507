package retainers

import (
	"debug/dwarf"
	"encoding/binary"
	"fmt"

	"github.com/go-delve/delve/pkg/dwarf/godwarf"
	"github.com/go-delve/delve/pkg/dwarf/reader"
)

// Kinds of the runtime's specials (runtime/mheap.go, _KindSpecial*): the
// records a span keeps about some of its objects. The same in every
// supported Go version.
const (
	kindSpecialFinalizer = 2
	kindSpecialProfile   = 4
	kindSpecialCleanup   = 7
	// maxProfStackDepth bounds an allocation stack (runtime/mprof.go).
	maxProfStackDepth = 1024
	// maxSpecials bounds how many specials a scan reads: a runaway list
	// (a torn read) must not keep the target stopped.
	maxSpecials = 1 << 21
)

// specialLayout is where the runtime keeps what the scan reads from
// specials, from the target's DWARF: runtime.special, specialprofile,
// specialfinalizer, specialCleanup (with its cleanupFn) and bucket.
type specialLayout struct {
	next, offset, kind *godwarf.StructField
	headerSize         int64
	profileBucket      int64 // specialprofile.b
	finalizerFn        int64 // specialfinalizer.fn
	finalizerOt        int64 // specialfinalizer.ot, the object's pointer type
	cleanupFn          int64 // specialCleanup.cleanup.fn
	cleanupArg         int64 // specialCleanup.cleanup.arg
	nstk               *godwarf.StructField
	bucketSize         int64 // the stack follows the bucket
}

// loadSpecialLayout reads the specials' layout from the target's types.
func loadSpecialLayout(findType func(string) godwarf.Type) (*specialLayout, error) {
	get := func(name string, fields ...string) (map[string]*godwarf.StructField, godwarf.Type, error) {
		t := findType(name)
		if t == nil {
			return nil, nil, fmt.Errorf("no %s in the target's DWARF", name)
		}
		f, err := fieldOffsets(t, fields...)
		return f, t, err
	}
	l := &specialLayout{}
	f, t, err := get("runtime.special", "next", "offset", "kind")
	if err != nil {
		return nil, err
	}
	l.next, l.offset, l.kind, l.headerSize = f["next"], f["offset"], f["kind"], t.Size()
	if f, _, err = get("runtime.specialprofile", "b"); err != nil {
		return nil, err
	}
	l.profileBucket = f["b"].ByteOffset
	if f, _, err = get("runtime.specialfinalizer", "fn", "ot"); err != nil {
		return nil, err
	}
	l.finalizerFn, l.finalizerOt = f["fn"].ByteOffset, f["ot"].ByteOffset
	if f, _, err = get("runtime.specialCleanup", "cleanup"); err != nil {
		return nil, err
	}
	cf, err := fieldOffsets(f["cleanup"].Type, "fn", "arg")
	if err != nil {
		return nil, err
	}
	l.cleanupFn = f["cleanup"].ByteOffset + cf["fn"].ByteOffset
	l.cleanupArg = f["cleanup"].ByteOffset + cf["arg"].ByteOffset
	if f, t, err = get("runtime.bucket", "nstk"); err != nil {
		return nil, err
	}
	l.nstk, l.bucketSize = f["nstk"], t.Size()
	return l, nil
}

// finalizerRoot is an object with a finalizer: the runtime keeps what
// the object points to (not the object itself) and the finalizer's
// closure alive.
type finalizerRoot struct {
	sp   *span
	base uint64
	fn   uint64 // *funcval
	ot   uint64 // *ptrtype: the type of the pointer SetFinalizer was given
}

// cleanupRoot is a cleanup (runtime.AddCleanup): its closure and its
// argument are kept alive, not the object it is attached to.
type cleanupRoot struct {
	fn, arg uint64
}

// sampledObject is a live object the heap profile sampled: the bucket
// of its allocation stack, its size and, once walked, the chain that
// holds it (0: none).
type sampledObject struct {
	bucket uint64
	size   int64
	node   int32
}

// specials is what the spans' specials say: the finalizer and cleanup
// roots, and the heap profile's sampled objects with their allocation
// stacks.
type specials struct {
	finalizers []finalizerRoot
	cleanups   []cleanupRoot
	sampled    map[uint64]int32 // object start → index in samples
	samples    []sampledObject
	stacks     map[uint64][]uint64 // bucket → return PCs
}

// readSpecials walks every in-use span's list of specials.
func readSpecials(mem memReader, h *heap, l *specialLayout) *specials {
	out := &specials{sampled: map[uint64]int32{}, stacks: map[uint64][]uint64{}}
	hdr := make([]byte, l.headerSize)
	var word [ptrSize]byte
	readWord := func(addr uint64) uint64 {
		if readFull(mem, word[:], addr) != nil {
			return 0
		}
		return binary.LittleEndian.Uint64(word[:])
	}
	read := 0
	for _, s := range h.spans {
		for sp := s.specials; sp != 0 && read < maxSpecials; read++ {
			if readFull(mem, hdr, sp) != nil {
				break
			}
			offset, kind := readUint(hdr, l.offset), readUint(hdr, l.kind)
			at := sp
			sp = readUint(hdr, l.next)
			idx := offset / s.elemSize
			if idx >= s.nelems {
				continue
			}
			base := s.start + idx*s.elemSize
			switch kind {
			case kindSpecialFinalizer:
				out.finalizers = append(out.finalizers, finalizerRoot{sp: s, base: base, fn: readWord(at + uint64(l.finalizerFn)), ot: readWord(at + uint64(l.finalizerOt))})
			case kindSpecialCleanup:
				out.cleanups = append(out.cleanups, cleanupRoot{fn: readWord(at + uint64(l.cleanupFn)), arg: readWord(at + uint64(l.cleanupArg))})
			case kindSpecialProfile:
				b := readWord(at + uint64(l.profileBucket))
				if b == 0 {
					continue
				}
				if _, ok := out.stacks[b]; !ok {
					out.stacks[b] = readStack(mem, l, b)
				}
				out.sampled[base] = int32(len(out.samples))
				out.samples = append(out.samples, sampledObject{bucket: b, size: int64(s.elemSize)})
			}
		}
	}
	return out
}

// readStack reads a profile bucket's stack: nstk return PCs right after
// the bucket (runtime/mprof.go, bucket.stk).
func readStack(mem memReader, l *specialLayout, b uint64) []uint64 {
	hdr := make([]byte, l.bucketSize)
	if readFull(mem, hdr, b) != nil {
		return nil
	}
	n := readUint(hdr, l.nstk)
	if n == 0 || n > maxProfStackDepth {
		return nil
	}
	buf := make([]byte, n*ptrSize)
	if readFull(mem, buf, b+uint64(l.bucketSize)) != nil {
		return nil
	}
	pcs := make([]uint64, n)
	for i := range pcs {
		pcs[i] = binary.LittleEndian.Uint64(buf[i*ptrSize:])
	}
	return pcs
}

// stackFunctions names every function of an allocation stack, inlined
// calls included (as pprof shows them), once each.
func (ti *typeIndex) stackFunctions(pcs []uint64, cache map[uint64][]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, pc := range pcs {
		names, ok := cache[pc]
		if !ok {
			names = ti.functionsAt(pc - 1) // a return address: the call is just before it
			cache[pc] = names
		}
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out
}

// functionsAt names the function at pc and the calls inlined there.
func (ti *typeIndex) functionsAt(pc uint64) []string {
	if ti.funcEntry == nil {
		return nil
	}
	name, entry := ti.funcEntry(pc)
	if name == "" {
		return nil
	}
	out := []string{name}
	off, ok := ti.subprograms[entry-ti.bias]
	if !ok {
		return out
	}
	tree, ok := ti.trees[off]
	if !ok {
		tree, _ = godwarf.LoadTree(off, ti.data, ti.bias)
		if ti.trees == nil {
			ti.trees = map[dwarf.Offset]*godwarf.Tree{}
		}
		ti.trees[off] = tree
	}
	if tree == nil {
		return out
	}
	for _, t := range reader.InlineStack(tree, pc) {
		if n, _ := t.Entry.Val(dwarf.AttrName).(string); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// allocations sums, per chain (walker node), the sampled bytes allocated
// under each function of their allocation stacks, and all its sampled
// bytes.
func (w *walker) allocations(sp *specials) (map[int32]map[string]int64, map[int32]int64) {
	out, total := map[int32]map[string]int64{}, map[int32]int64{}
	cache := map[uint64][]string{}
	for _, o := range sp.samples {
		if o.node <= 0 {
			continue
		}
		m := out[o.node]
		if m == nil {
			m = map[string]int64{}
			out[o.node] = m
		}
		total[o.node] += o.size
		for _, fn := range w.types.stackFunctions(sp.stacks[o.bucket], cache) {
			m[fn] += o.size
		}
	}
	return out, total
}

// rootSpecials starts chains at finalizers and cleanups: what an object
// with a finalizer points to and the finalizer's closure, a cleanup's
// closure and argument. Run after the typed walk, so they claim only
// what nothing else keeps alive.
func (w *walker) rootSpecials(sp *specials) int {
	roots := 0
	for _, f := range sp.finalizers {
		it := item{sp: f.sp, base: f.base, typ: w.typeFromHeap(f.sp, f.base)}
		if it.typ == nil { // a small object has no malloc header: the finalizer's own record of its type
			if pt, ok := godwarf.ResolveTypedef(w.types.dwarfType(f.ot)).(*godwarf.PtrType); ok && pt.Type != nil && pt.Type.Size() > 0 {
				it.typ = pt.Type
			}
		}
		root := w.child(0, "finalizer of "+w.objectName(it, f.sp, f.base))
		it.node = root
		if !f.sp.noscan {
			w.scan(it) // the object's references, not the object
		}
		if f.fn != 0 {
			w.follow(root, false, edge{ptr: f.fn, closure: true, path: ".fn"})
		}
		roots++
	}
	var word [ptrSize]byte
	for _, c := range sp.cleanups {
		name := "func"
		if c.fn != 0 && readFull(w.mem, word[:], c.fn) == nil && w.types.funcName != nil {
			if n := w.types.funcName(binary.LittleEndian.Uint64(word[:])); n != "" {
				name = shortType(n)
			}
		}
		root := w.child(0, "cleanup of "+name)
		if c.fn != 0 {
			w.follow(root, false, edge{ptr: c.fn, closure: true, path: ".fn"})
		}
		if c.arg != 0 {
			w.follow(root, false, edge{ptr: c.arg, path: ".arg"})
		}
		roots++
	}
	return roots
}
