package retainers

import (
	"context"
	"encoding/binary"
	"strings"

	"github.com/go-delve/delve/pkg/dwarf/godwarf"
)

// node is one reference chain: its parent chain plus one more hop. Its
// bytes and objects are the heap objects first reached through exactly
// this chain (each object counts once, on its shortest chain).
type node struct {
	parent   int32
	label    string
	depth    int
	bytes    int64
	objects  int64
	children map[string]int32
}

// item is a reached heap object still to scan.
type item struct {
	sp   *span
	base uint64 // object start (before any malloc header)
	// addr/typ say how the object is typed: typ at addr, repeated to the
	// object's end when addr is where the object's data starts (an array
	// or a new(T)). typ nil: scanned conservatively.
	addr uint64
	typ  godwarf.Type
	node int32
	// mapPart marks a map's own tables and groups: references found in
	// them are the map's keys and values, and the tables' bytes belong to
	// the map.
	mapPart bool
	closure *closure
}

// walker does the breadth-first walk from the roots.
type walker struct {
	ctx      context.Context
	mem      memReader
	heap     *heap
	types    *typeIndex
	nodes    []node
	queue    []item
	maxDepth int
	steps    int
	err      error
	buf      []byte
	// pointerful caches hasPointers by type.
	pointerful map[godwarf.Type]bool
	// sampled are the objects the heap profile sampled (specials.go), by
	// object start, whose chain the walk records.
	sampled map[uint64]int32
	samples []sampledObject
}

func newWalker(ctx context.Context, mem memReader, h *heap, ti *typeIndex, maxDepth int) *walker {
	return &walker{ctx: ctx, mem: mem, heap: h, types: ti, maxDepth: maxDepth, pointerful: map[godwarf.Type]bool{},
		nodes: []node{{parent: -1, label: "", children: map[string]int32{}}}}
}

// child returns the chain of parent plus label. Past the depth limit the
// chain stops growing and deeper objects count on its last hop.
func (w *walker) child(parent int32, label string) int32 {
	p := &w.nodes[parent]
	if p.depth >= w.maxDepth {
		return parent
	}
	if id, ok := p.children[label]; ok {
		return id
	}
	id := int32(len(w.nodes))
	p.children[label] = id
	w.nodes = append(w.nodes, node{parent: parent, label: label, depth: p.depth + 1, children: map[string]int32{}})
	return id
}

// edge is one reference found while scanning: a pointer, the type it
// points to when known, and the path from the holder to the pointer.
type edge struct {
	ptr  uint64
	typ  godwarf.Type // pointee type; nil when unknown
	path string
	// viaMap: the pointer is a map's internal table or group pointer.
	viaMap bool
	// mapHeader: typ is a map's header; the object is a map.
	mapHeader bool
	// closure: ptr is a funcval, typed by the captured variables of its
	// function.
	closure bool
	// name, when set, names the object in the chain instead of typ
	// (a slice's backing array is "[]T", not "T").
	name string
}

// follow reaches the object ptr points into, once.
func (w *walker) follow(from int32, inMap bool, e edge) {
	if inMap && !strings.HasPrefix(e.path, "[") {
		e.viaMap = true // a table or group of the map: not its keys or values
	}
	s, idx := w.heap.find(e.ptr)
	if s == nil || !s.allocated(w.mem, idx) || !s.mark(idx) {
		return
	}
	base := s.start + idx*s.elemSize
	dataStart := base
	if s.header() {
		dataStart += mallocHeaderSize
	}
	// The object is scanned whole, as the GC does, whatever part of it the
	// pointer points at. A pointer a whole number of T from the start is
	// taken for an array of T (a slice's backing array, maybe resliced, or
	// a new(T)); any other pointer into it leaves the type to the runtime's
	// record of the object (malloc header, large span), or to a
	// conservative scan.
	it := item{sp: s, base: base, addr: dataStart, mapPart: e.viaMap || e.mapHeader}
	if size := typeSize(e.typ); size > 0 && e.ptr >= dataStart && (e.ptr-dataStart)%uint64(size) == 0 {
		it.typ = e.typ
	} else {
		it.typ = w.typeFromHeap(s, base)
	}
	if e.name == "" && e.typ != nil {
		e.name = typeName(e.typ)
	}
	if e.closure {
		var pc [8]byte
		if readFull(w.mem, pc[:], e.ptr) == nil {
			it.closure = w.types.closureAt(binary.LittleEndian.Uint64(pc[:]))
		}
		e.name = "func"
		if it.closure != nil {
			e.name = it.closure.name
		}
	}
	var label string
	switch {
	case e.viaMap:
		it.node = from // a map's tables are the map
	case e.name != "":
		label = joinLabel(e.path, e.name)
	default:
		label = joinLabel(e.path, w.objectName(it, s, base))
	}
	if !e.viaMap {
		it.node = w.child(from, label)
	}
	n := &w.nodes[it.node]
	n.bytes += int64(s.elemSize)
	n.objects++
	if len(w.sampled) > 0 {
		if i, ok := w.sampled[base]; ok {
			w.samples[i].node = it.node
		}
	}
	if !s.noscan {
		w.queue = append(w.queue, it)
	}
}

