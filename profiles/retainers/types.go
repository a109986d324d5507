package retainers

import (
	"debug/dwarf"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/go-delve/delve/pkg/dwarf/godwarf"
)

// typeIndex maps the runtime's type descriptors (*_type, as found in
// interfaces, malloc headers and large spans) to DWARF types. The Go
// linker records each DWARF type's runtime descriptor as an offset from
// the module's types section (DW_AT_go_runtime_type). Built from the
// executable before attaching, so it costs no pause.
type typeIndex struct {
	data      *dwarf.Data
	byOffset  map[uint64]dwarf.Offset
	cache     map[dwarf.Offset]godwarf.Type
	typesBase uint64 // runtime.firstmoduledata.types, set once attached
	// Offsets of abi.Type's Str (nameOff) and TFlag, set once attached.
	strOff, tflagOff int64
	names            map[uint64]string
	resolved         map[uint64]godwarf.Type
	// globals are the program's global variables; closures the captured
	// variables of each closure function, by its entry PC.
	globals  []global
	closures map[uint64]*closure
	// bias is where a position-independent executable was loaded.
	bias uint64
	// funcName and findType come from delve's view of the binary, set
	// once it is loaded: the function at a PC, a type by name.
	funcName func(pc uint64) string
	findType func(name string) godwarf.Type
	methods  map[uint64]*closure
	// subprograms are the DWARF entries of functions by entry PC, for
	// the inlined calls of a PC (allocation stacks).
	subprograms map[uint64]dwarf.Offset
	trees       map[dwarf.Offset]*godwarf.Tree
	// funcEntry names the function at a PC and gives its entry.
	funcEntry func(pc uint64) (string, uint64)
}

// closure is a closure function and the variables it captured.
type closure struct {
	name string
	vars []closureVar
}

// scopeEntry is an entry whose children are being read: a compile unit,
// a function (with its entry PC), a lexical block.
type scopeEntry struct {
	tag   dwarf.Tag
	entry uint64
	name  string
}

// global is a global variable with a static address.
type global struct {
	name    string
	addr    uint64
	typeOff dwarf.Offset
	typ     godwarf.Type
}

// closureVar is a variable a closure captured, at offset in its funcval.
type closureVar struct {
	name    string
	offset  int64
	typeOff dwarf.Offset
	typ     godwarf.Type // when known without reading typeOff
}

func loadTypeIndex(exe string) (*typeIndex, error) {
	f, err := elf.Open(exe)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d, err := f.DWARF()
	if err != nil {
		return nil, fmt.Errorf("reading DWARF: %w", err)
	}
	ti := &typeIndex{data: d, byOffset: map[uint64]dwarf.Offset{}, cache: map[dwarf.Offset]godwarf.Type{},
		names: map[uint64]string{}, resolved: map[uint64]godwarf.Type{}, closures: map[uint64]*closure{},
		subprograms: map[uint64]dwarf.Offset{}}
	// Walk every entry once, keeping the enclosing subprogram: global
	// variables are the compile units' direct children with a static
	// address; a closure's captured variables are the variables of its
	// function that carry DW_AT_go_closure_offset.
	var stack []scopeEntry
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil {
			return nil, fmt.Errorf("reading DWARF: %w", err)
		}
		if e == nil {
			break
		}
		if e.Tag == 0 {
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if off, ok := e.Val(godwarf.AttrGoRuntimeType).(uint64); ok {
			ti.byOffset[off] = e.Offset
		}
		if e.Tag == dwarf.TagVariable {
			ti.variable(e, stack)
		}
		if e.Children {
			lowpc, _ := e.Val(dwarf.AttrLowpc).(uint64)
			if e.Tag == dwarf.TagSubprogram && lowpc != 0 {
				ti.subprograms[lowpc] = e.Offset
			}
			name, _ := e.Val(dwarf.AttrName).(string)
			stack = append(stack, scopeEntry{tag: e.Tag, entry: lowpc, name: name})
		}
	}
	ti.resolveGlobals()
	return ti, nil
}

