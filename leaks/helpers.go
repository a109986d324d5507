package leaks

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// pkgPath prefixes culprit names: the fully qualified functions a profile shows.
const pkgPath = "github.com/leaklab/leaklab/leaks"

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// queryInt reads an integer query parameter, or def when absent or invalid.
func queryInt(r *http.Request, name string, def int) int {
	if v, err := strconv.Atoi(r.URL.Query().Get(name)); err == nil {
		return v
	}
	return def
}

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
