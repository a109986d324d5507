package profiles

import (
	"fmt"
)

// decoded is the part of an encoded profile.proto that diffs need: the
// tables (strings, functions, locations) decoded, the samples kept as raw
// sub-slices of the buffer and walked later. It holds no per-sample
// objects, which is what makes diffing 200,000-stack profiles cheap
// compared with building github.com/google/pprof/profile's object graph.
type decoded struct {
	sampleTypes       []ValueType
	defaultSampleType string
	periodType        ValueType
	strs              [][]byte // string table, sub-slices of the buffer

	funcIndex map[uint64]int32 // function id → index into funcName/funcFile
	funcName  []int64          // string table indices
	funcFile  []int64

	locIndex map[uint64]int32 // location id → index into locStart
	// locDense is locIndex as a slice (-1 for no location) when the ids
	// are dense, as the Go runtime writes them: a map lookup per frame
	// was most of the time spent diffing big profiles.
	locDense []int32
	locStart []int32 // lines of location i are lines[locStart[i]:locStart[i+1]]
	lines    []lineRec

	samples [][]byte // raw Sample messages

	timeNanos int64 // when the profile was written, 0 when not recorded
}

// lineRec is one Line of a Location: innermost inlined call first.
type lineRec struct {
	fn   int32 // index into funcName, -1 for none
	line int64
}

// ValueType names a sample value and its unit, as in profile.proto.
type ValueType struct {
	Type string `json:"type"`
	Unit string `json:"unit"`
}

// Field numbers of profile.proto (github.com/google/pprof/proto/profile.proto).
const (
	fieldProfileSampleType        = 1
	fieldProfileSample            = 2
	fieldProfileLocation          = 4
	fieldProfileFunction          = 5
	fieldProfileStringTable       = 6
	fieldProfileTimeNanos         = 9
	fieldProfilePeriodType        = 11
	fieldProfileDefaultSampleType = 14

	fieldSampleLocationID = 1
	fieldSampleValue      = 2

	fieldLocationID   = 1
	fieldLocationLine = 4

	fieldLineFunctionID = 1
	fieldLineLine       = 2

	fieldFunctionID       = 1
	fieldFunctionName     = 2
	fieldFunctionFilename = 4

	fieldValueTypeType = 1
	fieldValueTypeUnit = 2
)

// maxStackFrames bounds one sample's stack, inlined frames included. Go
// records at most a few hundred frames; the bound stops a crafted profile
// from making each of its samples cost millions of steps.
const maxStackFrames = 1 << 14

// decodeProfile decodes the tables of an uncompressed profile.proto and
// checks that every reference resolves, refusing more than maxSamples
// samples. The returned value aliases buf.
func decodeProfile(buf []byte, maxSamples int) (*decoded, error) {
	d := &decoded{funcIndex: map[uint64]int32{}, locIndex: map[uint64]int32{}}
	var sampleTypeIdx [][2]int64
	var periodTypeIdx [2]int64
	var defaultIdx int64
	// Lines refer to functions by id, and functions may come after
	// locations, so lines keep the function id until the end.
	var lineFuncIDs []uint64
	r := wireReader{buf: buf}
	for !r.done() {
		field, wire, v, payload, err := r.next()
		if err != nil {
			return nil, err
		}
		switch field {
		case fieldProfileSampleType:
			vt, err := decodeValueType(wire, payload)
			if err != nil {
				return nil, err
			}
			sampleTypeIdx = append(sampleTypeIdx, vt)
		case fieldProfileSample:
			if wire != wireBytes {
				return nil, fmt.Errorf("malformed sample")
			}
			if len(d.samples) >= maxSamples {
				return nil, &LimitError{Kind: LimitSamples, Limit: int64(maxSamples)}
			}
			d.samples = append(d.samples, payload)
		case fieldProfileLocation:
			if wire != wireBytes {
				return nil, fmt.Errorf("malformed location")
			}
			id, err := d.decodeLocation(payload, &lineFuncIDs)
			if err != nil {
				return nil, err
			}
			if _, dup := d.locIndex[id]; dup || id == 0 {
				return nil, fmt.Errorf("malformed profile: location id %d is zero or repeated", id)
			}
			d.locIndex[id] = int32(len(d.locStart) - 1)
		case fieldProfileFunction:
			if wire != wireBytes {
				return nil, fmt.Errorf("malformed function")
			}
			if err := d.decodeFunction(payload); err != nil {
				return nil, err
			}
		case fieldProfileStringTable:
			if wire != wireBytes {
				return nil, fmt.Errorf("malformed string table")
			}
			d.strs = append(d.strs, payload)
		case fieldProfilePeriodType:
			vt, err := decodeValueType(wire, payload)
			if err != nil {
				return nil, err
			}
			periodTypeIdx = vt
		case fieldProfileDefaultSampleType:
			defaultIdx = int64(v)
		case fieldProfileTimeNanos:
			d.timeNanos = int64(v)
		}
	}
	d.locStart = append(d.locStart, int32(len(d.lines)))
	d.buildDenseLocIndex()
	for i, id := range lineFuncIDs {
		if id == 0 {
			d.lines[i].fn = -1
			continue
		}
		fi, ok := d.funcIndex[id]
		if !ok {
			return nil, fmt.Errorf("malformed profile: line refers to missing function %d", id)
		}
		d.lines[i].fn = fi
	}
	str := func(i int64) (string, error) {
		if i < 0 || i >= int64(len(d.strs)) {
			return "", fmt.Errorf("malformed profile: string index %d out of range", i)
		}
		return string(d.strs[i]), nil
	}
	if len(d.strs) == 0 || len(d.strs[0]) != 0 {
		return nil, fmt.Errorf("malformed profile: string table must start with the empty string")
	}
	for _, idx := range sampleTypeIdx {
		t, err := str(idx[0])
		if err != nil {
			return nil, err
		}
		u, err := str(idx[1])
		if err != nil {
			return nil, err
		}
		d.sampleTypes = append(d.sampleTypes, ValueType{Type: t, Unit: u})
	}
	var err error
	if d.periodType.Type, err = str(periodTypeIdx[0]); err != nil {
		return nil, err
	}
	if d.periodType.Unit, err = str(periodTypeIdx[1]); err != nil {
		return nil, err
	}
	if d.defaultSampleType, err = str(defaultIdx); err != nil {
		return nil, err
	}
	for i := range d.funcName {
		if _, err := str(d.funcName[i]); err != nil {
			return nil, err
		}
		if _, err := str(d.funcFile[i]); err != nil {
			return nil, err
		}
	}
	if len(d.sampleTypes) == 0 {
		return nil, fmt.Errorf("malformed profile: no sample types")
	}
	return d, nil
}

