package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/integration/harness"
)

// Base backups of a cluster with a tablespace, in tar format (<oid>.tar beside base.tar) and in
// plain format (the tablespace relocated with --tablespace-mapping, linked from pg_tblspc),
// drill clean: the table in the tablespace is read back from the copy in scratch, never from
// production's tablespace directory.
func TestDrillBaseBackupTablespace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	pg := harness.StartPostgres(t, harness.PostgresOptions{Archive: true, DataChecksums: true})
	ts := filepath.Join(pg.Dir, "tablespace")
	if err := os.MkdirAll(ts, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := pg.RunAs.Chown(ts); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"CREATE TABLESPACE fast LOCATION '" + ts + "'",
		"CREATE TABLE spaced (id int PRIMARY KEY, pad text) TABLESPACE fast",
		"INSERT INTO spaced SELECT g, repeat('x', 100) FROM generate_series(1, 1000) g"} {
		if err := pg.Exec(ctx, "postgres", q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	backups := filepath.Join(pg.Dir, "backups")
	relocated := filepath.Join(pg.Dir, "tablespace-copy")
	for name, args := range map[string][]string{
		"a-tar":   {"-Ft"},
		"b-plain": {"-Fp", "--tablespace-mapping=" + ts + "=" + relocated},
	} {
		cmd := exec.CommandContext(ctx, filepath.Join(pg.BinDir, "pg_basebackup"),
			append([]string{"-h", pg.SocketDir, "-p", strconv.Itoa(pg.Port), "-U", pg.Superuser, "-c", "fast", "-D", filepath.Join(backups, name)}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pg_basebackup %v: %v\n%s", args, err, out)
		}
	}
	w := &walPrimary{pg: pg, backups: backups}
	w.switchAndWait(t, ctx)
	for _, id := range []string{"a-tar", "b-plain"} {
		t.Run(id, func(t *testing.T) {
			scratch := filepath.Join(harness.TempDir(t), "scratch")
			os.MkdirAll(scratch, 0o755)
			cfg := basebackupConfig(t, w, backups, pg.ArchiveDir, "", scratch)
			b, _ := os.ReadFile(cfg)
			extra := `        - name: spaced-rows
          query: SELECT count(*) FROM spaced
          expect: {equals: "1000"}
        - name: tablespace-in-scratch
          query: SELECT count(*) FROM pg_tablespace WHERE pg_tablespace_location(oid) LIKE '` + scratch + `/%'
          expect: {equals: "1"}
history:`
			os.WriteFile(cfg, []byte(strings.Replace(strings.Replace(string(b), "history:", extra, 1), "SELECT count(*) FROM drill_rows WHERE id = 1", "SELECT 1", 1)), 0o600)
			r := runCLI(t, ctx, "drill", "--config", cfg, "--snapshot", id, "--output", "json")
			d := parseDrill(t, r)
			if r.code != 0 {
				t.Fatalf("exit %d (%s)\nchecks: %+v\n%s", r.code, d.Error, d.Checks, r.stderr)
			}
			for _, name := range []string{"snapshot-integrity", "wal-continuity", "recovery", "amcheck", "sql:spaced-rows", "sql:tablespace-in-scratch"} {
				if st, msg := d.check(name); st != "pass" {
					t.Errorf("%s = %s %s, want pass", name, st, msg)
				}
			}
			if left := leftovers(t, scratch); len(left) != 0 {
				t.Errorf("scratch left behind: %v", left)
			}
		})
	}
}
