package leaks

// fill writes a deterministic pattern derived from seed into b, so that
// retained buffers are really touched (and really resident).
func fill(b []byte, seed int) {
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
}
