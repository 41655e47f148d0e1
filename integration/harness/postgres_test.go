package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// StartPostgres gives a server with data checksums, working WAL archiving and pgbench data,
// reachable over its socket and (with TCP) on 127.0.0.1.
func TestStartPostgres(t *testing.T) {
	pg := StartPostgres(t, PostgresOptions{DataChecksums: true, Archive: true, PgbenchScale: 1, TCP: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var accounts int64
	var checksums, archiveMode, seg string
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM pgbench_accounts), current_setting('data_checksums'),
		current_setting('archive_mode'), pg_walfile_name(pg_switch_wal())`).Scan(&accounts, &checksums, &archiveMode, &seg); err != nil {
		t.Fatal(err)
	}
	if accounts != 100000 || checksums != "on" || archiveMode != "on" {
		t.Errorf("accounts %d, data_checksums %s, archive_mode %s", accounts, checksums, archiveMode)
	}
	// The switched-out segment reaches the archive directory.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(pg.ArchiveDir, seg)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("segment %s never reached the archive %s", seg, pg.ArchiveDir)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// TCP on 127.0.0.1 too.
	tcp, err := pgx.Connect(ctx, fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable", pg.Port))
	if err != nil {
		t.Fatalf("TCP connection: %v", err)
	}
	tcp.Close(ctx)
}
