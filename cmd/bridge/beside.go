package main

import (
	"context"
	"sync"
)

// beside is a component's Run loop (uploads, cluster, webhooks) running
// beside the server until stopped.
type beside struct {
	once   sync.Once
	cancel context.CancelFunc
	done   chan struct{} // closed when run has returned
}

// runBeside runs run (nothing when nil) on a goroutine of its own.
func runBeside(run func(context.Context)) *beside {
	b := &beside{cancel: func() {}, done: make(chan struct{})}
	if run == nil {
		close(b.done)
		return b
	}
	var ctx context.Context
	ctx, b.cancel = context.WithCancel(context.Background())
	go func() { defer close(b.done); run(ctx) }()
	return b
}

// stop cancels the run and waits for it to return, unless force is done
// first: then it returns errForced at once. Later calls return at once.
func (b *beside) stop(force context.Context) error {
	first := false
	b.once.Do(func() { first = true; b.cancel() })
	if !first {
		return nil
	}
	select {
	case <-b.done:
		return nil
	case <-force.Done():
		return errForced
	}
}
