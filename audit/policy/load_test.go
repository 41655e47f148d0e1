package policy_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/audit/policy"
)

// exampleConfig is the full example of the configuration reference.
const exampleConfig = `targets:
  - name: orders
    engine: postgres
    connection:
      dsn: "host=/run/pg port=5432 user=postgres dbname=postgres"
    snapshot:
      driver: local
      mode: online
      local:
        dataDir: /var/lib/postgresql/15/main
        repository: /backups/orders
    restore:
      runtime: local
    objectives:
      rto: 10m
      rpo: 1h
    checks:
      amcheck: true
      sql:
        - name: balances-match
          query: "SELECT 1"
          database: postgres
          expect: {equals: "t"}
      freshness:
        query: "SELECT max(created_at) FROM orders"
`

// minimalTarget is the smallest valid configuration; error cases start from it.
const minimalTarget = `targets:
  - name: orders
    connection:
      dsn: "host=/run/pg"
    snapshot:
      local:
        dataDir: /var/lib/pg
        repository: /backups/orders
`

const configFile = "/etc/firedrill/firedrill.yaml"

func TestParseExampleAppliesDefaults(t *testing.T) {
	state := t.TempDir()
	t.Setenv("XDG_STATE_HOME", state)

	cfg, err := policy.Parse(configFile, []byte(exampleConfig))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if cfg.File != configFile {
		t.Errorf("File = %q, want %q", cfg.File, configFile)
	}
	if got, want := cfg.TargetNames(), []string{"orders"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("TargetNames() = %v, want %v", got, want)
	}
	tg, ok := cfg.Target("orders")
	if !ok {
		t.Fatal(`Target("orders") not found`)
	}
	if _, ok := cfg.Target("nope"); ok {
		t.Error(`Target("nope") found`)
	}

	deref := func(b *bool) any {
		if b == nil {
			return "<nil>"
		}
		return *b
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"history.dir", cfg.History.Dir, filepath.Join(state, "firedrill", "history")},
		{"engine", tg.Engine, policy.DefaultEngine},
		{"connection.dsn", tg.Connection.DSN, "host=/run/pg port=5432 user=postgres dbname=postgres"},
		{"snapshot.driver", tg.Snapshot.Driver, "local"},
		{"snapshot.mode", tg.Snapshot.Mode, "online"},
		{"snapshot.fastCheckpoint", deref(tg.Snapshot.FastCheckpoint), true},
		{"snapshot.local.dataDir", tg.Snapshot.Local.DataDir, "/var/lib/postgresql/15/main"},
		{"snapshot.local.repository", tg.Snapshot.Local.Repository, "/backups/orders"},
		{"snapshot.local.parallel", tg.Snapshot.Local.Parallel, policy.DefaultCopyParallel},
		{"restore.runtime", tg.Restore.Runtime, policy.DefaultRuntime},
		{"restore.local.listen", tg.Restore.Local.Listen, policy.DefaultListen},
		{"restore.local.scratchDir", tg.Restore.Local.ScratchDir, os.TempDir()},
		{"restore.local.binDir", tg.Restore.Local.BinDir, ""},
		{"restore.local.isolateNetwork", deref(tg.Restore.Local.IsolateNetwork), true},
		{"restore.local.startTimeout", tg.Restore.Local.StartTimeout.Duration, policy.DefaultStartTimeout},
		{"objectives.rto", tg.Objectives.RTO.Duration, 10 * time.Minute},
		{"objectives.rpo", tg.Objectives.RPO.Duration, time.Hour},
		{"objectives.drillEvery", tg.Objectives.DrillEvery.Duration, policy.DefaultDrillEvery},
		{"checks.amcheck", tg.Checks.Amcheck.On(), true},
		{"checks.checksums", deref(tg.Checks.Checksums), true},
		{"checks.rowCounts.enabled", deref(tg.Checks.RowCounts.Enabled), true},
		{"checks.parallel", tg.Checks.Parallel, policy.DefaultCheckParallel},
		{"checks.sql count", len(tg.Checks.SQL), 1},
		{"checks.sql[0].name", tg.Checks.SQL[0].Name, "balances-match"},
		{"checks.sql[0].query", tg.Checks.SQL[0].Query, "SELECT 1"},
		{"checks.sql[0].database", tg.Checks.SQL[0].Database, "postgres"},
		{"checks.sql[0].expect.equals", *tg.Checks.SQL[0].Expect.Equals, "t"},
		{"checks.sql[0].expect.min", tg.Checks.SQL[0].Expect.Min == nil, true},
		{"checks.freshness.query", tg.Checks.Freshness.Query, "SELECT max(created_at) FROM orders"},
		{"checks.freshness.database", tg.Checks.Freshness.Database, policy.DefaultDatabase},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v (%T), want %v (%T)", tt.got, tt.got, tt.want, tt.want)
			}
		})
	}
}

