package integration

import (
	"bytes"
	"context"
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

// pgDumpOf runs pg_dump of database postgres with args and returns its stdout.
func pgDumpOf(t *testing.T, ctx context.Context, pg *harness.Postgres, args ...string) []byte {
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

// dumpDrillDirs makes a test's dumps, scratch and history directories.
func dumpDrillDirs(t *testing.T) (base, dumps, scratch string) {
	t.Helper()
	base = harness.TempDir(t)
	dumps, scratch = filepath.Join(base, "dumps"), filepath.Join(base, "scratch")
	for _, d := range []string{dumps, scratch} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return base, dumps, scratch
}

// The canary and schema checks run in a dump drill: a canary that matches passes, one that
// does not fails the drill (exit 1, check "canary"), and the expected value is nowhere in
// the output, the logs or the history; a missing table fails "schema", naming it.
func TestDrillDumpCanaryAndSchema(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{PgbenchScale: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const sentinel = "fd-sentinel-7f3a9c"
	if err := pg.Exec(ctx, "postgres", "CREATE TABLE canary (v text); INSERT INTO canary VALUES ('"+sentinel+"')"); err != nil {
		t.Fatal(err)
	}
	custom := pgDumpOf(t, ctx, pg, "-Fc")
	tests := []struct {
		name     string
		expect   string // the value FD_TEST_CANARY holds
		tables   string
		wantCode int
		wantFail string
		wantMsg  string
	}{
		{name: "match", expect: sentinel, tables: "[public.pgbench_accounts, canary]"},
		{name: "canary mismatch", expect: sentinel + "x", tables: "[canary]", wantCode: 1, wantFail: "canary", wantMsg: "differs from the expected value"},
		{name: "missing table", expect: sentinel, tables: "[canary, public.invoices]", wantCode: 1, wantFail: "schema", wantMsg: "missing table(s): public.invoices"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base, dumps, scratch := dumpDrillDirs(t)
			if err := os.WriteFile(filepath.Join(dumps, "orders.dump"), custom, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Setenv("FD_TEST_CANARY", tc.expect)
			history := filepath.Join(base, "history")
			cfg := filepath.Join(base, "firedrill.yaml")
			if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`targets:
  - name: orders
    engine: postgres
    connection:
      dsn: %q
    restore:
      source: {kind: dump, dir: %s}
      local: {scratchDir: %s}
    objectives: {rto: 10m, rpo: 1h}
    checks:
      amcheck: false
      canary: {query: "SELECT v FROM canary", equalsEnv: FD_TEST_CANARY}
      schema: {minTables: 5, tables: %s}
history: {dir: %s}
`, pg.DSN("postgres"), dumps, scratch, tc.tables, history)), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, output := range []string{"json", "table"} {
				r := runCLI(t, ctx, "drill", "--config", cfg, "--output", output)
				if r.code != tc.wantCode {
					t.Fatalf("--output %s: exit %d, want %d\n%s\n%s", output, r.code, tc.wantCode, r.stdout, r.stderr)
				}
				if strings.Contains(r.stdout+r.stderr, sentinel) {
					t.Errorf("--output %s: the output holds the canary's value:\n%s\n%s", output, r.stdout, r.stderr)
				}
				if output != "json" {
					continue
				}
				d := parseDrill(t, r)
				for _, name := range []string{"canary", "schema"} {
					st, msg := d.check(name)
					want := "pass"
					if name == tc.wantFail {
						want = "fail"
						if !strings.Contains(msg, tc.wantMsg) {
							t.Errorf("%s message %q does not say %q", name, msg, tc.wantMsg)
						}
					}
					if st != want {
						t.Errorf("%s = %s %q, want %s", name, st, msg, want)
					}
				}
			}
			// Nothing firedrill wrote (history, evidence, logs) holds the value.
			_ = filepath.WalkDir(base, func(p string, de os.DirEntry, err error) error {
				if err != nil || !de.Type().IsRegular() || strings.HasPrefix(p, dumps) {
					return nil
				}
				if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(sentinel)) {
					t.Errorf("%s holds the canary's value", p)
				}
				return nil
			})
			if left := leftovers(t, scratch); len(left) != 0 {
				t.Errorf("scratch left behind: %v", left)
			}
		})
	}
}
