//go:build !linux

package scale

import (
	"context"
	"sync"
)

// prepareEventLoops: the event loops use epoll, so elsewhere every load
// runs on the goroutine engine.
func prepareEventLoops(context.Context, *loadRun) func(context.Context, *sync.WaitGroup) {
	return nil
}
