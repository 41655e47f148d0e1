package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/integration/harness"
)

// pgDB is checks.DB over a harness server.
type pgDB struct{ pg *harness.Postgres }

func (d pgDB) Databases(ctx context.Context) ([]string, error) {
	conn, err := pgx.Connect(ctx, d.pg.DSN("postgres"))
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1")
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func (d pgDB) Connect(ctx context.Context, db string) (*pgx.Conn, error) {
	return pgx.Connect(ctx, d.pg.DSN(db))
}

// BenchmarkIntegrityChecks compares firedrill's amcheck check with pg_amcheck --heapallindexed
// on the same pgbench copy (scale FIREDRILL_BENCH_SCALE, default 70: about 1.05 GB) with the same
// parallelism (FIREDRILL_BENCH_JOBS, default 2). It reports MB/s of relation data verified.
//
//	make bench BENCH=IntegrityChecks
func BenchmarkIntegrityChecks(b *testing.B) {
	scale := envInt("FIREDRILL_BENCH_SCALE", 70)
	jobs := envInt("FIREDRILL_BENCH_JOBS", 2)
	started := time.Now()
	pg := harness.StartPostgres(b, harness.PostgresOptions{DataChecksums: true, PgbenchScale: scale,
		Settings: map[string]string{"shared_buffers": "256MB", "max_parallel_workers_per_gather": "0"}})
	ctx := context.Background()
	var size int64
	conn, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		b.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT sum(pg_database_size(datname)) FROM pg_database WHERE datallowconn").Scan(&size); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS amcheck"); err != nil {
		b.Fatal(err)
	}
	conn.Close(ctx)
	b.Logf("dataset: pgbench scale %d, %d MB in databases, ready in %s; parallelism %d", scale, size>>20, time.Since(started).Round(time.Second), jobs)
	mbps := func(b *testing.B, d time.Duration) {
		b.ReportMetric(float64(size)/(1<<20)/d.Seconds()*float64(b.N), "MB/s")
	}
	// Warm the page cache once so the order of the sub-benchmarks does not decide the result.
	if out, err := exec.Command(filepath.Join(pg.BinDir, "pg_amcheck"), "-h", pg.SocketDir, "-p", strconv.Itoa(pg.Port), "-U", "postgres", "--all", "-j", strconv.Itoa(jobs)).CombinedOutput(); err != nil {
		b.Fatalf("pg_amcheck warm-up: %v\n%s", err, out)
	}

	b.Run("firedrill-amcheck", func(b *testing.B) {
		env := &checks.Env{DB: pgDB{pg}, Parallel: jobs, Now: time.Now}
		start := time.Now()
		for i := 0; i < b.N; i++ {
			fs := (&checks.Amcheck{ChunkBlocks: 8192}).Run(ctx, env)
			if fs[0].Status != checks.Pass {
				b.Fatalf("amcheck: %+v", fs[0])
			}
		}
		mbps(b, time.Since(start))
	})
	b.Run("pg_amcheck-heapallindexed", func(b *testing.B) {
		start := time.Now()
		for i := 0; i < b.N; i++ {
			cmd := exec.Command(filepath.Join(pg.BinDir, "pg_amcheck"), "-h", pg.SocketDir, "-p", strconv.Itoa(pg.Port), "-U", "postgres",
				"--all", "--heapallindexed", "-j", strconv.Itoa(jobs))
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("pg_amcheck: %v\n%s", err, out)
			}
		}
		mbps(b, time.Since(start))
	})
	b.Run("firedrill-all-checks", func(b *testing.B) {
		env := &checks.Env{DB: pgDB{pg}, Parallel: jobs, Now: time.Now, RPO: time.Hour}
		cfg := checks.Config{Amcheck: checks.AmcheckOn(true), Checksums: ptr(true), RowCounts: &checks.RowCountConfig{}}
		start := time.Now()
		for i := 0; i < b.N; i++ {
			for _, c := range checks.Build(cfg) {
				for _, f := range c.Run(ctx, env) {
					if f.Status != checks.Pass {
						b.Fatalf("%s: %+v", f.Check, f)
					}
				}
			}
		}
		mbps(b, time.Since(start))
	})
}

func envInt(k string, d int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return d
}
