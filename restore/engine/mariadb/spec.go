package mariadb

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/firedrill/firedrill/restore/engine"
)

// Spec is MariaDB's registry entry (MySQL is an alias: one wire protocol, one freezer).
func Spec() engine.Spec {
	return engine.Spec{
		Name:     "mariadb",
		Aliases:  []string{"mysql"},
		Modes:    []string{"online", "crash-consistent"},
		ModeHelp: "use online (FLUSH TABLES WITH READ LOCK on csi, mariadb-backup on local), or crash-consistent for InnoDB-only data on csi",
		// Locally, mariadb-backup writes the copy itself (Opened.Backup): InnoDB's redo log is
		// copied with the files and the other engines' tables under BACKUP STAGE locks, so
		// the copy is consistent without a file-level freeze (which InnoDB's background
		// writes would defeat). Crash-consistent needs an atomic cut: csi only.
		Drivers:  map[string][]string{"csi": {"online", "crash-consistent"}, "local": {"online"}},
		ParseDSN: func(dsn string) error { _, err := mysql.ParseDSN(dsn); return err },
		Open:     open,
	}
}

func open(ctx context.Context, o engine.OpenRequest) (*engine.Opened, error) {
	cfg, err := mysql.ParseDSN(o.DSN)
	if err != nil {
		return nil, engine.Malformed(o.Target)
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, engine.Malformed(o.Target)
	}
	db := sql.OpenDB(connector)
	// One connection: the lock lives on it, and nothing else may borrow it.
	db.SetMaxOpenConns(1)
	mode := GlobalReadLock
	if o.Mode == "crash-consistent" {
		mode = CrashConsistent
	}
	lockWait := 10 * time.Second
	if o.MaxFreeze > 0 {
		lockWait = min(lockWait, max(o.MaxFreeze/2, time.Second))
	}
	f := New(db, Options{Mode: mode, LockWait: lockWait, Now: o.Now})
	info, err := f.ServerInfo(ctx)
	if err != nil {
		return nil, engine.CloseAfter(ctx, f, fmt.Errorf("%w: while connecting to target %s: %w", engine.ErrUnreachable, o.Target, err))
	}
	op := &engine.Opened{Freezer: f, Info: info}
	if o.DataDir != "" && !o.Volumes {
		if op.Backup, err = localBackup(ctx, f, cfg, o); err != nil {
			return nil, engine.CloseAfter(ctx, f, err)
		}
	}
	return op, nil
}

// localBackup is the local driver's copy: mariadb-backup of the server's data directory, which
// must be the one configured (a copy of another directory would not be this server's data).
func localBackup(ctx context.Context, f *Freezer, cfg *mysql.Config, o engine.OpenRequest) (func(context.Context, string) (*engine.Frozen, error), error) {
	if f.info[AttrFlavor] != "mariadb" {
		return nil, fmt.Errorf("%w: target %s is MySQL, whose files mariadb-backup does not read; use driver: csi", engine.ErrMismatch, o.Target)
	}
	tool, err := FindBackupTool()
	if err != nil {
		return nil, fmt.Errorf("while preparing a local snapshot of target %s: %w", o.Target, err)
	}
	var dataDir string
	if err := f.conn.QueryRowContext(ctx, "SELECT @@datadir").Scan(&dataDir); err != nil {
		return nil, fmt.Errorf("%w: while reading the data directory of target %s: %w", engine.ErrUnreachable, o.Target, err)
	}
	if !engine.SameDir(dataDir, o.DataDir) {
		return nil, fmt.Errorf("%w: target %s's snapshot.local.dataDir is %s, but the server's data directory (@@datadir) is %s", engine.ErrMismatch, o.Target, o.DataDir, dataDir)
	}
	b := &Backup{Tool: tool, Config: cfg, DataDir: o.DataDir, Now: o.Now}
	return b.Run, nil
}
