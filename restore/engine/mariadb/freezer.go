package mariadb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/firedrill/firedrill/restore/engine"
)

// Attribute keys recorded with a snapshot.
const (
	AttrServerVersion   = "serverVersion"
	AttrFlavor          = "flavor"
	AttrLockMode        = "lockMode"
	AttrBinlogFile      = "binlogFile"
	AttrBinlogPosition  = "binlogPosition"
	AttrGTIDBinlogPos   = "gtidBinlogPos"
	AttrGTIDExecuted    = "gtidExecuted"
	AttrBinlogExact     = "binlogPositionExact"
	AttrBinlogEnabled   = "binlogEnabled"
	AttrNonInnoDBTables = "nonInnoDBTables"
)

// Mode is how the freezer makes the files consistent.
type Mode int

const (
	// GlobalReadLock holds FLUSH TABLES WITH READ LOCK: every engine's tables are consistent and
	// the binary log position is exact. Writes block while it is held.
	GlobalReadLock Mode = iota
	// CrashConsistent takes no lock: FLUSH LOGS rotates the binary log and the snapshot relies
	// on InnoDB crash recovery. Valid only for an atomic snapshot of InnoDB-only data.
	CrashConsistent
)

func (m Mode) String() string {
	if m == CrashConsistent {
		return "crash-consistent"
	}
	return "flush-tables-with-read-lock"
}

var (
	// ErrLockLost means the connection holding the lock died before the thaw: nothing proves the
	// lock covered the whole cut, so the snapshot must not be used.
	ErrLockLost = errors.New("the connection holding the global read lock was lost")
	// ErrNotInnoDBOnly means crash-consistent mode was asked for with non-InnoDB user tables,
	// which crash recovery does not make consistent.
	ErrNotInnoDBOnly = errors.New("crash-consistent mode needs InnoDB-only data")
)

// Options configures a Freezer.
type Options struct {
	Mode Mode
	// LockWait bounds how long FLUSH TABLES WITH READ LOCK waits for running statements
	// (lock_wait_timeout); writers queue behind a waiting FTWRL, so this must be short.
	LockWait time.Duration
	Now      func() time.Time
}

// Freezer freezes a MariaDB or MySQL server on ONE pinned connection: the global read lock is
// released when the connection holding it ends, so the connection is the lock. It owns its
// *sql.DB and closes it, so a connection in an unknown state never goes back to a pool.
type Freezer struct {
	db   *sql.DB
	conn *sql.Conn
	opts Options

	locked    bool
	frozen    bool
	startedAt time.Time
	info      map[string]string
	attrs     map[string]string
}

var _ engine.Freezer = (*Freezer)(nil)

// New takes ownership of db: Close closes it.
func New(db *sql.DB, opts Options) *Freezer {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LockWait <= 0 {
		opts.LockWait = 10 * time.Second
	}
	return &Freezer{db: db, opts: opts, info: map[string]string{}}
}

// pin takes the one connection every statement of the freeze runs on.
func (f *Freezer) pin(ctx context.Context) error {
	if f.conn != nil {
		return nil
	}
	c, err := f.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("while connecting to the server: %w", err)
	}
	f.conn = c
	return nil
}

// ServerInfo reads facts recorded with the snapshot (version, flavor, whether binary logging
// is on). Call before Freeze; Freeze calls it when it was not.
func (f *Freezer) ServerInfo(ctx context.Context) (map[string]string, error) {
	if err := f.pin(ctx); err != nil {
		return nil, err
	}
	var version, comment string
	var logBin int
	if err := f.conn.QueryRowContext(ctx, "SELECT VERSION(), @@version_comment, @@log_bin").Scan(&version, &comment, &logBin); err != nil {
		return nil, fmt.Errorf("while reading server facts: %w", err)
	}
	f.info[AttrServerVersion] = version
	f.info[AttrFlavor] = "mysql"
	if strings.Contains(strings.ToLower(version+" "+comment), "mariadb") {
		f.info[AttrFlavor] = "mariadb"
	}
	f.info[AttrBinlogEnabled] = strconv.FormatBool(logBin == 1)
	out := make(map[string]string, len(f.info))
	for k, v := range f.info {
		out[k] = v
	}
	return out, nil
}

