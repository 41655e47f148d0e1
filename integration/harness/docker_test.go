package harness_test

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

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
