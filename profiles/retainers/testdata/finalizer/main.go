// Command finalizer is a scan target whose memory is kept alive only by a
// finalizer's closure and by a cleanup's argument, for the retainers
// tests. It prints {"ready":true} once both are set, then waits.
package main

import (
	"fmt"
	"runtime"
	"time"
)

// owner is the object the finalizer and the cleanup are attached to.
type owner struct{ name string }

// finalizerPayload is held by the finalizer's closure only.
type finalizerPayload struct{ data []byte }

// cleanupPayload is the cleanup's argument, held by the cleanup only.
type cleanupPayload struct{ data []byte }

// owners keeps both owners alive, so neither the finalizer nor the
// cleanup ever runs.
var owners []*owner

func main() {
	setUp()
	runtime.GC()
	fmt.Println(`{"ready":true}`)
	for {
		time.Sleep(time.Hour) // a select{} alone would be a deadlock
	}
}

// setUp attaches the finalizer and the cleanup; out of main, so that no
// variable of main's frame still points at what they hold.
//
//go:noinline
func setUp() {
	withFinalizer := &owner{name: "finalized"}
	kept := &finalizerPayload{data: make([]byte, 6<<20)}
	runtime.SetFinalizer(withFinalizer, func(o *owner) { fmt.Println(o.name, len(kept.data)) })

	withCleanup := &owner{name: "cleaned"}
	runtime.AddCleanup(withCleanup, func(p *cleanupPayload) { fmt.Println(len(p.data)) }, &cleanupPayload{data: make([]byte, 3<<20)})

	owners = append(owners, withFinalizer, withCleanup)
}
