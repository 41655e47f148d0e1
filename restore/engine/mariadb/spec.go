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
		ModeHelp: "use online for FLUSH TABLES WITH READ LOCK, or crash-consistent for InnoDB-only data",
		Drivers:  map[string][]string{"csi": {"online", "crash-consistent"}},
		Refusals: map[string]string{
			"local": "InnoDB keeps writing its files (purge, change buffer, checkpoints) even under FLUSH TABLES WITH READ LOCK, so a file-by-file copy is not consistent; use driver: csi (an atomic volume snapshot), or take an atomic btrfs/ZFS/LVM snapshot of the data directory yourself",
		},
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
	return &engine.Opened{Freezer: f, Info: info}, nil
}