func typeSize(t godwarf.Type) int64 {
	if t == nil {
		return 0
	}
	return t.Size()
}

// typeFromHeap is the type the runtime recorded for an object: the malloc
// header of a small object, the span's largeType for a large one.
func (w *walker) typeFromHeap(s *span, base uint64) godwarf.Type {
	if t := w.types.dwarfType(w.rtype(s, base)); t != nil {
		return t
	}
	return nil
}

func (w *walker) rtype(s *span, base uint64) uint64 {
	switch {
	case s.large:
		return s.largeType
	case s.header():
		var b [8]byte
		if readFull(w.mem, b[:], base) == nil {
			return binary.LittleEndian.Uint64(b[:])
		}
	}
	return 0
}

func (w *walker) objectName(it item, s *span, base uint64) string {
	if it.typ != nil {
		return typeName(it.typ)
	}
	if n := w.types.name(w.mem, w.rtype(s, base)); n != "" {
		return shortType(n)
	}
	if s.noscan {
		return "(no pointers)"
	}
	return "(untyped)"
}

func joinLabel(path, typ string) string {
	if path == "" {
		return typ
	}
	return path + " " + typ
}

// run scans queued objects until none is left.
func (w *walker) run() error {
	for len(w.queue) > 0 {
		it := w.queue[0]
		w.queue = w.queue[1:]
		if w.steps++; w.steps%4096 == 0 {
			if err := w.ctx.Err(); err != nil {
				return err
			}
		}
		w.scan(it)
	}
	w.queue = nil
	return nil
}

func (w *walker) scan(it item) {
	s := it.sp
	end := it.base + s.elemSize
	if s.large {
		end = s.end
	}
	dataStart := it.base
	if s.header() {
		dataStart += mallocHeaderSize
	}
	it.addr = dataStart
	n := end - it.addr
	if uint64(cap(w.buf)) < n {
		w.buf = make([]byte, n)
	}
	buf := w.buf[:n]
	if readFull(w.mem, buf, it.addr) != nil {
		return
	}
	if it.closure != nil {
		emit := func(e edge) { w.follow(it.node, false, e) }
		for _, v := range it.closure.vars {
			t := v.typ
			if t == nil {
				t = w.types.varType(v.typeOff)
			}
			if t == nil || v.offset < 0 || v.offset+t.Size() > int64(len(buf)) {
				continue
			}
			w.value(buf[v.offset:v.offset+t.Size()], t, "."+strings.TrimPrefix(v.name, "&"), false, emit)
		}
		return
	}
	if it.typ == nil || it.typ.Size() <= 0 {
		w.conservative(it.node, buf)
		return
	}
	// Repeat the type over the object: arrays behind slices and map
	// groups are allocated that way, and a single value's size-class tail
	// is zeroed.
	size := uint64(it.typ.Size())
	count := n / size
	emit := func(e edge) { w.follow(it.node, it.mapPart, e) }
	for i := uint64(0); i < count && (i+1)*size <= n; i++ {
		w.value(buf[i*size:(i+1)*size], it.typ, "", it.mapPart, emit)
	}
}

// conservative treats every aligned word that points into an allocated
// heap object as a reference, for memory whose type is unknown.
func (w *walker) conservative(from int32, buf []byte) {
	for off := 0; off+ptrSize <= len(buf); off += ptrSize {
		p := binary.LittleEndian.Uint64(buf[off:])
		if p >= w.heap.min && p < w.heap.max {
			w.follow(from, false, edge{ptr: p})
		}
	}
}

