package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/integration/harness"
)

// canarySentinel is the value the canary tests expect; it must never appear in a finding.
const canarySentinel = "fd-canary: ünïcode \t and a trailing space "

// The canary and schema checks against a real PostgreSQL 15: each passes on what is there and
// fails, for its named reason, on what is not; the canary's expected value is in no finding.
func TestCanaryAndSchemaChecks(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{PgbenchScale: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, q := range []string{
		"CREATE TABLE canary (v text)",
		"INSERT INTO canary VALUES ($1)",
		`CREATE SCHEMA sales`, `CREATE TABLE sales."Orders" (id int)`, `CREATE VIEW sales.recent AS SELECT 1 AS x`,
		`CREATE TABLE sales.events (at date) PARTITION BY RANGE (at)`,
		`CREATE TABLE sales.events_2026 PARTITION OF sales.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')`,
	} {
		var args []any
		if strings.Contains(q, "$1") {
			args = []any{canarySentinel}
		}
		if err := pg.Exec(ctx, "postgres", q, args...); err != nil {
			t.Fatal(err)
		}
	}
	env := &checks.Env{DB: pgDB{pg}, Parallel: 1, Now: time.Now}
	secretFile := filepath.Join(t.TempDir(), "canary")
	if err := os.WriteFile(secretFile, []byte(canarySentinel+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FD_TEST_CANARY", canarySentinel)
	t.Setenv("FD_TEST_CANARY_WRONG", canarySentinel[:len(canarySentinel)-1]+"!")
	str := func(s string) *string { return &s }
	tests := []struct {
		name string
		cfg  checks.Config
		want checks.Status
		msg  string
	}{
		{"canary equals", checks.Config{Canary: &checks.CanaryConfig{Query: "SELECT v FROM canary", Equals: str(canarySentinel)}}, checks.Pass, "byte for byte"},
		{"canary from env", checks.Config{Canary: &checks.CanaryConfig{Query: "SELECT v FROM canary", EqualsEnv: "FD_TEST_CANARY"}}, checks.Pass, "environment variable FD_TEST_CANARY"},
		{"canary from file", checks.Config{Canary: &checks.CanaryConfig{Query: "SET search_path = public; SELECT v FROM canary", EqualsFile: secretFile}}, checks.Pass, "file " + secretFile},
		{"canary one byte off", checks.Config{Canary: &checks.CanaryConfig{Query: "SELECT v FROM canary", EqualsEnv: "FD_TEST_CANARY_WRONG"}}, checks.Fail, "differs from the expected value"},
		{"canary re-encoded", checks.Config{Canary: &checks.CanaryConfig{Query: "SELECT convert_to(v, 'LATIN1')::text FROM canary", Equals: str(canarySentinel)}}, checks.Fail, "differs"},
		{"canary trailing space lost", checks.Config{Canary: &checks.CanaryConfig{Query: "SELECT rtrim(v) FROM canary", Equals: str(canarySentinel)}}, checks.Fail, "differs"},
		{"canary NULL", checks.Config{Canary: &checks.CanaryConfig{Query: "SELECT NULL::text", Equals: str(canarySentinel)}}, checks.Fail, "returned NULL"},
		{"canary two rows", checks.Config{Canary: &checks.CanaryConfig{Query: "SELECT v FROM canary, generate_series(1,2)", Equals: str(canarySentinel)}}, checks.Fail, "returned 2 rows"},
		{"canary table missing", checks.Config{Canary: &checks.CanaryConfig{Query: "SELECT v FROM nope", Equals: str(canarySentinel)}}, checks.Fail, `relation "nope" does not exist`},
		{"canary env unset", checks.Config{Canary: &checks.CanaryConfig{Query: "SELECT v FROM canary", EqualsEnv: "FD_TEST_CANARY_UNSET"}}, checks.Error, "FD_TEST_CANARY_UNSET is not set"},
		{"schema met", checks.Config{Schema: &checks.SchemaConfig{MinTables: 7, Tables: []string{"public.pgbench_accounts", "pgbench_branches", `sales."Orders"`, "sales.events"}}}, checks.Pass, "has 8 user table(s)"},
		{"schema missing tables", checks.Config{Schema: &checks.SchemaConfig{Tables: []string{"pgbench_accounts", "public.invoices", "sales.orders", "ledger"}}}, checks.Fail, "missing table(s): public.invoices, sales.orders, ledger"},
		{"schema too few tables", checks.Config{Schema: &checks.SchemaConfig{MinTables: 9}}, checks.Fail, "8 user table(s), fewer than the 9 expected"},
		{"schema names a view", checks.Config{Schema: &checks.SchemaConfig{Tables: []string{"sales.recent"}}}, checks.Fail, "sales.recent (a view, not a table)"},
		{"schema unparsable name", checks.Config{Schema: &checks.SchemaConfig{Tables: []string{"a.b.c.d"}}}, checks.Fail, `could not look table "a.b.c.d" up`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Amcheck, tt.cfg.Checksums, tt.cfg.RowCounts = checks.AmcheckOn(false), new(bool), &checks.RowCountConfig{Enabled: new(bool)}
			cs, _ := checks.BuildFor(tt.cfg, "postgres")
			if len(cs) != 1 {
				t.Fatalf("BuildFor: %d checks", len(cs))
			}
			fs := cs[0].Run(ctx, env)
			if len(fs) != 1 {
				t.Fatalf("%d findings", len(fs))
			}
			f := fs[0]
			b, _ := json.Marshal(f)
			t.Logf("%s", b)
			if f.Status != tt.want || !strings.Contains(f.Message, tt.msg) {
				t.Errorf("finding %s %q, want %s with %q", f.Status, f.Message, tt.want, tt.msg)
			}
			for _, leak := range []string{canarySentinel, strings.TrimSpace(canarySentinel), "ünïcode"} {
				if strings.Contains(string(b), leak) || strings.Contains(fmt.Sprint(f), leak) {
					t.Errorf("the finding holds the canary's value: %s", b)
				}
			}
		})
	}
}

// The canary and schema checks run in a snapshot drill too (they are registered checks, not
// the dump source's): one snapshot, drilled once with the right sentinel and once with a wrong
// one and a missing table.
func TestDrillSnapshotCanaryAndSchema(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{PgbenchScale: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := pg.Exec(ctx, "postgres", "CREATE TABLE canary (v text); INSERT INTO canary VALUES ('fd-snapshot-sentinel')"); err != nil {
		t.Fatal(err)
	}
	tg, cfg := newTarget(t, pg, `    checks:
      amcheck: false
      canary: {query: "SELECT v FROM canary", equalsEnv: FD_TEST_SNAPSHOT_CANARY}
      schema: {minTables: 5, tables: [canary, public.pgbench_accounts]}`)
	snapshotID(t, ctx, cfg)
	t.Setenv("FD_TEST_SNAPSHOT_CANARY", "fd-snapshot-sentinel")
	r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json")
	d := parseDrill(t, r)
	for _, name := range []string{"canary", "schema"} {
		if st, msg := d.check(name); st != "pass" || r.code != 0 {
			t.Errorf("right sentinel: exit %d, %s %s %q", r.code, name, st, msg)
		}
	}
	t.Setenv("FD_TEST_SNAPSHOT_CANARY", "fd-snapshot-sentinel-but-wrong")
	tg.extra = strings.Replace(tg.extra, "public.pgbench_accounts", "public.ledger", 1)
	cfg = writeConfig(t, tg)
	r = runCLI(t, ctx, "drill", "--config", cfg, "--output", "json")
	d = parseDrill(t, r)
	if r.code != 1 {
		t.Errorf("wrong sentinel and a missing table: exit %d, want 1\n%s", r.code, r.stderr)
	}
	if st, msg := d.check("canary"); st != "fail" || strings.Contains(r.stdout+r.stderr, "fd-snapshot-sentinel") {
		t.Errorf("canary %s %q (the output must not hold the value)", st, msg)
	}
	if st, msg := d.check("schema"); st != "fail" || !strings.Contains(msg, "missing table(s): public.ledger") {
		t.Errorf("schema %s %q", st, msg)
	}
}
