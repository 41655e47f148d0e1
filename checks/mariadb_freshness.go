package checks

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// MariaDBFreshness runs a query returning the newest timestamp in a MariaDB/MySQL copy: the
// data's recovery point, whose age at drill time is held to the RPO. The throwaway's session
// time zone is UTC: a TIMESTAMP column comes back as the instant it is, a DATETIME column is
// read as UTC.
type MariaDBFreshness struct {
	Query string
	// Database is the database the query runs in (USE); empty: the query names it.
	Database string
}

// Name implements Check.
func (*MariaDBFreshness) Name() string { return FreshnessName }

// Engines implements Check.
func (*MariaDBFreshness) Engines() []string { return mariadbOnly() }

// Run implements Check.
func (f *MariaDBFreshness) Run(ctx context.Context, env *Env) []Finding {
	started := time.Now()
	ev := Evidence{"query": f.Query, "database": f.Database, "rpoSeconds": env.RPO.Seconds()}
	addRecordedBinlog(ev, env)
	fin := func(x Finding) []Finding { x.Seconds = time.Since(started).Seconds(); return []Finding{x} }
	conn, err := mariadbConn(ctx, env, f.Database)
	if err != nil {
		return fin(mariadbQueryFailed(FreshnessName, ev, err, "could not use database "+f.Database))
	}
	defer conn.Close()
	var raw sql.NullString
	if err := conn.QueryRowContext(ctx, f.Query).Scan(&raw); err != nil && err != sql.ErrNoRows {
		return fin(mariadbQueryFailed(FreshnessName, ev, err, "query failed (it must return one timestamp)"))
	}
	if !raw.Valid {
		return fin(Failf(FreshnessName, ev, "query returned NULL: the restored data has no rows to date it by"))
	}
	ts, err := parseMariaDBTime(raw.String)
	if err != nil {
		ev["value"] = raw.String
		return fin(Errorf(FreshnessName, ev, "query returned %q, which is not a timestamp: %v", raw.String, err))
	}
	return fin(recoveryPointFinding(env, ev, ts))
}

// parseMariaDBTime parses a DATETIME/TIMESTAMP as the text protocol renders it (UTC), or
// RFC 3339 (a driver with parseTime scans into a string that way).
func parseMariaDBTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02", time.RFC3339Nano} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("want YYYY-MM-DD hh:mm:ss[.ffffff]")
}