// value walks one typed value held in b and emits the references in it.
// path is the field path from the holding object; inMap says b is part of
// a map's internals (header, table, group).
func (w *walker) value(b []byte, t godwarf.Type, path string, inMap bool, emit func(edge)) {
	if !w.hasPointers(t) {
		return
	}
	word := func(off int64) uint64 {
		if off+ptrSize > int64(len(b)) {
			return 0
		}
		return binary.LittleEndian.Uint64(b[off:])
	}
	switch t := t.(type) {
	case *godwarf.TypedefType:
		w.value(b, t.Type, path, inMap, emit)
	case *godwarf.PtrType:
		e := edge{ptr: word(0), path: path}
		if t.Type != nil && t.Type.Size() > 0 {
			e.typ = t.Type // else unsafe.Pointer: the object is scanned conservatively
		}
		emit(e)
	case *godwarf.MapType:
		hdr, _ := godwarf.ResolveTypedef(t.TypedefType.Type).(*godwarf.PtrType)
		e := edge{ptr: word(0), path: path, mapHeader: true, name: typeName(t)}
		if hdr != nil {
			e.typ = hdr.Type
		}
		emit(e)
	case *godwarf.ChanType:
		emit(edge{ptr: word(0), path: path})
	case *godwarf.FuncType:
		emit(edge{ptr: word(0), path: path, closure: true})
	case *godwarf.StringType:
		emit(edge{ptr: word(0), path: path, name: "string"})
	case *godwarf.SliceType:
		emit(edge{ptr: word(0), typ: t.ElemType, path: path, name: typeName(t)})
	case *godwarf.InterfaceType:
		w.iface(b, t, path, emit)
	case *godwarf.ArrayType:
		size := t.Type.Size()
		if size <= 0 {
			return
		}
		for i := int64(0); i < t.Count && (i+1)*size <= int64(len(b)); i++ {
			w.value(b[i*size:(i+1)*size], t.Type, path+"[]", inMap, emit)
		}
	case *godwarf.StructType:
		w.structValue(b, t, path, inMap, emit)
	}
}

func (w *walker) structValue(b []byte, t *godwarf.StructType, path string, inMap bool, emit func(edge)) {
	if inMap || strings.HasPrefix(t.StructName, "noalg.map.group[") {
		if w.mapInternals(b, t, path, emit) {
			return
		}
	}
	for _, f := range t.Field {
		end := f.ByteOffset + f.Type.Size()
		if f.ByteOffset < 0 || end > int64(len(b)) {
			continue
		}
		fp := path + "." + f.Name
		if f.Embedded {
			fp = path
		}
		w.value(b[f.ByteOffset:end], f.Type, fp, false, emit)
	}
}

// mapInternals walks the runtime's swiss-table map structures (Go 1.24
// and later): the header's directory, a table's groups, a group's slots.
// It reports false for any other struct.
func (w *walker) mapInternals(b []byte, t *godwarf.StructType, path string, emit func(edge)) bool {
	fields := map[string]*godwarf.StructField{}
	for _, f := range t.Field {
		fields[f.Name] = f
	}
	field := func(name string) []byte {
		f := fields[name]
		end := f.ByteOffset + f.Type.Size()
		if end > int64(len(b)) {
			return nil
		}
		return b[f.ByteOffset:end]
	}
	switch {
	case fields["dirPtr"] != nil && fields["dirLen"] != nil: // the map header
		dirPtr := binary.LittleEndian.Uint64(field("dirPtr"))
		dirLen := readUint(b, fields["dirLen"])
		tablePP, _ := godwarf.ResolveTypedef(fields["dirPtr"].Type).(*godwarf.PtrType)
		if tablePP == nil {
			return false
		}
		if dirLen > 0 {
			// *[dirLen]*table: the directory
			emit(edge{ptr: dirPtr, typ: tablePP.Type, path: path, viaMap: true})
			return true
		}
		// a small map: dirPtr is one group
		emit(edge{ptr: dirPtr, typ: groupType(tablePP), path: path, viaMap: true})
		return true
	case fields["groups"] != nil && fields["index"] != nil: // a table
		groups, _ := godwarf.ResolveTypedef(fields["groups"].Type).(*godwarf.StructType)
		if groups == nil {
			return false
		}
		gb := field("groups")
		for _, f := range groups.Field {
			if f.Name == "data" && gb != nil {
				if pt, ok := godwarf.ResolveTypedef(f.Type).(*godwarf.PtrType); ok {
					emit(edge{ptr: binary.LittleEndian.Uint64(gb[f.ByteOffset:]), typ: pt.Type, path: path, viaMap: true})
				}
			}
		}
		return true
	case fields["ctrl"] != nil && (fields["slots"] != nil || fields["keys"] != nil): // a group
		emitPart := func(bb []byte, ft godwarf.Type, part string) {
			w.value(bb, ft, path+part, false, emit)
		}
		if fields["slots"] != nil {
			slots, _ := godwarf.ResolveTypedef(fields["slots"].Type).(*godwarf.ArrayType)
			sb := field("slots")
			if slots == nil || sb == nil {
				return false
			}
			slot, _ := godwarf.ResolveTypedef(slots.Type).(*godwarf.StructType)
			size := slots.Type.Size()
			if slot == nil || size <= 0 {
				return false
			}
			for i := int64(0); (i+1)*size <= int64(len(sb)); i++ {
				one := sb[i*size : (i+1)*size]
				for _, f := range slot.Field {
					part := "[value]"
					if f.Name == "key" {
						part = "[key]"
					}
					end := f.ByteOffset + f.Type.Size()
					if end <= int64(len(one)) {
						emitPart(one[f.ByteOffset:end], f.Type, part)
					}
				}
			}
			return true
		}
		if kb := field("keys"); kb != nil {
			emitPart(kb, fields["keys"].Type, "[key]")
		}
		if eb := fields["elems"]; eb != nil {
			if bb := field("elems"); bb != nil {
				emitPart(bb, eb.Type, "[value]")
			}
		}
		return true
	}
	return false
}

