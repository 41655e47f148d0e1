package take

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/firedrill/firedrill/restore/engine"
)

// checkpointFreezer is PostgreSQL's crash-consistent mode: a CHECKPOINT shortens crash
// recovery, then an atomic snapshot of a volume holding data and WAL together is taken with no
// backup mode at all. It belongs with the postgres engine; it lives here until that package
// grows it.
type checkpointFreezer struct {
	conn    *pgx.Conn
	now     func() time.Time
	info    map[string]string
	started time.Time
	lsn     string
	frozen  bool
}

func (c *checkpointFreezer) serverInfo(ctx context.Context) (map[string]string, error) {
	var version string
	if err := c.conn.QueryRow(ctx, "SELECT current_setting('server_version')").Scan(&version); err != nil {
		return nil, fmt.Errorf("while reading server facts: %w", err)
	}
	c.info = map[string]string{"serverVersion": version}
	return map[string]string{"serverVersion": version}, nil
}

func (c *checkpointFreezer) Freeze(ctx context.Context) error {
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

func (c *checkpointFreezer) Thaw(context.Context) (*engine.Frozen, error) {
	if !c.frozen {
		return nil, errors.New("while finishing the crash-consistent snapshot: no checkpoint was taken")
	}
	c.frozen = false
	attrs := map[string]string{"startLSN": c.lsn}
	for k, v := range c.info {
		attrs[k] = v
	}
	return &engine.Frozen{StartedAt: c.started, EndedAt: c.now(), Attributes: attrs}, nil
}

func (c *checkpointFreezer) Close(ctx context.Context) error {
	if c.conn == nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := c.conn.Close(cctx)
	c.conn = nil
	return err
}