// Freeze takes the global read lock and reads the binary log position under it, or, in
// crash-consistent mode, checks the data is InnoDB-only and rotates the binary log.
func (f *Freezer) Freeze(ctx context.Context) error {
	if f.frozen {
		return errors.New("while freezing: already frozen")
	}
	if len(f.info) == 0 {
		if _, err := f.ServerInfo(ctx); err != nil {
			return err
		}
	}
	f.attrs = map[string]string{AttrLockMode: f.opts.Mode.String()}
	if f.opts.Mode == CrashConsistent {
		if err := f.checkInnoDBOnly(ctx); err != nil {
			return err
		}
		f.startedAt = f.opts.Now()
		// FLUSH LOGS closes the current binary log, so the snapshot's binlog starts a new file
		// and the position read next is where replay of later events would begin.
		if _, err := f.conn.ExecContext(ctx, "FLUSH LOGS"); err != nil {
			return fmt.Errorf("while rotating the logs (FLUSH LOGS): %w", err)
		}
		if err := f.readPosition(ctx); err != nil {
			return err
		}
		f.attrs[AttrBinlogExact] = "false"
		f.frozen = true
		return nil
	}
	secs := int(f.opts.LockWait.Round(time.Second) / time.Second)
	if _, err := f.conn.ExecContext(ctx, fmt.Sprintf("SET SESSION lock_wait_timeout = %d", max(secs, 1))); err != nil {
		return fmt.Errorf("while bounding the lock wait: %w", err)
	}
	// Flushing first without the lock makes the locked flush short: most tables are clean.
	if _, err := f.conn.ExecContext(ctx, "FLUSH NO_WRITE_TO_BINLOG TABLES"); err != nil {
		return fmt.Errorf("while flushing tables before the lock: %w", err)
	}
	f.startedAt = f.opts.Now()
	// From here the lock may be held even if the statement reports an error (a cancelled
	// context after the server granted it): Close unlocks in every case.
	f.locked = true
	if _, err := f.conn.ExecContext(ctx, "FLUSH TABLES WITH READ LOCK"); err != nil {
		return fmt.Errorf("while taking the global read lock (FLUSH TABLES WITH READ LOCK): %w", err)
	}
	if err := f.readPosition(ctx); err != nil {
		return err
	}
	f.attrs[AttrBinlogExact] = "true"
	f.frozen = true
	return nil
}

// readPosition reads SHOW MASTER STATUS and the GTID position on the held connection.
func (f *Freezer) readPosition(ctx context.Context) error {
	if f.info[AttrBinlogEnabled] != "true" {
		return nil
	}
	file, pos, executed, err := ShowMasterStatus(ctx, f.conn)
	if err != nil {
		return err
	}
	f.attrs[AttrBinlogFile] = file
	f.attrs[AttrBinlogPosition] = strconv.FormatUint(pos, 10)
	if f.info[AttrFlavor] == "mariadb" {
		var gtid sql.NullString
		if err := f.conn.QueryRowContext(ctx, "SELECT @@global.gtid_binlog_pos").Scan(&gtid); err != nil {
			return fmt.Errorf("while reading @@gtid_binlog_pos: %w", err)
		}
		f.attrs[AttrGTIDBinlogPos] = gtid.String
	} else if executed != "" {
		f.attrs[AttrGTIDExecuted] = executed
	} else {
		var gtid sql.NullString
		if err := f.conn.QueryRowContext(ctx, "SELECT @@global.gtid_executed").Scan(&gtid); err == nil {
			f.attrs[AttrGTIDExecuted] = gtid.String
		}
	}
	return nil
}

