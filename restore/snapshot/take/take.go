// Package take takes a snapshot of one target: it opens the one held session to the database,
// freezes it the engine's way, and has the snapshot driver copy and record it.
package take

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/snapshot/local"
)

// ErrUnreachable means the production database could not be reached.
var ErrUnreachable = errors.New("database unreachable")

// ErrMismatch means the configuration and the database disagree (wrong data directory).
var ErrMismatch = errors.New("configuration does not match the database")

// Options is one snapshot of one target.
type Options struct {
	Target  string
	Engine  string
	Mode    string
	BatchID string
	// DSN reaches production; it is never logged or put in an error.
	DSN        string
	DataDir    string
	Repository *local.Repository
	// Fast asks for an immediate checkpoint.
	Fast   bool
	Status func(string)
	Now    func() time.Time
	Log    *slog.Logger
}

// Take takes one snapshot. On failure nothing is left behind: no backup mode, no slot, no
// partial snapshot.
func Take(ctx context.Context, o Options) (*snapshot.Metadata, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Engine != "postgres" || o.Mode != "online" {
		return nil, fmt.Errorf("snapshots of engine %q in mode %q are not supported by the local driver (supported: postgres online)", o.Engine, o.Mode)
	}
	cfg, err := pgx.ParseConfig(o.DSN)
	if err != nil {
		// pgx's parse errors may quote the DSN; say only that it is malformed.
		return nil, fmt.Errorf("%w: the connection DSN of target %s is malformed", ErrUnreachable, o.Target)
	}
	cfg.RuntimeParams["application_name"] = "firedrill-snapshot"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: while connecting to target %s (is the server running, and does connection.dsn reach it?): %w", ErrUnreachable, o.Target, err)
	}
	backup := postgres.NewOnlineBackup(conn, postgres.OnlineBackupOptions{
		Label: "firedrill " + o.Target, Fast: o.Fast, Now: o.Now,
	})
	info, err := backup.ServerInfo(ctx)
	if err != nil {
		_ = backup.Close(ctx)
		return nil, err
	}
	if dd := info["dataDirectory"]; dd != "" && !sameDir(dd, o.DataDir) {
		_ = backup.Close(ctx)
		return nil, fmt.Errorf("%w: target %s's server runs on data directory %s, but snapshot.local.dataDir is %s", ErrMismatch, o.Target, dd, o.DataDir)
	}
	delete(info, "dataDirectory")
	o.Log.Info("taking snapshot", "target", o.Target, "serverVersion", info[postgres.AttrServerVersion])
	return o.Repository.Create(ctx, local.CreateRequest{
		Target: o.Target, Engine: o.Engine, Mode: o.Mode, BatchID: o.BatchID,
		DataDir: o.DataDir, Freezer: backup, Rule: postgres.CopyRule, Attributes: info, Status: o.Status,
	})
}

func sameDir(a, b string) bool {
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	if err1 != nil || err2 != nil {
		return filepath.Clean(a) == filepath.Clean(b)
	}
	return ra == rb
}
