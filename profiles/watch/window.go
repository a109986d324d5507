package watch

import (
	"sort"
	"time"
)

// DropBefore forgets every snapshot the detector was fed before t, so that
// a detector fed without end (the collector's) judges a sliding window.
// Every site's series is sampled at its kind's snapshot times, so the cut
// is one index per kind and costs O(sites); sites left with nothing but
// zeros are forgotten, so a stack seen once long ago does not stay for
// ever. The snapshot IDs a suspect names (FirstSnapshot) are not moved:
// the caller, which keeps the IDs, names the window's own.
func (d *Detector) DropBefore(t time.Time) {
	cut := t.Sub(d.start).Seconds()
	if d.total != nil && len(d.nodes.times) > 0 {
		// the whole heap is sampled at the nodes' times
		n := sort.SearchFloat64s(d.nodes.times, cut)
		d.total.points, d.total.allocs, d.total.allocObjs = d.total.points[min(n, len(d.total.points)):],
			d.total.allocs[min(n, len(d.total.allocs)):], d.total.allocObjs[min(n, len(d.total.allocObjs)):]
	}
	// A call-graph node's parts (partsFirst) keep their first snapshot's
	// values: parts list where a node's growth comes from, as of when the
	// node was first seen, which a sliding window may have left behind.
	for _, ser := range []*series{&d.heap, &d.gor, &d.nodes} {
		n := sort.SearchFloat64s(ser.times, cut)
		if n == 0 {
			continue
		}
		ser.times, ser.index = ser.times[n:], ser.index[min(n, len(ser.index)):]
		for k, st := range ser.sites {
			st.points = st.points[min(n, len(st.points)):]
			if st.allocs != nil {
				st.allocs, st.allocObjs = st.allocs[min(n, len(st.allocs)):], st.allocObjs[min(n, len(st.allocObjs)):]
			}
			if allZero(st.points) {
				delete(ser.sites, k)
			}
		}
	}
}

func allZero(pts []Point) bool {
	for i := len(pts) - 1; i >= 0; i-- { // a live site's last point is not zero
		if pts[i].V != 0 {
			return false
		}
	}
	return true
}
