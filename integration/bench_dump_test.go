package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/integration/harness"
	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/source/dump"
)

// restoreSettings are the settings firedrill's dump restore gives its fresh cluster
// (restore/source/dump): the plain pg_restore's cluster gets the same, so that the comparison
// measures firedrill's own work (checksum pass, role scan, initdb, start, stop), not durability.
var restoreSettings = map[string]string{"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
	"autovacuum": "off", "max_wal_size": "4GB", "archive_mode": "off", "max_wal_senders": "0", "wal_level": "minimal", "jit": "off"}

// BenchmarkDumpRestore restores one custom-format dump (pgbench scale FIREDRILL_BENCH_DUMP_SCALE,
// default 110, dumped with -Z FIREDRILL_BENCH_DUMP_Z, default 0: a file of about 1 GB) two
// ways, with --jobs FIREDRILL_BENCH_JOBS (default 2): firedrill's dump source (SHA-256 of the
// file beside the restore, role scan, a fresh cluster, pg_restore, clean stop) and a plain
// initdb + start + pg_restore -j + stop of the same file, without and with data checksums,
// each after a sync so that no run pays for another's writeback. It reports each in seconds; the drill's checks come on top and are not part
// of any.
//
//	make bench BENCH=DumpRestore
func BenchmarkDumpRestore(b *testing.B) {
	scale := envInt("FIREDRILL_BENCH_DUMP_SCALE", 110)
	z := 0
	if v, err := strconv.Atoi(os.Getenv("FIREDRILL_BENCH_DUMP_Z")); err == nil {
		z = v
	}
	jobs := envInt("FIREDRILL_BENCH_JOBS", 2)
	ctx := context.Background()
	started := time.Now()
	pg := harness.StartPostgres(b, harness.PostgresOptions{PgbenchScale: scale})
	b.Logf("source: pgbench scale %d loaded in %s", scale, time.Since(started).Round(time.Second))
	base := harness.TempDir(b)
	file := filepath.Join(base, "bench.dump")
	started = time.Now()
	if out, err := exec.CommandContext(ctx, filepath.Join(pg.BinDir, "pg_dump"), "-h", pg.SocketDir, "-p", strconv.Itoa(pg.Port),
		"-U", pg.Superuser, "-d", "postgres", "-Fc", "-Z", strconv.Itoa(z), "-f", file).CombinedOutput(); err != nil {
		b.Fatalf("pg_dump: %v\n%s", err, out)
	}
	fi, err := os.Stat(file)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("dump: %s, %d MB (-Fc -Z%d), written in %s", file, fi.Size()>>20, z, time.Since(started).Round(time.Second))
	if err := pg.Stop(30 * time.Second); err != nil { // the source's memory and CPU are the restores'
		b.Fatal(err)
	}
	runAs, err := postgres.ResolveRunAs("")
	if err != nil {
		b.Fatal(err)
	}
	// Read the file once so that neither run pays for the cold cache alone.
	if out, err := exec.Command("cat", file).Output(); err != nil || int64(len(out)) != fi.Size() {
		b.Fatalf("warming the page cache: %v", err)
	}
	// Each run starts with nothing dirty in the page cache: the source's load and the dump
	// (written with fsync off) would otherwise be written back during whichever run came first.
	scratch := func(b *testing.B, name string) string {
		syscall.Sync()
		d := filepath.Join(base, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			b.Fatal(err)
		}
		if err := runAs.Chown(d); err != nil {
			b.Fatal(err)
		}
		return d
	}
	meta, err := (&dump.Source{Target: "bench", Dir: base, Pattern: "bench.dump"}).Get(ctx, "bench.dump")
	if err != nil {
		b.Fatal(err)
	}
	plain := func(b *testing.B, name string, dataChecksums bool) {
		for i := 0; i < b.N; i++ {
			dir := scratch(b, fmt.Sprintf("%s-%d", name, i))
			t0 := time.Now()
			inst, err := postgres.NewInstance(ctx, postgres.InstanceOptions{BinDir: pg.BinDir, Dir: dir, RunAs: runAs, Settings: restoreSettings, DataChecksums: dataChecksums})
			if err != nil {
				b.Fatal(err)
			}
			out, err := exec.CommandContext(ctx, filepath.Join(pg.BinDir, "pg_restore"), "-h", inst.SocketDir, "-p", strconv.Itoa(inst.Port),
				"-U", inst.Superuser, "-d", "postgres", "--jobs", strconv.Itoa(jobs), file).CombinedOutput()
			if err != nil {
				b.Fatalf("pg_restore: %v\n%s", err, out)
			}
			if err := inst.Stop(60 * time.Second); err != nil {
				b.Fatal(err)
			}
			took := time.Since(t0)
			b.Logf("plain initdb (data checksums %v) + pg_restore --jobs %d + stop: %s", dataChecksums, jobs, took.Round(100*time.Millisecond))
			b.ReportMetric(took.Seconds(), "s/restore")
			os.RemoveAll(dir)
		}
	}
	b.Run("plain-pg_restore", func(b *testing.B) { plain(b, "plain", false) })
	b.Run("firedrill-dump-source", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			dir := scratch(b, fmt.Sprintf("firedrill-%d", i))
			src := &dump.Source{Target: "bench", Dir: base, Pattern: "bench.dump", Jobs: jobs}
			t0 := time.Now()
			var phases []string
			cp, err := src.Materialize(ctx, drill.MaterializeRequest{Snapshot: meta, ScratchDir: dir, Status: func(s string) {
				phases = append(phases, fmt.Sprintf("%.1fs %s", time.Since(t0).Seconds(), s))
			}})
			took := time.Since(t0)
			if err != nil {
				b.Fatal(err)
			}
			for _, f := range cp.Findings {
				if f.Status != checks.Pass {
					b.Fatalf("%s: %s", f.Check, f.Message)
				}
			}
			b.Logf("firedrill: %s (phases: %s)", took.Round(100*time.Millisecond), strings.Join(phases, "; "))
			b.ReportMetric(took.Seconds(), "s/restore")
			os.RemoveAll(dir)
		}
	})
	// A cluster with data checksums (firedrill's dump restores made one until they were found
	// to prove nothing of a dump): what they cost.
	b.Run("plain-pg_restore-data-checksums", func(b *testing.B) { plain(b, "plain-checksums", true) })
}
