package main

import (
	"os"
	"testing"

	"github.com/leaklab/leaklab/internal/testbin"
)

// commandTestParallel is how many command tests run at once unless
// -parallel says otherwise. Most of them wait rather than compute (a watch
// lasts its --for, a collector its pushes), so the default, GOMAXPROCS,
// would queue them behind each other on a small machine. Under -race,
// where everything computes several times more, eight, as before
// sixteen helped go test ./... (see docs/testing.md).
const commandTestParallel, commandTestParallelRace = 16, 8

func TestMain(m *testing.M) {
	testbin.WaitingParallel(commandTestParallel, commandTestParallelRace)
	os.Exit(m.Run())
}
