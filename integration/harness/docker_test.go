package harness_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/firedrill/firedrill/integration/harness"
)

func TestPostgresContainerQuery(t *testing.T) {
	harness.Integration(t)
	pg := harness.StartPostgresContainer(t)
	ctx := t.Context()

	conn, err := pgx.Connect(ctx, pg.DSN)
	if err != nil {
		t.Fatalf("while connecting to %s:%d: %v", pg.Host, pg.Port, err)
	}
	defer conn.Close(ctx)

	var version, user, db string
	if err := conn.QueryRow(ctx, "SELECT version(), current_user, current_database()").Scan(&version, &user, &db); err != nil {
		t.Fatalf("while querying: %v", err)
	}
	if !strings.HasPrefix(version, "PostgreSQL 15.") || user != pg.User || db != pg.Database {
		t.Errorf("got %q as %s on %s, want PostgreSQL 15 as %s on %s", version, user, db, pg.User, pg.Database)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE drills (id int PRIMARY KEY); INSERT INTO drills SELECT generate_series(1, 100)"); err != nil {
		t.Fatalf("while writing: %v", err)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM drills").Scan(&n); err != nil || n != 100 {
		t.Errorf("count(*) = %d, %v; want 100", n, err)
	}

	// The port is published on loopback only.
	inspect, err := pg.Container.Inspect(ctx)
	if err != nil {
		t.Fatalf("while inspecting the container: %v", err)
	}
	for port, bindings := range inspect.NetworkSettings.Ports {
		for _, b := range bindings {
			if ip := b.HostIP.String(); ip != "127.0.0.1" {
				t.Errorf("port %s is published on %s, want 127.0.0.1 only", port, ip)
			}
		}
	}

	// psql inside the image works as the official image's does (the module's Snapshot falls
	// back to it).
	code, _, err := pg.Container.Exec(ctx, []string{"psql", "-U", pg.User, "-d", pg.Database, "-c", "SELECT 1"})
	if err != nil || code != 0 {
		t.Errorf("psql in the container: exit %d, %v", code, err)
	}
}

// The image's entrypoint runs init scripts and supports the module's Snapshot/Restore (which
// falls back to psql inside the container), as the official image does.
func TestPostgresContainerInitScriptsAndSnapshot(t *testing.T) {
	harness.Integration(t)
	pg := harness.StartPostgresContainer(t,
		tcpostgres.WithInitScripts(filepath.Join("testdata", "postgres-container", "001-schema.sql")))
	ctx := t.Context()

	count := func() int {
		t.Helper()
		conn, err := pgx.Connect(ctx, pg.DSN)
		if err != nil {
			t.Fatalf("while connecting: %v", err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM drills").Scan(&n); err != nil {
			t.Fatalf("while counting the init script's rows: %v", err)
		}
		return n
	}
	if n := count(); n != 2 {
		t.Fatalf("count(*) = %d after the init script, want 2", n)
	}
	if err := pg.Container.Snapshot(ctx); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	conn, err := pgx.Connect(ctx, pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "DELETE FROM drills"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if n := count(); n != 0 {
		t.Fatalf("count(*) = %d after DELETE, want 0", n)
	}
	if err := pg.Container.Restore(ctx); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if n := count(); n != 2 {
		t.Errorf("count(*) = %d after Restore, want the 2 rows of the snapshot", n)
	}
}
