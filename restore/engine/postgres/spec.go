package postgres

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/firedrill/firedrill/restore/engine"
)

// Spec is PostgreSQL's registry entry.
func Spec() engine.Spec {
	return engine.Spec{
		Name:            "postgres",
		DefaultDatabase: "postgres",
		Modes:           []string{"online", "crash-consistent"},
		ModeHelp:        "use online or crash-consistent",
		Drivers: map[string][]string{
			// A file-by-file copy is consistent only under backup mode.
			"local": {"online"},
			"csi":   {"online", "crash-consistent"},
		},
		BackupModes:  []string{"online"},
		WALArchiving: true,
		ParseDSN:     func(dsn string) error { _, err := pgconn.ParseConfig(dsn); return err },
		Open:         open,
	}
}

func open(ctx context.Context, o engine.OpenRequest) (*engine.Opened, error) {
	cfg, err := pgx.ParseConfig(o.DSN)
	if err != nil {
		return nil, engine.Malformed(o.Target)
	}
	cfg.RuntimeParams["application_name"] = "firedrill-snapshot"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		if pe := AuthFailure(err); pe != nil {
			// The server answered: it is running and reachable, and refused these credentials.
			return nil, fmt.Errorf("%w for user %q on target %s: %s (SQLSTATE %s); check the user and password of connection.dsn", engine.ErrAuth, cfg.User, o.Target, pe.Message, pe.Code)
		}
		return nil, fmt.Errorf("%w: while connecting to target %s (is the server running, and does connection.dsn reach it?): %w", engine.ErrUnreachable, o.Target, err)
	}
	if o.Mode == "crash-consistent" {
		f := NewCheckpoint(conn, o.Now)
		info, err := f.ServerInfo(ctx)
		if err != nil {
			return nil, engine.CloseAfter(ctx, f, err)
		}
		return &engine.Opened{Freezer: f, Info: info}, nil
	}
	backup := NewOnlineBackup(conn, OnlineBackupOptions{
		Label: "firedrill " + o.Target, Fast: o.Fast, Now: o.Now,
		// A volume snapshot holds the WAL only up to the cut; the rest, to the stop LSN, must
		// be archived before the snapshot is usable. The local driver copies it itself.
		WaitForArchive: o.Volumes,
	})
	info, err := backup.ServerInfo(ctx)
	if err != nil {
		return nil, engine.CloseAfter(ctx, backup, err)
	}
	if !o.Volumes {
		if dd := info["dataDirectory"]; dd != "" && !engine.SameDir(dd, o.DataDir) {
			return nil, engine.CloseAfter(ctx, backup, fmt.Errorf("%w: target %s's server runs on data directory %s, but snapshot.local.dataDir is %s", engine.ErrMismatch, o.Target, dd, o.DataDir))
		}
		if err := copiedPlaces(ctx, o, backup); err != nil {
			return nil, engine.CloseAfter(ctx, backup, err)
		}
	}
	delete(info, "dataDirectory")
	return &engine.Opened{Freezer: backup, Info: info, Rule: CopyRule}, nil
}

// copiedPlaces refuses a repository inside a directory the snapshot of a data directory copies
// besides the data directory itself: a tablespace, or the WAL directory when pg_wal is a link
// to another disk.
func copiedPlaces(ctx context.Context, o engine.OpenRequest, b *OnlineBackup) error {
	if o.Outside == nil {
		return nil
	}
	tablespaces, err := b.Tablespaces(ctx)
	if err != nil {
		return err
	}
	for _, ts := range tablespaces {
		if err := o.Outside("tablespace "+ts.Name, ts.Location); err != nil {
			return err
		}
	}
	if wal, err := filepath.EvalSymlinks(filepath.Join(o.DataDir, "pg_wal")); err == nil {
		return o.Outside("the WAL directory", wal)
	}
	return nil
}