// querier is what ShowMasterStatus needs: a *sql.Conn, *sql.DB or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// ShowMasterStatus returns the binary log file, position and (MySQL) Executed_Gtid_Set.
func ShowMasterStatus(ctx context.Context, q querier) (file string, pos uint64, executedGTID string, err error) {
	rows, err := q.QueryContext(ctx, "SHOW MASTER STATUS")
	if err != nil {
		return "", 0, "", fmt.Errorf("while reading the binary log position (SHOW MASTER STATUS): %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", 0, "", fmt.Errorf("while reading SHOW MASTER STATUS: %w", err)
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return "", 0, "", fmt.Errorf("while reading SHOW MASTER STATUS: %w", err)
		}
		return "", 0, "", errors.New("while reading the binary log position: SHOW MASTER STATUS returned no row (is log_bin on?)")
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return "", 0, "", fmt.Errorf("while reading SHOW MASTER STATUS: %w", err)
	}
	for i, c := range cols {
		switch strings.ToLower(c) {
		case "file":
			file = vals[i].String
		case "position":
			pos, err = strconv.ParseUint(vals[i].String, 10, 64)
			if err != nil {
				return "", 0, "", fmt.Errorf("while reading SHOW MASTER STATUS: position %q: %w", vals[i].String, err)
			}
		case "executed_gtid_set":
			executedGTID = strings.ReplaceAll(vals[i].String, "\n", "")
		}
	}
	return file, pos, executedGTID, rows.Err()
}

func (f *Freezer) checkInnoDBOnly(ctx context.Context) error {
	rows, err := f.conn.QueryContext(ctx, `SELECT CONCAT(table_schema, '.', table_name, ' (', engine, ')')
		FROM information_schema.tables
		WHERE table_type = 'BASE TABLE' AND engine IS NOT NULL AND engine NOT IN ('InnoDB')
		  AND table_schema NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
		ORDER BY 1 LIMIT 6`)
	if err != nil {
		return fmt.Errorf("while checking for non-InnoDB tables: %w", err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return fmt.Errorf("while checking for non-InnoDB tables: %w", err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("while checking for non-InnoDB tables: %w", err)
	}
	if len(names) > 0 {
		if len(names) > 5 {
			names = append(names[:5], "...")
		}
		return fmt.Errorf("%w: %s; convert them to InnoDB or use mode: online (FLUSH TABLES WITH READ LOCK)", ErrNotInnoDBOnly, strings.Join(names, ", "))
	}
	return nil
}

// Thaw releases the global read lock on the connection that holds it and returns what was
// recorded under it. If the connection died, the lock died with it at an unknown moment:
// Thaw reports ErrLockLost and the snapshot must be discarded.
func (f *Freezer) Thaw(ctx context.Context) (*engine.Frozen, error) {
	if !f.frozen {
		return nil, errors.New("while thawing: not frozen")
	}
	if f.locked {
		if _, err := f.conn.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("while releasing the global read lock (UNLOCK TABLES): %w", err)
			}
			return nil, fmt.Errorf("%w: %w", ErrLockLost, err)
		}
		f.locked = false
	}
	ended := f.opts.Now()
	f.frozen = false
	attrs := map[string]string{}
	for k, v := range f.info {
		attrs[k] = v
	}
	for k, v := range f.attrs {
		attrs[k] = v
	}
	return &engine.Frozen{StartedAt: f.startedAt, EndedAt: ended, Attributes: attrs}, nil
}

// Close unlocks if still locked and closes the connection and its pool. It ignores ctx's
// cancellation: releasing must work after an interrupt.
func (f *Freezer) Close(ctx context.Context) error {
	if f.db == nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var errs []error
	if f.locked && f.conn != nil {
		if _, err := f.conn.ExecContext(cctx, "UNLOCK TABLES"); err != nil {
			// Closing the connection below releases the lock on the server anyway.
			errs = append(errs, fmt.Errorf("while releasing the global read lock: %w", err))
		}
		f.locked = false
	}
	f.frozen = false
	if f.conn != nil {
		// Returning the pinned connection to the pool can only fail on a broken connection;
		// closing the pool below closes it anyway and its error is the one that counts.
		_ = f.conn.Close()
		f.conn = nil
	}
	// Closing the pool closes the physical connection: the server ends the session and with it
	// any lock, whatever state the connection was in.
	if err := f.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("while closing the connection: %w", err))
	}
	f.db = nil
	return errors.Join(errs...)
}
