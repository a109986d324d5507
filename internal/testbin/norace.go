//go:build !race

package testbin

// RaceEnabled says whether the test binary was built with -race.
const RaceEnabled = false
