//go:build linux && !race

package scale

// raceEnabled: see rawRead.
const raceEnabled = false
