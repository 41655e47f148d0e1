package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/firedrill/firedrill/restore/engine/postgres"
)

// PostgresOptions configures StartPostgres.
type PostgresOptions struct {
	// Major is the major version ("15"); empty takes the newest installed.
	Major         string
	DataChecksums bool
	// Archive turns on WAL archiving to a directory of the test (Postgres.ArchiveDir).
	Archive bool
	// PgbenchScale, when > 0, loads a pgbench dataset of that scale (about 15 MB per unit).
	PgbenchScale int
	// TCP also listens on 127.0.0.1 on a free port.
	TCP      bool
	Settings map[string]string
}

// Postgres is a running private PostgreSQL cluster.
type Postgres struct {
	*postgres.Instance
	// Dir is the test's directory holding data, socket, archive and log.
	Dir string
}

// TempDir returns a directory that an unprivileged server user can traverse (t.TempDir's
// parents are private to root), removed when the test ends.
func TempDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "firedrill-test-")
	if err != nil {
		t.Fatalf("while creating a temporary directory: %v", err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatalf("while opening %s to the server user: %v", d, err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// PostgresBinDir returns the server binaries of major (newest if empty), or skips/fails.
func PostgresBinDir(t testing.TB, major string) string {
	t.Helper()
	bin, err := postgres.FindBinDir(major, "")
	if err != nil {
		Missing(t, "PostgreSQL server", err.Error(), "run `make setup` (installs postgresql-15 and postgresql-contrib-15)")
	}
	return bin
}

// StartPostgres initdb's and starts a private cluster in a temporary directory, loads pgbench
// data if asked, and stops and removes it when the test ends.
func StartPostgres(t testing.TB, o PostgresOptions) *Postgres {
	t.Helper()
	Integration(t)
	bin := PostgresBinDir(t, o.Major)
	runAs, err := postgres.ResolveRunAs("")
	if err != nil {
		Missing(t, "an unprivileged user to run PostgreSQL", err.Error(), "create one: useradd --system postgres")
	}
	dir := TempDir(t)
	opts := postgres.InstanceOptions{BinDir: bin, Dir: dir + "/pg", RunAs: runAs, DataChecksums: o.DataChecksums, Settings: o.Settings}
	if o.Archive {
		opts.ArchiveDir = dir + "/archive"
	}
	if o.TCP {
		opts.ListenAddresses, opts.Port = "127.0.0.1", FreePort(t)
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := runAs.Chown(opts.Dir); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	started := time.Now()
	inst, err := postgres.NewInstance(ctx, opts)
	if err != nil {
		t.Fatalf("while starting PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		if err := inst.Stop(10 * time.Second); err != nil {
			t.Errorf("while stopping PostgreSQL: %v", err)
		}
	})
	if o.PgbenchScale > 0 {
		// About a second per unit of scale on this machine: the start's two minutes, and more.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute+time.Duration(o.PgbenchScale)*3*time.Second)
		defer cancel()
		if out, err := inst.Pgbench(ctx, "-i", "-q", "-s", itoa(o.PgbenchScale)); err != nil {
			t.Fatalf("while loading pgbench data: %v\n%s", err, out)
		}
	}
	logComponent(t, "postgres", filepath.Base(filepath.Dir(bin)), fmt.Sprintf("started in %s at %s", time.Since(started).Round(time.Millisecond), inst.SocketDir))
	return &Postgres{Instance: inst, Dir: dir}
}

func itoa(n int) string { return strconv.Itoa(n) }
