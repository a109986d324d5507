package leaks

import "encoding/binary"

// fill writes a deterministic pattern derived from seed into b, so that
// retained buffers are really touched (and really resident). It writes
// eight bytes a step (xorshift64): a byte a step was 13 % of the leaks
// package's test CPU, whose leaktest checks call the handlers in process.
func fill(b []byte, seed int) {
	x := uint64(seed)*0x9e3779b97f4a7c15 + 1
	next := func() uint64 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		return x
	}
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], next())
	}
	for ; i < len(b); i++ {
		b[i] = byte(next())
	}
}
