package integration

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/integration/harness"
)

// Logical dumps (restore.source.kind: dump) of a real cluster, in each format pg_dump writes,
// drill to a pass with amcheck and row counts; a truncated dump, a failing statement and a
// checksum sidecar that does not match each fail the drill (exit 1) for their named reason,
// and the scratch directory is left empty.
func TestDrillDumps(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{PgbenchScale: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	// Roles production has and a fresh cluster lacks: the drill creates them as stubs.
	for _, q := range []string{"CREATE ROLE app_reader NOLOGIN", "CREATE ROLE app_owner NOLOGIN",
		"GRANT SELECT ON pgbench_accounts TO app_reader", "ALTER TABLE pgbench_history OWNER TO app_owner"} {
		if err := pg.Exec(ctx, "postgres", q); err != nil {
			t.Fatal(err)
		}
	}
	pgDump := func(t *testing.T, args ...string) []byte {
		t.Helper()
		cmd := exec.CommandContext(ctx, filepath.Join(pg.BinDir, "pg_dump"),
			append([]string{"-h", pg.SocketDir, "-p", strconv.Itoa(pg.Port), "-U", pg.Superuser, "-d", "postgres"}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("pg_dump %v: %v: %s", args, err, stderr.String())
		}
		return out
	}
	gzipped := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
		return buf.Bytes()
	}
	custom := pgDump(t, "-Fc")
	plain := pgDump(t, "-Fp")

	type dumpCase struct {
		name string
		// make writes the dump(s) into dir.
		make     func(t *testing.T, dir string)
		wantCode int
		wantFail string // the failing check's name
		wantMsg  string // in its message or evidence
	}
	writeFile := func(t *testing.T, p string, b []byte) {
		t.Helper()
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := []dumpCase{
		{name: "custom", make: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "orders.dump"), custom) }},
		{name: "directory", make: func(t *testing.T, dir string) { pgDump(t, "-Fd", "-f", filepath.Join(dir, "orders.dir")) }},
		{name: "plain", make: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "orders.sql"), plain) }},
		{name: "gzip plain", make: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "orders.sql.gz"), gzipped(plain)) }},
		{name: "gzip custom with a matching sidecar", make: func(t *testing.T, dir string) {
			b := gzipped(custom)
			sum := sha256.Sum256(b)
			writeFile(t, filepath.Join(dir, "orders.dump.gz"), b)
			writeFile(t, filepath.Join(dir, "orders.dump.gz.sha256"), []byte(hex.EncodeToString(sum[:])+"  orders.dump.gz\n"))
		}},
		{name: "truncated custom", make: func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "orders.dump"), custom[:len(custom)*2/3])
		}, wantCode: 1, wantFail: "dump-restore"},
		{name: "plain with a failing statement", make: func(t *testing.T, dir string) {
			bad := strings.Replace(string(plain), "\nCREATE TABLE", "\nCREATE TABEL broken (a int);\nCREATE TABLE", 1)
			writeFile(t, filepath.Join(dir, "orders.sql"), []byte(bad))
		}, wantCode: 1, wantFail: "dump-restore", wantMsg: "syntax error"},
		{name: "truncated plain", make: func(t *testing.T, dir string) {
			cut := plain[:bytes.LastIndex(plain, []byte("\n\\.\n"))+4]
			writeFile(t, filepath.Join(dir, "orders.sql"), cut)
		}, wantCode: 1, wantFail: "dump-restore", wantMsg: "cut short"},
		{name: "sidecar mismatch", make: func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "orders.dump"), custom)
			writeFile(t, filepath.Join(dir, "orders.dump.sha256"), []byte(strings.Repeat("0", 64)+"  orders.dump\n"))
		}, wantCode: 1, wantFail: "snapshot-integrity", wantMsg: "sidecar"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := harness.TempDir(t)
			dumps, scratch := filepath.Join(base, "dumps"), filepath.Join(base, "scratch")
			for _, d := range []string{dumps, scratch} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			tc.make(t, dumps)
			cfg := filepath.Join(base, "firedrill.yaml")
			writeFile(t, cfg, []byte(fmt.Sprintf(`targets:
  - name: orders
    engine: postgres
    connection:
      dsn: %q
    restore:
      source: {kind: dump, dir: %s}
      local: {scratchDir: %s}
    objectives: {rto: 10m, rpo: 1h}
    checks:
      rowCounts:
        min: {public.pgbench_accounts: 100000, public.pgbench_branches: 1}
history: {dir: %s}
`, pg.DSN("postgres"), dumps, scratch, filepath.Join(base, "history"))))
			if tc.name == "custom" {
				// 'snapshots' lists a dump target's restorable backups: its dump files.
				r := runCLI(t, ctx, "snapshots", "--config", cfg, "--output", "json")
				if r.code != 0 || !strings.Contains(r.stdout, `"id": "orders.dump"`) && !strings.Contains(r.stdout, `"id":"orders.dump"`) {
					t.Errorf("snapshots exit %d:\n%s\n%s", r.code, r.stdout, r.stderr)
				}
			}
			r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json")
			d := parseDrill(t, r)
			if r.code != tc.wantCode {
				t.Fatalf("exit %d status %s (%s), want %d\nchecks: %+v\n%s", r.code, d.Status, d.Error, tc.wantCode, d.Checks, r.stderr)
			}
			if tc.wantCode == 0 {
				for _, name := range []string{"snapshot-integrity", "dump-restore", "recovery", "amcheck", "row-counts"} {
					if st, msg := d.check(name); st != "pass" {
						t.Errorf("%s = %q %q, want pass", name, st, msg)
					}
				}
				if !strings.Contains(r.stdout, "NOLOGIN stubs: app_owner, app_reader") {
					t.Errorf("the result does not say which roles were stubbed:\n%s", r.stdout)
				}
			} else {
				st, msg := d.check(tc.wantFail)
				if st != "fail" {
					t.Errorf("%s = %q %q, want fail; checks %+v", tc.wantFail, st, msg, d.Checks)
				}
				var ev string
				for _, c := range d.Checks {
					if c.Name == tc.wantFail {
						ev = fmt.Sprint(c.Message, c.Evidence)
					}
				}
				t.Logf("%s: %s", tc.wantFail, ev)
				if !strings.Contains(ev, tc.wantMsg) {
					t.Errorf("%s does not mention %q: %s", tc.wantFail, tc.wantMsg, ev)
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
