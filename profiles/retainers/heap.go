package retainers

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/go-delve/delve/pkg/dwarf/godwarf"
)

// Runtime constants of the supported Go versions (see runtime/mheap.go and
// internal/runtime/gc): span states, the malloc header of small objects
// that hold pointers and are bigger than 512 bytes, the page size.
const (
	mSpanInUse             = 1
	mallocHeaderSize       = 8
	minSizeForMallocHeader = 512
	pageSize               = 8192
	ptrSize                = 8
)

// memReader reads the stopped target's memory.
type memReader interface {
	ReadMemory(buf []byte, addr uint64) (int, error)
}

func readFull(mem memReader, buf []byte, addr uint64) error {
	n, err := mem.ReadMemory(buf, addr)
	if err != nil {
		return err
	}
	if n != len(buf) {
		return fmt.Errorf("short read at %#x: %d of %d bytes", addr, n, len(buf))
	}
	return nil
}

// span is one in-use heap span, as the runtime's mspan describes it.
type span struct {
	start, end uint64
	elemSize   uint64
	nelems     uint64
	freeIndex  uint64
	allocCount uint64
	noscan     bool
	large      bool   // one object (size class 0)
	largeType  uint64 // *_type of a large object
	allocBits  uint64 // address of the allocation bitmap
	specials   uint64 // the span's first *runtime.special, 0 when none
	alloc      []byte // the bitmap, read on first use
	seen       []uint64
}

// header says whether the span's objects start with a malloc header: the
// object's *_type, with the object's data after it.
func (s *span) header() bool {
	return !s.noscan && !s.large && s.elemSize > minSizeForMallocHeader
}

// heap is the span table: every in-use span, sorted by address.
type heap struct {
	spans    []*span
	min, max uint64
}

func (h *heap) find(addr uint64) (*span, uint64) {
	if addr < h.min || addr >= h.max {
		return nil, 0
	}
	i := sort.Search(len(h.spans), func(i int) bool { return h.spans[i].end > addr })
	if i == len(h.spans) || addr < h.spans[i].start {
		return nil, 0
	}
	s := h.spans[i]
	idx := (addr - s.start) / s.elemSize
	if idx >= s.nelems {
		return nil, 0
	}
	return s, idx
}

// allocated says whether object idx of s is allocated: below freeindex,
// or its bit set in allocBits (runtime/mbitmap.go, isFree).
func (s *span) allocated(mem memReader, idx uint64) bool {
	if idx < s.freeIndex {
		return true
	}
	if s.alloc == nil {
		s.alloc = make([]byte, (s.nelems+7)/8)
		if s.allocBits == 0 || readFull(mem, s.alloc, s.allocBits) != nil {
			for i := range s.alloc {
				s.alloc[i] = 0xff // cannot tell: count it
			}
		}
	}
	return s.alloc[idx/8]&(1<<(idx%8)) != 0
}

// mark records object idx as reached and says whether it was new.
func (s *span) mark(idx uint64) bool {
	if s.seen == nil {
		s.seen = make([]uint64, (s.nelems+63)/64)
	}
	w, b := idx/64, uint64(1)<<(idx%64)
	if s.seen[w]&b != 0 {
		return false
	}
	s.seen[w] |= b
	return true
}

// fieldOffsets finds named fields of a runtime struct type.
func fieldOffsets(t godwarf.Type, names ...string) (map[string]*godwarf.StructField, error) {
	st, ok := godwarf.ResolveTypedef(t).(*godwarf.StructType)
	if !ok {
		return nil, fmt.Errorf("%s is not a struct", t)
	}
	out := map[string]*godwarf.StructField{}
	for _, f := range st.Field {
		out[f.Name] = f
	}
	for _, n := range names {
		if out[n] == nil {
			return nil, fmt.Errorf("%s has no field %s: unsupported runtime layout", st.StructName, n)
		}
	}
	return out, nil
}

// readUint reads a little-endian unsigned field of 1 to 8 bytes.
func readUint(b []byte, f *godwarf.StructField) uint64 {
	off, size := f.ByteOffset, f.Type.Size()
	switch size {
	case 1:
		return uint64(b[off])
	case 2:
		return uint64(binary.LittleEndian.Uint16(b[off:]))
	case 4:
		return uint64(binary.LittleEndian.Uint32(b[off:]))
	default:
		return binary.LittleEndian.Uint64(b[off:])
	}
}

// loadHeap reads runtime.mheap_.allspans: base is the slice's array, n its
// length, mspanType the runtime's mspan struct.
func loadHeap(mem memReader, base uint64, n int, mspanType godwarf.Type) (*heap, error) {
	fields, err := fieldOffsets(mspanType, "startAddr", "npages", "freeindex", "nelems", "allocCount", "spanclass", "state", "elemsize", "largeType", "allocBits")
	if err != nil {
		return nil, err
	}
	ptrs := make([]byte, n*ptrSize)
	if err := readFull(mem, ptrs, base); err != nil {
		return nil, fmt.Errorf("reading the span table: %w", err)
	}
	size := int(mspanType.Size())
	addrs := make([]uint64, n)
	for i := range addrs {
		addrs[i] = binary.LittleEndian.Uint64(ptrs[i*ptrSize:])
	}
	all := make([]byte, n*size)
	if br, ok := mem.(interface {
		readBatch(buf []byte, addrs []uint64, size int)
	}); ok {
		br.readBatch(all, addrs, size)
	} else {
		for i, a := range addrs {
			_ = readFull(mem, all[i*size:(i+1)*size], a)
		}
	}
	h := &heap{}
	for i := 0; i < n; i++ {
		buf := all[i*size : (i+1)*size]
		if addrs[i] == 0 {
			continue
		}
		// state is an mSpanStateBox whose first byte is the state.
		if buf[fields["state"].ByteOffset] != mSpanInUse {
			continue
		}
		s := &span{
			start:      readUint(buf, fields["startAddr"]),
			elemSize:   readUint(buf, fields["elemsize"]),
			nelems:     readUint(buf, fields["nelems"]),
			freeIndex:  readUint(buf, fields["freeindex"]),
			allocCount: readUint(buf, fields["allocCount"]),
			largeType:  readUint(buf, fields["largeType"]),
			allocBits:  readUint(buf, fields["allocBits"]),
		}
		sc := readUint(buf, fields["spanclass"])
		s.noscan = sc&1 == 1
		s.large = sc>>1 == 0
		s.end = s.start + readUint(buf, fields["npages"])*pageSize
		if s.elemSize == 0 || s.end <= s.start {
			continue
		}
		if s.large {
			s.nelems = 1
		}
		if f := fields["specials"]; f != nil {
			s.specials = readUint(buf, f)
		}
		h.spans = append(h.spans, s)
	}
	if len(h.spans) == 0 {
		return nil, fmt.Errorf("no in-use heap spans found: unsupported runtime layout")
	}
	sort.Slice(h.spans, func(i, j int) bool { return h.spans[i].start < h.spans[j].start })
	h.min, h.max = h.spans[0].start, h.spans[len(h.spans)-1].end
	return h, nil
}

// allocatedBytes is the heap the runtime counts as allocated: live
// objects plus garbage not yet swept, like MemStats.HeapAlloc.
func (h *heap) allocatedBytes() uint64 {
	var n uint64
	for _, s := range h.spans {
		n += s.allocCount * s.elemSize
	}
	return n
}
