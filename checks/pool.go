package checks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// forEach runs fn over jobs with at most env.Parallel connections to database, each worker on
// its own connection. Each job holds one of the env's query slots while it runs (see
// Env.slots), so checks run side by side share env.Parallel running queries, the costliest
// waiting job first. A worker whose connection breaks reconnects once per job; fn's errors are
// its own.
func forEach[J any](ctx context.Context, env *Env, database string, jobs []J, cost func(J) int64, fn func(ctx context.Context, conn *pgx.Conn, job J)) error {
	n := max(1, env.Parallel)
	if n > len(jobs) {
		n = len(jobs)
	}
	gate := env.slots()
	work := make(chan J)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var connErr error
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var conn *pgx.Conn
			defer func() {
				if conn != nil {
					conn.Close(context.WithoutCancel(ctx))
				}
			}()
			for job := range work {
				if conn == nil || conn.IsClosed() {
					c, err := env.DB.Connect(ctx, database)
					if err != nil {
						mu.Lock()
						connErr = errors.Join(connErr, fmt.Errorf("while connecting to database %s: %w", database, err))
						mu.Unlock()
						continue
					}
					conn = c
				}
				if err := gate.acquire(ctx, cost(job)); err != nil {
					continue // cancelled: forEach returns ctx's error
				}
				fn(ctx, conn, job)
				gate.release()
			}
		}()
	}
feed:
	for _, j := range jobs {
		select {
		case work <- j:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	return connErr
}

// gate bounds the queries running at once over every check sharing it. When a slot frees, the
// waiting job with the highest cost takes it: checks run side by side keep the largest-first
// order across all their work, so the longest query (a big index's heapallindexed pass) starts
// first and the others fill the remaining slots around it.
type gate struct {
	mu      sync.Mutex
	free    int
	waiting []*waiter
}

type waiter struct {
	cost  int64
	ready chan struct{}
}

func newGate(n int) *gate { return &gate{free: max(1, n)} }

func (g *gate) acquire(ctx context.Context, cost int64) error {
	g.mu.Lock()
	if g.free > 0 && len(g.waiting) == 0 {
		g.free--
		g.mu.Unlock()
		return nil
	}
	w := &waiter{cost: cost, ready: make(chan struct{})}
	g.waiting = append(g.waiting, w)
	g.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		g.mu.Lock()
		defer g.mu.Unlock()
		if i := slices.Index(g.waiting, w); i >= 0 {
			g.waiting = slices.Delete(g.waiting, i, i+1)
			return ctx.Err()
		}
		// Handed a slot as the context ended: give it back.
		g.releaseLocked()
		return ctx.Err()
	}
}

func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.releaseLocked()
}

func (g *gate) releaseLocked() {
	if len(g.waiting) == 0 {
		g.free++
		return
	}
	best := 0
	for i, w := range g.waiting {
		if w.cost > g.waiting[best].cost {
			best = i
		}
	}
	w := g.waiting[best]
	g.waiting = slices.Delete(g.waiting, best, best+1)
	close(w.ready)
}

func pgMessage(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		m := pgErr.Message
		if pgErr.Detail != "" {
			m += " (" + pgErr.Detail + ")"
		}
		return m
	}
	return err.Error()
}

// pgError is an error that reads as "what was done: the server's message (detail)" and still
// unwraps to the server's error, so Damage and CouldNotRead can classify it.
type pgError struct {
	msg string
	err error
}

func (e *pgError) Error() string { return e.msg }
func (e *pgError) Unwrap() error { return e.err }

// wrapPG wraps a server error with what was being done, in the server's own words.
func wrapPG(err error, format string, a ...any) error {
	return &pgError{msg: fmt.Sprintf(format, a...) + ": " + pgMessage(err), err: err}
}
