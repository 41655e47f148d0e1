package take

import (
	"context"
	"sync"
	"time"

	"github.com/firedrill/firedrill/restore/engine"
)

// guard bounds a freeze: max after Freeze is called (waiting for a lock already blocks
// writers), expire cancels the context the driver works under. The driver's error path then
// thaws (Close) before it reports, so the database is never held past max plus one round trip.
type guard struct {
	engine.Freezer
	max    time.Duration
	expire func()

	mu    sync.Mutex
	timer *time.Timer
}

func newGuard(f engine.Freezer, max time.Duration, expire func()) *guard {
	return &guard{Freezer: f, max: max, expire: expire}
}

func (g *guard) Freeze(ctx context.Context) error {
	g.mu.Lock()
	g.timer = time.AfterFunc(g.max, g.expire)
	g.mu.Unlock()
	return g.Freezer.Freeze(ctx)
}

func (g *guard) stop() {
	g.mu.Lock()
	if g.timer != nil {
		g.timer.Stop()
	}
	g.mu.Unlock()
}

// Thaw disarms the bound: a thaw that started in time must not be interrupted by it.
func (g *guard) Thaw(ctx context.Context) (*engine.Frozen, error) {
	g.stop()
	return g.Freezer.Thaw(ctx)
}

func (g *guard) Close(ctx context.Context) error {
	g.stop()
	return g.Freezer.Close(ctx)
}