func (d *decoded) buildDenseLocIndex() {
	var maxID uint64
	for id := range d.locIndex {
		maxID = max(maxID, id)
	}
	if maxID > 2*uint64(len(d.locIndex))+1024 {
		return
	}
	d.locDense = make([]int32, maxID+1)
	for i := range d.locDense {
		d.locDense[i] = -1
	}
	for id, i := range d.locIndex {
		d.locDense[id] = i
	}
}

// location returns the index of location id.
func (d *decoded) location(id uint64) (int32, bool) {
	if d.locDense != nil {
		if id < uint64(len(d.locDense)) && d.locDense[id] >= 0 {
			return d.locDense[id], true
		}
		return 0, false
	}
	li, ok := d.locIndex[id]
	return li, ok
}

func decodeValueType(wire int, payload []byte) ([2]int64, error) {
	var vt [2]int64
	if wire != wireBytes {
		return vt, fmt.Errorf("malformed value type")
	}
	r := wireReader{buf: payload}
	for !r.done() {
		field, _, v, _, err := r.next()
		if err != nil {
			return vt, err
		}
		switch field {
		case fieldValueTypeType:
			vt[0] = int64(v)
		case fieldValueTypeUnit:
			vt[1] = int64(v)
		}
	}
	return vt, nil
}

func (d *decoded) decodeLocation(payload []byte, lineFuncIDs *[]uint64) (uint64, error) {
	var id uint64
	d.locStart = append(d.locStart, int32(len(d.lines)))
	r := wireReader{buf: payload}
	for !r.done() {
		field, wire, v, lp, err := r.next()
		if err != nil {
			return 0, err
		}
		switch field {
		case fieldLocationID:
			id = v
		case fieldLocationLine:
			if wire != wireBytes {
				return 0, fmt.Errorf("malformed line")
			}
			var fid uint64
			var line int64
			lr := wireReader{buf: lp}
			for !lr.done() {
				f, _, lv, _, err := lr.next()
				if err != nil {
					return 0, err
				}
				switch f {
				case fieldLineFunctionID:
					fid = lv
				case fieldLineLine:
					line = int64(lv)
				}
			}
			d.lines = append(d.lines, lineRec{line: line})
			*lineFuncIDs = append(*lineFuncIDs, fid)
		}
	}
	return id, nil
}

func (d *decoded) decodeFunction(payload []byte) error {
	var id uint64
	var name, file int64
	r := wireReader{buf: payload}
	for !r.done() {
		field, _, v, _, err := r.next()
		if err != nil {
			return err
		}
		switch field {
		case fieldFunctionID:
			id = v
		case fieldFunctionName:
			name = int64(v)
		case fieldFunctionFilename:
			file = int64(v)
		}
	}
	if _, dup := d.funcIndex[id]; dup || id == 0 {
		return fmt.Errorf("malformed profile: function id %d is zero or repeated", id)
	}
	d.funcIndex[id] = int32(len(d.funcName))
	d.funcName = append(d.funcName, name)
	d.funcFile = append(d.funcFile, file)
	return nil
}

// sampleCount returns how many samples the profile holds.
func (d *decoded) sampleCount() int { return len(d.samples) }

// forEachSample decodes each sample's location indices (leaf first) and
// its value at index vi, calling f with a reused slice.
func (d *decoded) forEachSample(vi int, f func(locs []int32, value int64) error) error {
	var locs []int32
	nvals := len(d.sampleTypes)
	for _, s := range d.samples {
		locs = locs[:0]
		var value int64
		nv := 0
		var lerr error
		r := wireReader{buf: s}
		for !r.done() {
			field, wire, v, payload, err := r.next()
			if err != nil {
				return fmt.Errorf("malformed profile: sample: %w", err)
			}
			switch field {
			case fieldSampleLocationID:
				err = forEachVarint(wire, v, payload, func(id uint64) {
					li, ok := d.location(id)
					if !ok {
						lerr = fmt.Errorf("malformed profile: sample refers to missing location %d", id)
					}
					locs = append(locs, li)
				})
			case fieldSampleValue:
				err = forEachVarint(wire, v, payload, func(x uint64) {
					if nv == vi {
						value = int64(x)
					}
					nv++
				})
			}
			if err != nil {
				return fmt.Errorf("malformed profile: sample: %w", err)
			}
			if lerr != nil {
				return lerr
			}
		}
		frames := 0
		for _, li := range locs {
			frames += int(d.locStart[li+1] - d.locStart[li])
		}
		if err := checkStack(len(locs), frames); err != nil {
			return err
		}
		if nv != nvals {
			return fmt.Errorf("malformed profile: sample has %d values for %d sample types", nv, nvals)
		}
		if err := f(locs, value); err != nil {
			return err
		}
	}
	return nil
}
