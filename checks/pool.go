package checks

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// forEach runs fn over jobs with at most n connections to database, each worker on its own
// connection. A worker whose connection breaks reconnects once per job; fn's errors are its own.
func forEach[J any](ctx context.Context, db DB, database string, n int, jobs []J, fn func(ctx context.Context, conn *pgx.Conn, job J)) error {
	if n < 1 {
		n = 1
	}
	if n > len(jobs) {
		n = len(jobs)
	}
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
					c, err := db.Connect(ctx, database)
					if err != nil {
						mu.Lock()
						connErr = errors.Join(connErr, fmt.Errorf("while connecting to database %s: %w", database, err))
						mu.Unlock()
						continue
					}
					conn = c
				}
				fn(ctx, conn, job)
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