func TestParseKeepsExplicitValues(t *testing.T) {
	cfg, err := policy.Parse(configFile, []byte(`targets:
  - name: orders
    connection:
      dsnEnv: ORDERS_DSN
    snapshot:
      fastCheckpoint: false
      local:
        dataDir: /var/lib/pg
        repository: /backups/orders
        parallel: 8
    restore:
      local:
        listen: tcp
        isolateNetwork: false
        startTimeout: 90s
    objectives:
      drillEvery: 7d
    checks:
      amcheck: false
      checksums: false
      parallel: 3
      rowCounts:
        enabled: false
        min:
          public.orders: 10
          app.public.items: 0
history:
  dir: /var/lib/firedrill/history
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	tg := cfg.Targets[0]
	tests := []struct {
		name      string
		got, want any
	}{
		{"history.dir", cfg.History.Dir, "/var/lib/firedrill/history"},
		{"dsnEnv", tg.Connection.DSNEnv, "ORDERS_DSN"},
		{"fastCheckpoint", *tg.Snapshot.FastCheckpoint, false},
		{"parallel", tg.Snapshot.Local.Parallel, 8},
		{"listen", tg.Restore.Local.Listen, "tcp"},
		{"isolateNetwork", *tg.Restore.Local.IsolateNetwork, false},
		{"startTimeout", tg.Restore.Local.StartTimeout.Duration, 90 * time.Second},
		{"drillEvery", tg.Objectives.DrillEvery.Duration, 7 * 24 * time.Hour},
		{"amcheck", tg.Checks.Amcheck.On(), false},
		{"checksums", *tg.Checks.Checksums, false},
		{"checks.parallel", tg.Checks.Parallel, 3},
		{"rowCounts.enabled", *tg.Checks.RowCounts.Enabled, false},
		{"rowCounts.min", tg.Checks.RowCounts.Min["public.orders"], int64(10)},
		{"freshness", tg.Checks.Freshness == nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v (%T), want %v (%T)", tt.got, tt.got, tt.want, tt.want)
			}
		})
	}
}

// lineOf returns the 1-based line of the first line of doc that contains s.
func lineOf(t *testing.T, doc, s string) int {
	t.Helper()
	for i, l := range strings.Split(doc, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("no line contains %q", s)
	return 0
}

// wantErr is one expected *policy.Error: at is a substring of the line it must point at
// ("" for no line).
type wantErr struct {
	at  string
	key string
	msg string
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []wantErr
	}{
		{
			name: "unknown key with a suggestion",
			yaml: strings.Replace(minimalTarget, "dataDir:", "dataDri:", 1),
			want: []wantErr{{at: "dataDri:", key: "targets[0].snapshot.local.dataDri", msg: `unknown key "dataDri" (did you mean "dataDir"?)`}},
		},
		{
			name: "unknown key differing only in case",
			yaml: strings.Replace(minimalTarget, "repository:", "Repository:", 1),
			want: []wantErr{{at: "Repository:", key: "targets[0].snapshot.local.Repository", msg: `(did you mean "repository"?)`}},
		},
		{
			name: "unknown key in a list item",
			yaml: minimalTarget + "    checks:\n      sql:\n        - nmae: a\n          query: SELECT 1\n          expect: {min: 1}\n",
			want: []wantErr{{at: "- nmae: a", key: "targets[0].checks.sql[0].nmae", msg: `unknown key "nmae" (did you mean "name"?)`}},
		},
		{
			name: "unknown key in a flow mapping",
			yaml: minimalTarget + "    checks:\n      sql:\n        - name: a\n          query: SELECT 1\n          expect: {equal: \"t\"}\n",
			want: []wantErr{{at: "expect:", key: "targets[0].checks.sql[0].expect.equal", msg: `unknown key "equal" (did you mean "equals"?)`}},
		},
		{
			name: "key given twice",
			yaml: minimalTarget + "    name: items\n",
			want: []wantErr{{at: "name: items", key: "targets[0].name", msg: `mapping key "name" already defined at line 2`}},
		},
		{
			name: "unknown top-level key",
			yaml: minimalTarget + "histroy:\n  dir: /x\n",
			want: []wantErr{{at: "histroy:", key: "histroy", msg: `unknown key "histroy" (did you mean "history"?)`}},
		},
		{
			name: "unknown key far from any known one lists them",
			yaml: minimalTarget + "    zzzzzzzz: 1\n",
			want: []wantErr{{at: "zzzzzzzz", key: "targets[0].zzzzzzzz", msg: `unknown key "zzzzzzzz" (known keys: name, engine, connection, snapshot, restore, objectives, checks, retention, audit, schedule)`}},
		},
		{
			name: "bad duration",
			yaml: minimalTarget + "    objectives:\n      rto: 10 minutes\n",
			want: []wantErr{{at: "rto: 10 minutes", key: "targets[0].objectives.rto", msg: `invalid duration "10 minutes"`}},
		},
		{
			name: "explicit zero objective",
			yaml: minimalTarget + "    objectives:\n      rto: 0s\n",
			want: []wantErr{{at: "rto: 0s", key: "targets[0].objectives.rto", msg: "must be greater than zero"}},
		},
		{
			name: "duration that is not a scalar",
			yaml: minimalTarget + "    objectives:\n      rpo: [1h]\n",
			want: []wantErr{{at: "rpo: [1h]", key: "targets[0].objectives.rpo", msg: "expected a duration"}},
		},
		{
			name: "wrong type",
			yaml: strings.Replace(minimalTarget, "repository: /backups/orders", "repository: /backups/orders\n        parallel: many", 1),
			want: []wantErr{{at: "parallel: many", key: "targets[0].snapshot.local.parallel", msg: "expected a different type: got !!str `many`"}},
		},
		{
			name: "bad engine",
			yaml: strings.Replace(minimalTarget, "  - name: orders\n", "  - name: orders\n    engine: oracle\n", 1),
			want: []wantErr{{at: "engine: oracle", key: "targets[0].engine", msg: `"oracle" is not supported (supported: postgres,`}},
		},
		{
			name: "bad snapshot mode",
			yaml: strings.Replace(minimalTarget, "    snapshot:\n", "    snapshot:\n      mode: hot\n", 1),
			want: []wantErr{{at: "mode: hot", key: "targets[0].snapshot.mode", msg: `"hot" is not supported (supported: online, crash-consistent)`}},
		},
		{
			name: "bad snapshot driver",
			yaml: strings.Replace(minimalTarget, "    snapshot:\n", "    snapshot:\n      driver: zfs\n", 1),
			want: []wantErr{{at: "driver: zfs", key: "targets[0].snapshot.driver", msg: `"zfs" is not supported (supported: local,`}},
		},
		{
			name: "bad runtime and listen",
			yaml: minimalTarget + "    restore:\n      runtime: podman\n      local:\n        listen: udp\n",
			want: []wantErr{
				{at: "runtime: podman", key: "targets[0].restore.runtime", msg: `"podman" is not supported (supported: local, docker, kubernetes)`},
				{at: "listen: udp", key: "targets[0].restore.local.listen", msg: `"udp" is not supported (supported: socket, tcp)`},
			},
		},
		{
			name: "local driver refuses crash-consistent",
			yaml: strings.Replace(minimalTarget, "    snapshot:\n", "    snapshot:\n      mode: crash-consistent\n", 1),
			want: []wantErr{{at: "mode: crash-consistent", key: "targets[0].snapshot.mode", msg: "the local driver refuses crash-consistent mode"}},
		},
		{
			name: "missing dataDir",
			yaml: strings.Replace(minimalTarget, "        dataDir: /var/lib/pg\n", "", 1),
			want: []wantErr{{at: "local:", key: "targets[0].snapshot.local.dataDir", msg: "required with driver local"}},
		},
		{
			name: "missing repository",
			yaml: strings.Replace(minimalTarget, "        repository: /backups/orders\n", "", 1),
			want: []wantErr{{at: "local:", key: "targets[0].snapshot.local.repository", msg: "required with driver local"}},
		},
		{
			name: "missing snapshot block",
			yaml: "targets:\n  - name: orders\n    connection:\n      dsn: host=/run/pg\n",
			want: []wantErr{
				{at: "- name: orders", key: "targets[0].snapshot.local.dataDir", msg: "required with driver local"},
				{at: "- name: orders", key: "targets[0].snapshot.local.repository", msg: "required with driver local"},
			},
		},
		{
			name: "parallel out of range",
			yaml: strings.Replace(minimalTarget, "repository: /backups/orders", "repository: /backups/orders\n        parallel: 65", 1),
			want: []wantErr{{at: "parallel: 65", key: "targets[0].snapshot.local.parallel", msg: "must be between 1 and 64, got 65"}},
		},
		{
			name: "duplicate target names",
			yaml: minimalTarget + strings.Replace(strings.TrimPrefix(minimalTarget, "targets:\n"), "/backups/orders", "/backups/orders-2", 1),
			want: []wantErr{{at: "", key: "targets[1].name", msg: `duplicate target name "orders" (also targets[0])`}},
		},
		{
			name: "missing name",
			yaml: strings.Replace(minimalTarget, "  - name: orders\n    connection:", "  - connection:", 1),
			want: []wantErr{{at: "- connection:", key: "targets[0].name", msg: "required: a short name"}},
		},
		{
			name: "no targets",
			yaml: "targets: []\n",
			want: []wantErr{{at: "targets: []", key: "targets", msg: "no targets"}},
		},
		{
			name: "empty file",
			yaml: "",
			want: []wantErr{{at: "", key: "targets", msg: "no targets"}},
		},
		{
			name: "dsn and dsnEnv both",
			yaml: strings.Replace(minimalTarget, `      dsn: "host=/run/pg"`, "      dsn: \"host=/run/pg\"\n      dsnEnv: ORDERS_DSN", 1),
			want: []wantErr{{at: "connection:", key: "targets[0].connection", msg: "set dsn or dsnEnv, not both"}},
		},
		{
			name: "dsn and dsnEnv neither",
			yaml: strings.Replace(minimalTarget, `      dsn: "host=/run/pg"`, "      dsnEnv: \"\"", 1),
			want: []wantErr{{at: "connection:", key: "targets[0].connection", msg: "required: dsn or dsnEnv"}},
		},
		{
			name: "sql assertion without expect",
			yaml: minimalTarget + "    checks:\n      sql:\n        - name: a\n          query: SELECT 1\n",
			want: []wantErr{{at: "- name: a", key: "targets[0].checks.sql[0].expect", msg: "required: {equals: VALUE}"}},
		},
		{
			name: "sql assertion with equals and min",
			yaml: minimalTarget + "    checks:\n      sql:\n        - name: a\n          query: SELECT 1\n          expect: {equals: \"1\", min: 0}\n",
			want: []wantErr{{at: "expect:", key: "targets[0].checks.sql[0].expect", msg: "equals cannot be combined with min or max"}},
		},
		{
			name: "sql assertion with min greater than max",
			yaml: minimalTarget + "    checks:\n      sql:\n        - name: a\n          query: SELECT 1\n          expect: {min: 10, max: 2}\n",
			want: []wantErr{{at: "expect:", key: "targets[0].checks.sql[0].expect", msg: "min 10 is greater than max 2"}},
		},
		{
			name: "sql assertion without name or query",
			yaml: minimalTarget + "    checks:\n      sql:\n        - expect: {max: 2}\n",
			want: []wantErr{
				{at: "- expect:", key: "targets[0].checks.sql[0].name", msg: "required: a short name for the assertion"},
				{at: "- expect:", key: "targets[0].checks.sql[0].query", msg: "required: a query"},
			},
		},
		{
			name: "duplicate sql assertion names",
			yaml: minimalTarget + "    checks:\n      sql:\n        - {name: a, query: SELECT 1, expect: {min: 1}}\n        - {name: a, query: SELECT 2, expect: {min: 1}}\n",
			want: []wantErr{{at: "SELECT 2", key: "targets[0].checks.sql[1].name", msg: `duplicate assertion name "a"`}},
		},
		{
			name: "freshness without query",
			yaml: minimalTarget + "    checks:\n      freshness:\n        database: app\n",
			want: []wantErr{{at: "freshness:", key: "targets[0].checks.freshness.query", msg: "required: a query returning the newest timestamp"}},
		},
		{
			name: "rowCounts key without schema",
			yaml: minimalTarget + "    checks:\n      rowCounts:\n        min:\n          orders: 10\n",
			want: []wantErr{{at: "orders: 10", key: "targets[0].checks.rowCounts.min.orders", msg: "name tables as schema.table or database.schema.table"}},
		},
		{
			name: "rowCounts key with too many parts",
			yaml: minimalTarget + "    checks:\n      rowCounts:\n        min:\n          a.b.c.d: 10\n",
			want: []wantErr{{at: "a.b.c.d: 10", key: "targets[0].checks.rowCounts.min.a.b.c.d", msg: "name tables as schema.table or database.schema.table"}},
		},
		{
			name: "rowCounts negative minimum",
			yaml: minimalTarget + "    checks:\n      rowCounts:\n        min:\n          public.orders: -1\n",
			want: []wantErr{{at: "public.orders: -1", key: "targets[0].checks.rowCounts.min.public.orders", msg: "must be zero or more, got -1"}},
		},
		{
			name: "checks parallel out of range",
			yaml: minimalTarget + "    checks:\n      parallel: -1\n",
			want: []wantErr{{at: "parallel: -1", key: "targets[0].checks.parallel", msg: "must be between 1 and 64, got -1"}},
		},
		{
			name: "binDir that does not exist",
			yaml: minimalTarget + "    restore:\n      local:\n        binDir: /nonexistent/firedrill/bin\n",
			want: []wantErr{{at: "binDir:", key: "targets[0].restore.local.binDir", msg: "/nonexistent/firedrill/bin is not a directory"}},
		},
		{
			// yaml says "line 2", the line of the block the tab breaks: the tab is on line 3.
			name: "malformed YAML",
			yaml: "targets:\n  - name: orders\n\tconnection: x\n",
			want: []wantErr{{at: "\tconnection", key: "", msg: "malformed YAML: found a tab character"}},
		},
		{
			name: "unknown key and bad duration are both reported, in line order",
			yaml: minimalTarget + "    objectives:\n      rto: soon\n      rpoo: 1h\n      drillEvery: often\n",
			want: []wantErr{
				{at: "rto: soon", key: "targets[0].objectives.rto", msg: `invalid duration "soon"`},
				{at: "rpoo:", key: "targets[0].objectives.rpoo", msg: `(did you mean "rpo"?)`},
				{at: "drillEvery: often", key: "targets[0].objectives.drillEvery", msg: `invalid duration "often"`},
			},
		},
		{
			name: "several validation errors are all reported, in line order",
			yaml: `targets:
  - name: Orders
    engine: oracle
    connection: {}
    snapshot:
      mode: crash-consistent
      local:
        repository: /backups/orders
    checks:
      sql:
        - {name: a, query: SELECT 1}
      freshness: {database: app}
`,
			want: []wantErr{
				{at: "name: Orders", key: "targets[0].name", msg: `"Orders" is not a valid name`},
				{at: "engine: oracle", key: "targets[0].engine", msg: "not supported"},
				{at: "connection: {}", key: "targets[0].connection", msg: "required: dsn or dsnEnv"},
				{at: "mode: crash-consistent", key: "targets[0].snapshot.mode", msg: "refuses crash-consistent"},
				{at: "local:", key: "targets[0].snapshot.local.dataDir", msg: "required with driver local"},
				{at: "- {name: a", key: "targets[0].checks.sql[0].expect", msg: "required"},
				{at: "freshness:", key: "targets[0].checks.freshness.query", msg: "required"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErrors(t, tt.yaml, tt.want)
		})
	}
}

func checkErrors(t *testing.T, doc string, want []wantErr) {
	t.Helper()
	cfg, err := policy.Parse(configFile, []byte(doc))
	if err == nil {
		t.Fatalf("Parse succeeded (%+v), want errors", cfg)
	}
	if cfg != nil {
		t.Errorf("Parse returned a config with an error")
	}
	if !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("errors.Is(err, ErrInvalid) = false for %v", err)
	}
	var one *policy.Error
	if !errors.As(err, &one) {
		t.Errorf("errors.As(err, *policy.Error) = false for %v", err)
	}
	var errs policy.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T, want policy.Errors: %v", err, err)
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i, w := range want {
		e := errs[i]
		wantLine := 0
		if w.at != "" {
			wantLine = lineOf(t, doc, w.at)
		}
		if e.File != configFile {
			t.Errorf("error %d: File = %q, want %q", i, e.File, configFile)
		}
		if w.at != "" && e.Line != wantLine {
			t.Errorf("error %d: Line = %d, want %d (%q): %v", i, e.Line, wantLine, w.at, e)
		}
		if e.Key != w.key {
			t.Errorf("error %d: Key = %q, want %q: %v", i, e.Key, w.key, e)
		}
		if !strings.Contains(e.Msg, w.msg) {
			t.Errorf("error %d: Msg = %q, want it to contain %q", i, e.Msg, w.msg)
		}
		prefix := configFile + ": "
		if e.Line > 0 {
			prefix = configFile + ":" + strconv.Itoa(e.Line) + ": "
		}
		if e.Key != "" {
			prefix += e.Key + ": "
		}
		if !strings.HasPrefix(e.Error(), prefix) {
			t.Errorf("error %d: Error() = %q, want prefix %q", i, e.Error(), prefix)
		}
	}
	if got := strings.Count(err.Error(), "\n") + 1; got != len(want) {
		t.Errorf("Error() has %d lines, want one per error (%d):\n%s", got, len(want), err)
	}
}

func TestParseValidationErrorsInLineOrder(t *testing.T) {
	// The engine comes after the snapshot block here, and rowCounts keys are a map: the errors
	// must still come out in the file's line order, the same on every run.
	doc := `targets:
  - name: orders
    connection:
      dsn: "host=/run/pg"
    snapshot:
      mode: crash-consistent
      local:
        dataDir: /var/lib/pg
        repository: /backups/orders
    engine: oracle
    checks:
      rowCounts:
        min:
          a: 1
          b: 1
          c: 1
          d: 1
`
	for range 5 {
		checkErrors(t, doc, []wantErr{
			{at: "mode: crash-consistent", key: "targets[0].snapshot.mode", msg: "refuses crash-consistent"},
			{at: "engine: oracle", key: "targets[0].engine", msg: "not supported"},
			{at: "a: 1", key: "targets[0].checks.rowCounts.min.a", msg: "schema.table"},
			{at: "b: 1", key: "targets[0].checks.rowCounts.min.b", msg: "schema.table"},
			{at: "c: 1", key: "targets[0].checks.rowCounts.min.c", msg: "schema.table"},
			{at: "d: 1", key: "targets[0].checks.rowCounts.min.d", msg: "schema.table"},
		})
	}
}

func TestParseNames(t *testing.T) {
	tests := []struct {
		name  string
		valid bool
	}{
		{"orders", true},
		{"a", true},
		{"orders-eu-1", true},
		{"9lives", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"Orders", false},
		{"-orders", false},
		{"orders-", false},
		{"or_ders", false},
		{"or.ders", false},
		{"'or ders'", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.Replace(minimalTarget, "name: orders", "name: "+tt.name, 1)
			_, err := policy.Parse(configFile, []byte(doc))
			if tt.valid {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			checkErrors(t, doc, []wantErr{{at: "- name:", key: "targets[0].name", msg: "is not a valid name"}})
		})
	}
}

func TestParseResolvesRelativePaths(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "conf", "firedrill.yaml")
	doc := `targets:
  - name: orders
    connection:
      dsn: host=/run/pg
    snapshot:
      local:
        dataDir: pgdata
        repository: ../backups/orders
    restore:
      local:
        binDir: ../bin
        scratchDir: scratch
  - name: items
    connection:
      dsn: host=/run/pg
    snapshot:
      local:
        dataDir: /abs/data
        repository: /abs/repo
history:
  dir: state/history
`
	cfg, err := policy.Parse(file, []byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	tests := []struct{ name, got, want string }{
		{"dataDir", cfg.Targets[0].Snapshot.Local.DataDir, filepath.Join(dir, "conf", "pgdata")},
		{"repository", cfg.Targets[0].Snapshot.Local.Repository, filepath.Join(dir, "backups", "orders")},
		{"binDir", cfg.Targets[0].Restore.Local.BinDir, filepath.Join(dir, "bin")},
		{"scratchDir", cfg.Targets[0].Restore.Local.ScratchDir, filepath.Join(dir, "conf", "scratch")},
		{"absolute dataDir", cfg.Targets[1].Snapshot.Local.DataDir, "/abs/data"},
		{"absolute repository", cfg.Targets[1].Snapshot.Local.Repository, "/abs/repo"},
		{"history.dir", cfg.History.Dir, filepath.Join(dir, "conf", "state", "history")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "firedrill.yaml")
	if err := os.WriteFile(good, []byte(minimalTarget), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("targets: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.yaml")

	t.Run("valid file", func(t *testing.T) {
		cfg, err := policy.Load(good)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if cfg.File != good {
			t.Errorf("File = %q, want %q", cfg.File, good)
		}
	})
	for _, tt := range []struct {
		name, path, msg string
		notExist        bool
	}{
		{"invalid file", bad, "no targets", false},
		{"missing file", missing, "cannot read the configuration", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.Load(tt.path)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if !errors.Is(err, policy.ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false: %v", err)
			}
			if !strings.HasPrefix(err.Error(), tt.path+":") || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q, want it to start with %q and contain %q", err, tt.path+":", tt.msg)
			}
			if tt.notExist && !strings.Contains(err.Error(), "--config") {
				t.Errorf("error %q does not hint at --config", err)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
