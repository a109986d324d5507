//go:build !race

package escapes

const raceEnabled = false
