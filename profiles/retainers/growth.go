package retainers

import (
	"sort"
	"strings"
)

// ChainGrowth is how much one chain holds in two snapshots.
type ChainGrowth struct {
	Chain        []string `json:"chain"`
	BaseBytes    int64    `json:"base_bytes"`
	Bytes        int64    `json:"bytes"`
	DeltaBytes   int64    `json:"delta_bytes"`
	DeltaObjects int64    `json:"delta_objects"`
}

// Growth compares two snapshots of one process chain by chain, largest
// growth first; chains that did not grow are left out.
func Growth(base, cur []Chain) []ChainGrowth {
	key := func(c []string) string { return strings.Join(c, "\x00") }
	before := map[string]Chain{}
	for _, c := range base {
		before[key(c.Chain)] = c
	}
	var out []ChainGrowth
	for _, c := range cur {
		b := before[key(c.Chain)]
		if c.Bytes <= b.Bytes {
			continue
		}
		out = append(out, ChainGrowth{Chain: c.Chain, BaseBytes: b.Bytes, Bytes: c.Bytes,
			DeltaBytes: c.Bytes - b.Bytes, DeltaObjects: c.Objects - b.Objects})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].DeltaBytes > out[j].DeltaBytes })
	return out
}

// ChainNames reports whether a chain goes through a retainer named as a
// field, TYPE.FIELD (a hop holding a TYPE, then a hop through .FIELD), or
// as a global variable, PKG.VAR (the chain's root).
func ChainNames(chain []string, retainer string) bool {
	if len(chain) > 0 && chain[0] == retainer {
		return true
	}
	i := strings.LastIndexByte(retainer, '.')
	if i <= 0 {
		return false
	}
	typ, field := retainer[:i], "."+retainer[i+1:]
	for j := 0; j+1 < len(chain); j++ {
		holds := chain[j] == typ || strings.HasSuffix(chain[j], " "+typ)
		next := chain[j+1]
		if holds && (next == field || strings.HasPrefix(next, field+" ") || strings.HasPrefix(next, field+".") || strings.HasPrefix(next, field+"[")) {
			return true
		}
	}
	return false
}
