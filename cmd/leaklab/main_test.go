package main

import (
	"os"
	"testing"

	"github.com/leaklab/leaklab/internal/testbin"
)

// commandTestParallel is how many command tests run at once unless
// -parallel says otherwise. Most of them wait rather than compute (a watch
// lasts its --for, a collector its pushes), so the default, GOMAXPROCS,
// would queue them behind each other on a small machine.
const commandTestParallel = 16

func TestMain(m *testing.M) {
	testbin.WaitingParallel(commandTestParallel)
	os.Exit(m.Run())
}
