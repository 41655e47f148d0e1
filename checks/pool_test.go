package checks

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestGateLargestWaiterFirst: a freed slot goes to the costliest waiting job, whichever check
// it belongs to, and a cancelled waiter leaves the queue without taking a slot.
func TestGateLargestWaiterFirst(t *testing.T) {
	g := newGate(1)
	ctx := context.Background()
	if err := g.acquire(ctx, 5); err != nil {
		t.Fatal(err)
	}
	order := make(chan int64, 3)
	queued := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			g.mu.Lock()
			got := len(g.waiting)
			g.mu.Unlock()
			if got == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d waiters queued, want %d", got, n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for i, cost := range []int64{10, 300, 20} {
		go func() {
			if err := g.acquire(ctx, cost); err != nil {
				t.Error(err)
				return
			}
			order <- cost
			g.release()
		}()
		queued(i + 1)
	}
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- g.acquire(cctx, 1000) }()
	queued(4)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled acquire: %v, want context.Canceled", err)
	}
	queued(3)
	g.release()
	var got []int64
	for range 3 {
		got = append(got, <-order)
	}
	if got[0] != 300 || got[1] != 20 || got[2] != 10 {
		t.Fatalf("slots went to costs %v, want [300 20 10]", got)
	}
	// The last job's release follows its send: wait for it.
	if err := g.acquire(ctx, 1); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.free != 0 || len(g.waiting) != 0 {
		t.Fatalf("with the one slot taken again: %d free, %d waiting; want 0 and 0", g.free, len(g.waiting))
	}
}
