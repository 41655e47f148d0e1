package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// SocketConnString returns a keyword/value connection string for user and database over the
// unix socket in dir (a throwaway copy listens nowhere else).
func SocketConnString(dir string, port int, user, database string) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable connect_timeout=5",
		quoteConnValue(dir), port, quoteConnValue(user), quoteConnValue(database))
}

func quoteConnValue(v string) string {
	if v != "" && !strings.ContainsAny(v, " '\\") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// ConnectCopy connects to a restored copy, named firedrill-drill in pg_stat_activity.
func ConnectCopy(ctx context.Context, connString string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["application_name"] = "firedrill-drill"
	return pgx.ConnectConfig(ctx, cfg)
}

// Databases lists the databases of the server conn is connected to that accept connections.
func Databases(ctx context.Context, conn *pgx.Conn) ([]string, error) {
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname")
	if err != nil {
		return nil, fmt.Errorf("while listing databases: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Readiness is how to tell that a restored server, wherever it runs, is ready: it accepts
// connections and has left recovery.
type Readiness struct {
	// ConnString reaches database postgres as User.
	ConnString string
	User       string
	// Running reports whether the server still runs; ExitDetail says why it stopped (log lines).
	Running    func() bool
	ExitDetail func() string
	// Where names the server in messages: "on /scratch/clone/data", "in container 1a2b3c".
	Where string
}

// Wait polls until the server is ready. status is told what it waits for (may be nil). If the
// server exits first, the error wraps ErrServerExited and carries ExitDetail.
func (r Readiness) Wait(ctx context.Context, status func(string)) error {
	if status == nil {
		status = func(string) {}
	}
	last := ""
	say := func(m string) {
		if m != last {
			status(m)
			last = m
		}
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if !r.Running() {
			return fmt.Errorf("%w before accepting connections: %s", ErrServerExited, r.ExitDetail())
		}
		conn, err := pgx.Connect(ctx, r.ConnString)
		if err == nil {
			var inRecovery bool
			qerr := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery)
			conn.Close(context.WithoutCancel(ctx))
			if qerr == nil && !inRecovery {
				return nil
			}
			say("waiting for recovery to end")
		} else {
			var pgErr *pgconn.PgError
			switch {
			case errors.As(err, &pgErr) && pgErr.Code == "57P03":
				say("waiting for recovery to reach consistency (" + pgErr.Message + ")")
			case errors.As(err, &pgErr):
				// A real refusal (role does not exist, ...): waiting will not help.
				return fmt.Errorf("while connecting to the restored server as %q: %w", r.User, err)
			default:
				say("waiting for the server to accept connections")
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("while waiting for the server %s to become ready (%s): %w", r.Where, last, ctx.Err())
		case <-tick.C:
		}
	}
}
