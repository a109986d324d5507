package testbin

import (
	"flag"
	"strconv"
)

// WaitingParallel lets n parallel tests run at once, or underRace when the
// test binary was built with -race, unless -parallel (-test.parallel) is
// given; 0 keeps the default, GOMAXPROCS. It is for packages whose
// parallel tests wait rather than compute (a watch lasts its --for
// whatever the CPU does, a collector its rounds): the default would queue
// them behind each other on a small machine while the CPU stays idle.
// Under -race the same tests compute several times more, and some
// packages' timing-bound checks need fewer at once there. Call it from
// TestMain, before m.Run; it parses the command line.
func WaitingParallel(n, underRace int) {
	if RaceEnabled {
		n = underRace
	}
	if !flag.Parsed() {
		flag.Parse()
	}
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given && n > 0 {
		flag.Set("test.parallel", strconv.Itoa(n))
	}
}