// groupType finds a map's group type from its table type (**table):
// table.groups.data is *group.
func groupType(tablePP *godwarf.PtrType) godwarf.Type {
	tp, _ := godwarf.ResolveTypedef(tablePP.Type).(*godwarf.PtrType)
	if tp == nil {
		return nil
	}
	table, _ := godwarf.ResolveTypedef(tp.Type).(*godwarf.StructType)
	if table == nil {
		return nil
	}
	for _, f := range table.Field {
		if f.Name != "groups" {
			continue
		}
		groups, _ := godwarf.ResolveTypedef(f.Type).(*godwarf.StructType)
		if groups == nil {
			return nil
		}
		for _, g := range groups.Field {
			if g.Name == "data" {
				if pt, ok := godwarf.ResolveTypedef(g.Type).(*godwarf.PtrType); ok {
					return pt.Type
				}
			}
		}
	}
	return nil
}

// iface follows an interface's data word, typed by its dynamic type when
// the type descriptor maps to DWARF.
func (w *walker) iface(b []byte, t *godwarf.InterfaceType, path string, emit func(edge)) {
	if len(b) < 2*ptrSize {
		return
	}
	tab := binary.LittleEndian.Uint64(b)
	data := binary.LittleEndian.Uint64(b[ptrSize:])
	if data == 0 {
		return
	}
	rtype := tab
	if st, ok := godwarf.ResolveTypedef(t.TypedefType.Type).(*godwarf.StructType); ok && len(st.Field) > 0 && st.Field[0].Name == "tab" && tab != 0 {
		// itab: Inter *interfacetype, then Type *_type
		var word [8]byte
		if readFull(w.mem, word[:], tab+ptrSize) != nil {
			emit(edge{ptr: data, path: path})
			return
		}
		rtype = binary.LittleEndian.Uint64(word[:])
	}
	dyn := w.types.dwarfType(rtype)
	if dyn == nil {
		emit(edge{ptr: data, path: path})
		return
	}
	switch d := godwarf.ResolveTypedef(dyn).(type) {
	case *godwarf.PtrType, *godwarf.MapType, *godwarf.ChanType, *godwarf.FuncType:
		// pointer-shaped: the data word is the value itself
		var v [8]byte
		binary.LittleEndian.PutUint64(v[:], data)
		w.value(v[:], dyn, path, false, emit)
		_ = d
	default:
		emit(edge{ptr: data, typ: dyn, path: path})
	}
}

// hasPointers says whether a value of type t can hold a heap pointer.
func (w *walker) hasPointers(t godwarf.Type) bool {
	if v, ok := w.pointerful[t]; ok {
		return v
	}
	v := hasPointersDepth(t, 0)
	w.pointerful[t] = v
	return v
}

func hasPointersDepth(t godwarf.Type, depth int) bool {
	if depth > 64 {
		return true
	}
	switch t := t.(type) {
	case *godwarf.TypedefType:
		return hasPointersDepth(t.Type, depth+1)
	case *godwarf.PtrType, *godwarf.MapType, *godwarf.ChanType, *godwarf.FuncType, *godwarf.StringType, *godwarf.SliceType, *godwarf.InterfaceType:
		return true
	case *godwarf.ArrayType:
		return t.Count > 0 && hasPointersDepth(t.Type, depth+1)
	case *godwarf.StructType:
		for _, f := range t.Field {
			if hasPointersDepth(f.Type, depth+1) {
				return true
			}
		}
		return false
	case *godwarf.ParametricType:
		return true
	}
	return false
}