// variable records a global or a captured variable.
func (ti *typeIndex) variable(e *dwarf.Entry, stack []scopeEntry) {
	name, _ := e.Val(dwarf.AttrName).(string)
	typeOff, ok := e.Val(dwarf.AttrType).(dwarf.Offset)
	if !ok || name == "" {
		return
	}
	if len(stack) == 1 && stack[0].tag == dwarf.TagCompileUnit {
		loc, _ := e.Val(dwarf.AttrLocation).([]byte)
		if len(loc) == 9 && loc[0] == 0x03 { // DW_OP_addr
			ti.globals = append(ti.globals, global{name: name, addr: binary.LittleEndian.Uint64(loc[1:]), typeOff: typeOff})
		}
		return
	}
	off, ok := e.Val(godwarf.AttrGoClosureOffset).(int64)
	if !ok {
		return
	}
	// the innermost function: not an inlined call inside it
	for i := len(stack) - 1; i >= 0; i-- {
		switch stack[i].tag {
		case dwarf.TagInlinedSubroutine:
			return
		case dwarf.TagSubprogram:
			if pc := stack[i].entry; pc != 0 {
				c := ti.closures[pc]
				if c == nil {
					c = &closure{name: "closure " + shortType(stack[i].name)}
					ti.closures[pc] = c
				}
				c.vars = append(c.vars, closureVar{name: name, offset: off, typeOff: typeOff})
			}
			return
		}
	}
}

// resolveGlobals reads the types of the globals that can hold pointers,
// dropping the others (but runtime.allglen, for the pause estimate),
// before the target is stopped.
func (ti *typeIndex) resolveGlobals() {
	kept := ti.globals[:0]
	for _, g := range ti.globals {
		t, err := godwarf.ReadType(ti.data, 0, g.typeOff, ti.cache)
		if err != nil || t.Size() <= 0 || (!hasPointersDepth(t, 0) && g.name != "runtime.allglen") {
			continue
		}
		g.typ = t
		kept = append(kept, g)
	}
	ti.globals = kept
}

// closureAt returns the closure whose code starts at pc, or nil. A method
// value (x.M used as a func) is a closure of the wrapper M-fm that holds
// the receiver right after the code pointer.
func (ti *typeIndex) closureAt(pc uint64) *closure {
	if c := ti.closures[pc-ti.bias]; c != nil {
		return c
	}
	if ti.funcName == nil || ti.findType == nil {
		return nil
	}
	if c, ok := ti.methods[pc]; ok {
		return c
	}
	var c *closure
	if recv, ok := methodValueReceiver(ti.funcName(pc)); ok {
		if t := ti.findType(recv); t != nil {
			c = &closure{name: "method value " + shortType(strings.TrimSuffix(ti.funcName(pc), "-fm")),
				vars: []closureVar{{name: "receiver", offset: ptrSize, typ: t}}}
		}
	}
	if ti.methods == nil {
		ti.methods = map[uint64]*closure{}
	}
	ti.methods[pc] = c
	return c
}

// methodValueReceiver returns the receiver type of a method value
// wrapper: pkg/path.(*T).M-fm has *pkg/path.T, pkg/path.T.M-fm has
// pkg/path.T.
func methodValueReceiver(fn string) (string, bool) {
	name, ok := strings.CutSuffix(fn, "-fm")
	if !ok {
		return "", false
	}
	slash := strings.LastIndexByte(name, '/')
	dot := strings.IndexByte(name[slash+1:], '.')
	if dot < 0 {
		return "", false
	}
	pkg, rest := name[:slash+1+dot], name[slash+1+dot+1:]
	last := strings.LastIndexByte(rest, '.')
	if last < 0 {
		return "", false
	}
	recv := rest[:last]
	if r, ok := strings.CutPrefix(recv, "(*"); ok {
		return "*" + pkg + "." + strings.TrimSuffix(r, ")"), true
	}
	return pkg + "." + recv, true
}

