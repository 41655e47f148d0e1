package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/firedrill/firedrill/restore/engine"
)

// Checkpoint is PostgreSQL's crash-consistent mode: a CHECKPOINT shortens crash recovery, then
// an atomic snapshot of a volume holding data and WAL together is taken with no backup mode at
// all. It is only valid when the storage cut is atomic (one volume, or a group snapshot).
type Checkpoint struct {
	conn    *pgx.Conn
	now     func() time.Time
	info    map[string]string
	started time.Time
	lsn     string
	frozen  bool
}

var _ engine.Freezer = (*Checkpoint)(nil)

// NewCheckpoint takes ownership of conn: Close closes it.
func NewCheckpoint(conn *pgx.Conn, now func() time.Time) *Checkpoint {
	if now == nil {
		now = time.Now
	}
	return &Checkpoint{conn: conn, now: now}
}

// ServerInfo reads the facts recorded with the snapshot.
func (c *Checkpoint) ServerInfo(ctx context.Context) (map[string]string, error) {
	var version string
	if err := c.conn.QueryRow(ctx, "SELECT current_setting('server_version')").Scan(&version); err != nil {
		return nil, fmt.Errorf("while reading server facts: %w", err)
	}
	c.info = map[string]string{AttrServerVersion: version}
	return map[string]string{AttrServerVersion: version}, nil
}

// Freeze runs CHECKPOINT and records the WAL position.
func (c *Checkpoint) Freeze(ctx context.Context) error {
	if _, err := c.conn.Exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("while running CHECKPOINT: %w", err)
	}
	c.started = c.now()
	if err := c.conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&c.lsn); err != nil {
		return fmt.Errorf("while reading the WAL position: %w", err)
	}
	c.frozen = true
	return nil
}

// Thaw records the end of the window; there is nothing to undo.
func (c *Checkpoint) Thaw(context.Context) (*engine.Frozen, error) {
	if !c.frozen {
		return nil, errors.New("while finishing the crash-consistent snapshot: no checkpoint was taken")
	}
	c.frozen = false
	attrs := map[string]string{AttrStartLSN: c.lsn}
	for k, v := range c.info {
		attrs[k] = v
	}
	return &engine.Frozen{StartedAt: c.started, EndedAt: c.now(), Attributes: attrs}, nil
}

// Close closes the session.
func (c *Checkpoint) Close(ctx context.Context) error {
	if c.conn == nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := c.conn.Close(cctx)
	c.conn = nil
	return err
}
