package checks

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// MariaDBSQL runs a custom assertion on a MariaDB/MySQL copy: the first column of the first
// row, as the server renders it in text (1 for true, 2026-01-02 03:04:05), must meet Expect.
// Database is the database the query runs in (USE); empty: the query names its tables'
// databases itself.
type MariaDBSQL struct {
	Assertion SQLAssertion
}

// Name implements Check: one name with PostgreSQL's assertion, so checks.sql configures both.
func (s *MariaDBSQL) Name() string { return SQLPrefix + s.Assertion.Name }

// Engines implements Check.
func (*MariaDBSQL) Engines() []string { return mariadbOnly() }

// Run implements Check.
func (s *MariaDBSQL) Run(ctx context.Context, env *Env) []Finding {
	started := time.Now()
	a := s.Assertion
	ev := Evidence{"query": a.Query, "database": a.Database, "expect": a.Expect}
	fin := func(f Finding) []Finding { f.Seconds = time.Since(started).Seconds(); return []Finding{f} }
	conn, err := mariadbConn(ctx, env, a.Database)
	if err != nil {
		return fin(mariadbQueryFailed(s.Name(), ev, err, "could not use database "+a.Database))
	}
	defer conn.Close()
	var got sql.NullString
	err = conn.QueryRowContext(ctx, a.Query).Scan(&got)
	if err == sql.ErrNoRows || err == nil && !got.Valid {
		ev["value"] = nil
		return fin(Failf(s.Name(), ev, "query returned no value (no rows or NULL)"))
	}
	if err != nil {
		return fin(mariadbQueryFailed(s.Name(), ev, err, "query failed"))
	}
	ev["value"] = got.String
	return fin(evaluate(s.Name(), ev, got.String, a.Expect))
}

// mariadbConn is one connection of env.SQL, in database db when one is named.
func mariadbConn(ctx context.Context, env *Env, db string) (*sql.Conn, error) {
	if env.SQL == nil {
		return nil, fmt.Errorf("no connection to the restored MariaDB server")
	}
	conn, err := env.SQL.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("while connecting: %w", err)
	}
	if db != "" {
		if _, err := conn.ExecContext(ctx, "USE "+quoteMariaDB(db)); err != nil {
			conn.Close()
			return nil, fmt.Errorf("while using database %s: %w", db, err)
		}
	}
	return conn, nil
}

// mariadbQueryFailed is the finding of a failed query: fail when MariaDB refused it because the
// data is damaged, error otherwise.
func mariadbQueryFailed(name string, ev Evidence, err error, what string) Finding {
	if ok, why := mariadbDamage(err); ok {
		ev["damage"] = why
		return Failf(name, ev, "%s: MariaDB reports the data damaged: %s", what, why.Message)
	}
	return Errorf(name, ev, "%s: %v", what, err)
}
