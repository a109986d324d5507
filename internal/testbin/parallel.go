package testbin

import (
	"flag"
	"strconv"
)

// WaitingParallel lets n parallel tests run at once unless -parallel
// (-test.parallel) is given. It is for packages whose parallel tests wait
// rather than compute (a watch lasts its --for whatever the CPU does, a
// collector its rounds): the default, GOMAXPROCS, would queue them behind
// each other on a small machine while the CPU stays idle. Call it from
// TestMain, before m.Run; it parses the command line.
func WaitingParallel(n int) {
	if !flag.Parsed() {
		flag.Parse()
	}
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		flag.Set("test.parallel", strconv.Itoa(n))
	}
}