// varType reads a variable's type.
func (ti *typeIndex) varType(off dwarf.Offset) godwarf.Type {
	t, err := godwarf.ReadType(ti.data, 0, off, ti.cache)
	if err != nil {
		return nil
	}
	return t
}

// dwarfType returns the DWARF type of the runtime type at addr, or nil.
func (ti *typeIndex) dwarfType(addr uint64) godwarf.Type {
	if addr == 0 || addr < ti.typesBase {
		return nil
	}
	if t, ok := ti.resolved[addr]; ok {
		return t
	}
	var t godwarf.Type
	if off, ok := ti.byOffset[addr-ti.typesBase]; ok {
		t, _ = godwarf.ReadType(ti.data, 0, off, ti.cache)
	}
	ti.resolved[addr] = t
	return t
}

// name returns the runtime's name for the type at addr ("*main.session"),
// or "" when it cannot be read.
func (ti *typeIndex) name(mem memReader, addr uint64) string {
	if addr == 0 || ti.typesBase == 0 {
		return ""
	}
	if n, ok := ti.names[addr]; ok {
		return n
	}
	var n string
	hdr := make([]byte, ti.strOff+4)
	if readFull(mem, hdr, addr) == nil {
		nameOff := uint64(binary.LittleEndian.Uint32(hdr[ti.strOff:]))
		tflag := hdr[ti.tflagOff]
		// A name is a flags byte, a uvarint length, then the bytes.
		b := make([]byte, 1+binary.MaxVarintLen64)
		if readFull(mem, b, ti.typesBase+nameOff) == nil {
			l, k := binary.Uvarint(b[1:])
			if k > 0 && l < 4096 {
				s := make([]byte, l)
				if readFull(mem, s, ti.typesBase+nameOff+1+uint64(k)) == nil {
					n = string(s)
					if tflag&2 != 0 && len(n) > 0 && n[0] == '*' { // TFlagExtraStar
						n = n[1:]
					}
				}
			}
		}
	}
	ti.names[addr] = n
	return n
}

var pkgPathRE = regexp.MustCompile(`[\w.\-~%]+/`)

// shortType drops import paths from a type name, keeping the package
// name: map[string]*github.com/leaklab/leaklab/leaks.entry becomes
// map[string]*leaks.entry.
func shortType(s string) string {
	return pkgPathRE.ReplaceAllString(s, "")
}

// typeName is the short name of a DWARF type. A map's group array (found
// by its malloc header) is named as the map it belongs to.
func typeName(t godwarf.Type) string {
	if t == nil {
		return "?"
	}
	n := t.Common().Name
	if n == "" {
		n = t.String()
	}
	if rest, ok := strings.CutPrefix(n, "noalg.map.group["); ok {
		n = "map[" + rest
	}
	return shortType(n)
}

// pieBias is where a position-independent executable was loaded: the
// entry point the kernel reports less the ELF header's; 0 otherwise.
func pieBias(pid int, exe string) uint64 {
	f, err := elf.Open(exe)
	if err != nil {
		return 0
	}
	defer f.Close()
	if f.Type != elf.ET_DYN {
		return 0
	}
	auxv, err := os.ReadFile(fmt.Sprintf("/proc/%d/auxv", pid))
	if err != nil {
		return 0
	}
	for i := 0; i+16 <= len(auxv); i += 16 {
		if binary.LittleEndian.Uint64(auxv[i:]) == 9 { // AT_ENTRY
			return binary.LittleEndian.Uint64(auxv[i+8:]) - f.Entry
		}
	}
	return 0
}

// goroutineCount reads runtime.allglen, the number of goroutines ever
// created and not freed, from the running target (a racy read is good
// enough for an estimate); 0 when it cannot.
func (ti *typeIndex) goroutineCount(mem memReader) int {
	for _, g := range ti.globals {
		if g.name == "runtime.allglen" {
			var b [8]byte
			if readFull(mem, b[:], g.addr+ti.bias) == nil {
				return int(min(binary.LittleEndian.Uint64(b[:]), 1<<30))
			}
		}
	}
	return 0
}
