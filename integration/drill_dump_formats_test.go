package integration

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/firedrill/firedrill/integration/harness"
)

func zstdOf(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipOf(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// Real dumps of PostgreSQL 15, compressed with gzip or zstd as a whole, and directory dumps
// tarred by tar(1), drill to a pass (custom dumps streamed to pg_restore with one job, or
// decompressed into scratch first for --jobs 2); each truncated compressed file fails the
// drill (exit 1) with a dump-restore finding naming it, and scratch is left empty.
func TestDrillDumpCompressedAndTarred(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{PgbenchScale: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	custom := pgDumpOf(t, ctx, pg, "-Fc")
	plain := pgDumpOf(t, ctx, pg, "-Fp")
	ftar := pgDumpOf(t, ctx, pg, "-Ft")
	dirBase := harness.TempDir(t)
	pgDumpOf(t, ctx, pg, "-Fd", "-f", filepath.Join(dirBase, "orders.dir"))
	tarred := func(t *testing.T, flags ...string) []byte {
		t.Helper()
		out, err := exec.CommandContext(ctx, "tar", append(append([]string{"-C", dirBase}, flags...), "-f", "-", "orders.dir")...).Output()
		if err != nil {
			t.Fatalf("tar %v: %v", flags, err)
		}
		return out
	}
	dirTar := tarred(t, "-c")
	cut := func(b []byte) []byte { return b[:len(b)*2/3] }
	tests := []struct {
		name, file string
		body       []byte
		jobs       int
		wantNote   string
		fail       string // the file the dump-restore finding must name
	}{
		{name: "zstd custom, jobs 2", file: "orders.dump.zst", body: zstdOf(t, custom), jobs: 2, wantNote: "decompressed into scratch first: pg_restore --jobs 2"},
		{name: "zstd custom, jobs 1", file: "orders.dump.zst", body: zstdOf(t, custom), jobs: 1, wantNote: "was streamed to pg_restore"},
		{name: "zstd custom without a suffix", file: "orders.dump", body: zstdOf(t, custom), jobs: 1, wantNote: "(zstd) was streamed"},
		{name: "zstd plain", file: "orders.sql.zst", body: zstdOf(t, plain), jobs: 2},
		{name: "tar of a directory dump", file: "orders.tar", body: dirTar, jobs: 2},
		{name: "gzip tar of a directory dump", file: "orders.tar.gz", body: tarred(t, "-cz"), jobs: 2},
		{name: "zstd tar of a directory dump", file: "orders.tar.zst", body: zstdOf(t, dirTar), jobs: 2},
		{name: "pg_dump -Ft", file: "orders.tar", body: ftar, jobs: 2},
		{name: "zstd pg_dump -Ft", file: "orders.tar.zst", body: zstdOf(t, ftar), jobs: 2, wantNote: "pg_restore reads a tar archive from a file"},
		{name: "truncated zstd custom, jobs 2", file: "orders.dump.zst", body: cut(zstdOf(t, custom)), jobs: 2, fail: "orders.dump.zst"},
		{name: "truncated gzip custom, streamed", file: "orders.dump.gz", body: cut(gzipOf(custom)), jobs: 1, fail: "orders.dump.gz"},
		{name: "truncated zstd plain", file: "orders.sql.zst", body: cut(zstdOf(t, plain)), jobs: 2, fail: "orders.sql.zst"},
		{name: "truncated zstd tar", file: "orders.tar.zst", body: cut(zstdOf(t, dirTar)), jobs: 2, fail: "orders.tar.zst"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base, dumps, scratch := dumpDrillDirs(t)
			if err := os.WriteFile(filepath.Join(dumps, tc.file), tc.body, 0o644); err != nil {
				t.Fatal(err)
			}
			cfg := filepath.Join(base, "firedrill.yaml")
			if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`targets:
  - name: orders
    engine: postgres
    connection:
      dsn: %q
    restore:
      source: {kind: dump, dir: %s, jobs: %d}
      local: {scratchDir: %s}
    objectives: {rto: 10m, rpo: 1h}
    checks:
      amcheck: false
      rowCounts:
        min: {public.pgbench_accounts: 100000}
history: {dir: %s}
`, pg.DSN("postgres"), dumps, tc.jobs, scratch, filepath.Join(base, "history"))), 0o644); err != nil {
				t.Fatal(err)
			}
			r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json")
			d := parseDrill(t, r)
			st, msg := d.check("dump-restore")
			if tc.fail == "" {
				if r.code != 0 || st != "pass" {
					t.Fatalf("exit %d, dump-restore %s %q; checks %+v\n%s", r.code, st, msg, d.Checks, r.stderr)
				}
				if !strings.Contains(r.stdout, tc.wantNote) {
					t.Errorf("no note %q in:\n%s", tc.wantNote, r.stdout)
				}
				// The fresh cluster has no data checksums: they would prove nothing of a dump.
				if st, msg := d.check("checksums"); st != "pass" || !strings.Contains(msg, "not applicable: a logical dump") {
					t.Errorf("checksums %s %q, want a pass saying it does not apply", st, msg)
				}
				if st, _ := d.check("pg_checksums"); st != "" {
					t.Errorf("pg_checksums ran (%s) on a cluster without data checksums", st)
				}
			} else {
				t.Logf("dump-restore: %s", msg)
				if r.code != 1 || st != "fail" || !strings.Contains(msg, tc.fail) || !strings.Contains(msg, "truncated or corrupt") {
					t.Errorf("exit %d, dump-restore %s %q; want exit 1 and a failure naming %s\n%s", r.code, st, msg, tc.fail, r.stderr)
				}
			}
			if left := leftovers(t, scratch); len(left) != 0 {
				t.Errorf("scratch left behind: %v", left)
			}
			if procs := processesUnder(scratch); len(procs) != 0 {
				t.Errorf("processes left running: %v", procs)
			}
		})
	}
}
