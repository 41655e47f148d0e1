package checks

import (
	"context"
	"errors"
	"io"
	"net"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// A check that cannot read data because PostgreSQL reports it damaged has proved the copy
// unfit: that is a Fail with the server's words as evidence, never an Error ("could not
// check"). Damage is the one place that tells the two apart; every check that reads data asks it.

// Names of the SQLSTATEs Damage recognises, for evidence a person can look up.
var sqlstateNames = map[string]string{
	"XX000": "internal_error",
	"XX001": "data_corrupted",
	"XX002": "index_corrupted",
	"58P01": "undefined_file",
	"58030": "io_error",
	"3D000": "invalid_catalog_name",
}

// relationFileRe matches a message or detail naming one of the cluster's data files: a
// relation segment (base/…, global/…, pg_tblspc/…) or a transaction status file.
var relationFileRe = regexp.MustCompile(`"(base|global|pg_tblspc|pg_xact|pg_multixact|pg_subtrans)/[^"]*"`)

// damagedDataRe matches what PostgreSQL raises as internal_error (XX000, elog) when it meets
// damaged pages or tuples: it has no SQLSTATE of its own, so the wording decides.
var damagedDataRe = regexp.MustCompile(`(?i)^(could not read block \d+|invalid page in block|unexpected zero page|missing chunk number|unexpected chunk number|unexpected chunk size|found (xmin|xmax|multixact) \d+ from before|could not access status of transaction|invalid memory alloc request size|compressed \w+ data is corrupt|invalid (lp|line pointer)|index "[^"]*" contains (unexpected zero page|corrupted page))`)

// DamageReason says why PostgreSQL refused a read of damaged data: the SQLSTATE, its name and
// the server's message (with its detail). It is evidence: reports show it as is.
type DamageReason struct {
	SQLState string `json:"sqlstate"`
	Name     string `json:"condition,omitempty"`
	Message  string `json:"message"`
}

// String renders the reason for a message: "XX001 data_corrupted: invalid page in block 3 …".
func (d DamageReason) String() string {
	s := d.SQLState
	if d.Name != "" {
		s += " " + d.Name
	}
	return s + ": " + d.Message
}

// Damage reports whether err is PostgreSQL refusing to read data because the data is damaged,
// and the evidence. It recognises data_corrupted (XX001) and index_corrupted (XX002); the
// internal errors PostgreSQL raises on damaged pages and tuples (XX000 "could not read block
// …", "missing chunk number …"); and undefined_file (58P01) or io_error (58030) when the file is
// one of the cluster's relation segments or transaction status files (a missing or unreadable
// segment), including a database whose directory is missing. A lost connection, a timeout, a
// missing extension or a mistake in a query is not damage.
func Damage(err error) (bool, DamageReason) {
	var pgErr *pgconn.PgError
	if err == nil || !errors.As(err, &pgErr) {
		return false, DamageReason{}
	}
	r := DamageReason{SQLState: pgErr.Code, Name: sqlstateNames[pgErr.Code], Message: pgMessage(err)}
	switch pgErr.Code {
	case "XX001", "XX002":
		return true, r
	case "XX000":
		return damagedDataRe.MatchString(pgErr.Message), r
	case "58P01", "58030":
		return relationFileRe.MatchString(pgErr.Message) || relationFileRe.MatchString(pgErr.Detail), r
	case "3D000":
		// `database "x" does not exist` with "The database subdirectory "base/5" is missing."
		return strings.Contains(pgErr.Detail, "subdirectory") && relationFileRe.MatchString(pgErr.Detail), r
	}
	return false, r
}

// DamagedFileOutput reports whether a server tool's output (pg_checksums, pg_amcheck) says a
// data file could not be read because it is short or unreadable; it returns the line saying so.
func DamagedFileOutput(out string) (bool, string) {
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		msg := l
		// "pg_checksums: error: could not read block 3 in file "…": read 100 of 8192"
		if i := strings.Index(msg, "error: "); i >= 0 {
			msg = msg[i+len("error: "):]
		}
		if (strings.HasPrefix(msg, "could not read block") || strings.HasPrefix(msg, "could not open file") ||
			strings.HasPrefix(msg, "could not stat file") || strings.HasPrefix(msg, "invalid segment number")) &&
			dataFileRe.MatchString(msg) && !strings.HasSuffix(msg, "Permission denied") {
			return true, l
		}
	}
	return false, ""
}

// dataFileRe matches a path to a relation segment as the server tools print it (absolute).
var dataFileRe = regexp.MustCompile(`"[^"]*/(base|global|pg_tblspc)/[^"]*"`)

// CouldNotRead reports whether err means the check could not talk to the server (a lost or
// refused connection, a timeout, a cancelled query, the server shutting down), as opposed to
// the server answering. Such an error proves nothing about the data: it stays an Error.
func CouldNotRead(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// 08: connection exception; 53: insufficient resources; 57: operator intervention
		// (query_canceled by statement_timeout, admin_shutdown, …).
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "53") || strings.HasPrefix(pgErr.Code, "57")
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	return errors.As(err, &ne) || errors.As(err, &ce) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// queryFailed is the finding of a check whose own query (a custom assertion, the freshness
// query) returned an error: a damaged read is a failure with the server's reason as evidence; a
// lost connection or a timeout could not check (Error); any other error is the query's answer
// that the restored data does not meet it (a missing table, a type the query did not expect),
// a failure as before.
func queryFailed(name string, ev Evidence, err error, what string) Finding {
	if ev == nil {
		ev = Evidence{}
	}
	if ok, why := Damage(err); ok {
		ev["damage"] = why
		ev["sqlstate"] = why.SQLState
		return Failf(name, ev, "%s: PostgreSQL reports the data damaged: %s", what, why)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		ev["sqlstate"] = pgErr.Code
	}
	if CouldNotRead(err) {
		return Errorf(name, ev, "%s, nothing was proved: %s", what, pgMessage(err))
	}
	return Failf(name, ev, "%s: %s", what, pgMessage(err))
}
