package main

import (
	"flag"
	"os"
	"strconv"
	"testing"
)

// commandTestParallel is how many command tests run at once unless
// -parallel says otherwise. Most of them wait rather than compute (a watch
// lasts its --for, a collector its pushes), so the default, GOMAXPROCS,
// would queue them behind each other on a small machine.
const commandTestParallel = 8

func TestMain(m *testing.M) {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		flag.Set("test.parallel", strconv.Itoa(commandTestParallel))
	}
	os.Exit(m.Run())
}
