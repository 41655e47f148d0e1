package policy_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/firedrill/firedrill/audit/policy"
)

// parseLines parses doc as configFile and returns every error line (nil when it parses).
func parseLines(t *testing.T, doc string) []string {
	t.Helper()
	cfg, err := policy.Parse(configFile, []byte(doc))
	if err == nil {
		return nil
	}
	if cfg != nil {
		t.Errorf("Parse returned a config with an error")
	}
	if !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("errors.Is(err, ErrInvalid) = false for %v", err)
	}
	return strings.Split(err.Error(), "\n")
}

// wantLines compares every error line exactly, in order.
func wantLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestParseSyntaxErrorLine(t *testing.T) {
	const f = configFile
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{
			// yaml.v3 says "line 2", the line of the block the tab breaks.
			name: "tab on line 3",
			yaml: "targets:\n  - name: orders\n\tconnection: x\n",
			want: f + ":3: malformed YAML: found a tab character that violates indentation",
		},
		{
			name: "tab deep in a file",
			yaml: minimalTarget + "    restore:\n      local:\n\t\tlisten: tcp\n",
			want: f + ":11: malformed YAML: found character that cannot start any token",
		},
		{
			// yaml.v3 says "line 2" (the line before): the list item is on line 3.
			name: "list item where a key belongs",
			yaml: "history:\n  dir: /x\n- oops\n",
			want: f + ":3: malformed YAML: did not find expected key",
		},
		{
			name: "key indented less than its siblings",
			yaml: "targets:\n  - name: orders\n    engine: postgres\n   connection: x\n",
			want: f + ":4: malformed YAML: did not find expected '-' indicator",
		},
		{
			// No line in yaml's message at all: the alias is on line 3.
			name: "unknown alias",
			yaml: "history:\n  dir: /x\nextra: *nope\n",
			want: f + ":3: malformed YAML: unknown anchor 'nope' referenced",
		},
		{
			name: "unclosed flow mapping on the first line",
			yaml: "targets: [{name: a\n",
			want: f + ":1: malformed YAML: did not find expected ',' or '}'",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantLines(t, parseLines(t, tt.yaml), []string{tt.want})
		})
	}
}

func TestParseReportsTypeAndValidationErrorsTogether(t *testing.T) {
	const f = configFile
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "a wrong type no longer hides the validation errors around it",
			yaml: `targets:
  - name: orders
    engine: oracle
    connection:
      dsn: "host=/run/pg"
    snapshot:
      local:
        dataDir: /var/lib/pg
        parallel: many
    objectives:
      rto: soon
    checks:
      parallel: 99
`,
			want: []string{
				f + `:3: targets[0].engine: "oracle" is not supported (supported: postgres, mariadb, mysql, redis, mongodb)`,
				f + `:7: targets[0].snapshot.local.repository: required with driver local: the directory that keeps this target's snapshots`,
				f + ":9: targets[0].snapshot.local.parallel: expected a different type: got !!str `many` into int",
				f + `:11: targets[0].objectives.rto: invalid duration "soon" (use e.g. 90s, 10m, 1h, 31d, 1d12h)`,
				f + `:13: targets[0].checks.parallel: must be between 1 and 64, got 99`,
			},
		},
		{
			name: "an unknown key and an unrelated validation error",
			yaml: strings.Replace(minimalTarget, "  - name: orders\n", "  - name: Orders\n    engnie: postgres\n", 1),
			want: []string{
				f + `:2: targets[0].name: "Orders" is not a valid name: lowercase letters, digits and '-', at most 63`,
				f + `:3: targets[0].engnie: unknown key "engnie" (did you mean "engine"?)`,
			},
		},
		{
			// dataDir is unset because it was mistyped: "required" would say the same twice.
			name: "a mistyped key does not also report the key it was meant to be",
			yaml: strings.Replace(minimalTarget, "dataDir:", "dataDri:", 1),
			want: []string{f + `:7: targets[0].snapshot.local.dataDri: unknown key "dataDri" (did you mean "dataDir"?)`},
		},
		{
			name: "a mistyped key does not also report its incomplete parent",
			yaml: strings.Replace(minimalTarget, "      dsn:", "      dns:", 1),
			want: []string{f + `:4: targets[0].connection.dns: unknown key "dns" (did you mean "dsn"?)`},
		},
		{
			name: "a field of the wrong type is not also reported as missing",
			yaml: strings.Replace(minimalTarget, "name: orders", "name: [orders]", 1),
			want: []string{f + ":2: targets[0].name: expected a different type: got !!seq into string"},
		},
		{
			// The item is dropped from the list: the items after it would be validated under
			// the wrong index and line, so only the decode error is reported.
			name: "a list item of the wrong kind",
			yaml: "targets:\n  - orders\n  - name: Items\n",
			want: []string{f + ":2: targets[0]: expected a different type: got !!str `orders` into policy.Target"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantLines(t, parseLines(t, tt.yaml), tt.want)
		})
	}
}

const secret = "s3cret-PW"

func TestParseMalformedDSN(t *testing.T) {
	const f = configFile
	tests := []struct {
		name, engine, dsn, want string
	}{
		{"postgres URL with a bad port", "postgres", "postgres://app:" + secret + "@db.example:54x2/orders",
			f + ":5: targets[0].connection.dsn: malformed DSN: invalid port"},
		{"postgres keyword/value with a bad port", "postgres", "host=/run/pg port=abc user=app password=" + secret,
			f + ":5: targets[0].connection.dsn: malformed DSN: invalid port"},
		{"postgres keyword/value with a quoted password", "postgres", "host=/run/pg user=app password='" + secret + "' connect_timeout=soon",
			f + `:5: targets[0].connection.dsn: malformed DSN: invalid connect_timeout (strconv.ParseInt: parsing "soon": invalid syntax)`},
		{"postgres URL that does not parse", "postgres", "postgres://app:" + secret + "@[::1/orders",
			f + `:5: targets[0].connection.dsn: malformed DSN: failed to parse as URL (end of string reached when looking for matching "]" in IPv6 host address in URI)`},
		{"postgres bad sslmode", "postgres", "postgres://app:" + secret + "@db/orders?sslmode=sometimes",
			f + ":5: targets[0].connection.dsn: malformed DSN: failed to configure TLS (sslmode is invalid)"},
		{"postgres not a DSN at all", "postgres", secret,
			f + ":5: targets[0].connection.dsn: malformed DSN: failed to parse as keyword/value (invalid keyword/value)"},
		{"redis URL with a bad port quotes no URL", "redis", "redis://app:" + secret + "@cache:63x9/0",
			f + `:5: targets[0].connection.dsn: malformed DSN: parse "(the DSN)": invalid port ":63x9" after host`},
		{"mariadb DSN without the database slash", "mariadb", "app:" + secret + "@tcp(db:3306)",
			f + ":5: targets[0].connection.dsn: malformed DSN: invalid DSN: missing the slash separating the database name"},
		{"mongodb URL with a bad port", "mongodb", "mongodb://app:" + secret + "@db:27x17/admin",
			f + `:5: targets[0].connection.dsn: malformed DSN: invalid host "": port must be an integer: strconv.Atoi: parsing "27x17": invalid syntax`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A redis or postgres target with the local driver; mariadb and mongodb on csi.
			snap := "    snapshot:\n      local: {dataDir: /var/lib/db, repository: /backups/orders}\n"
			if tt.engine == "mariadb" || tt.engine == "mongodb" {
				snap = "    snapshot:\n      driver: csi\n      csi: {namespace: db, pvc: data, className: fast}\n"
			}
			doc := "targets:\n  - name: orders\n    engine: " + tt.engine + "\n    connection:\n      dsn: " + strconv.Quote(tt.dsn) + "\n" + snap
			got := parseLines(t, doc)
			wantLines(t, got, []string{tt.want})
			if strings.Contains(strings.Join(got, "\n"), secret) {
				t.Errorf("the error shows the password: %v", got)
			}
		})
	}
	t.Run("well-formed DSNs of every engine pass", func(t *testing.T) {
		for engine, dsn := range map[string]string{
			"postgres": "postgres://app:" + secret + "@db.example:5432/orders?sslmode=require",
			"redis":    "redis://:" + secret + "@cache:6379/0",
			"mariadb":  "app:" + secret + "@tcp(db:3306)/shop",
			"mongodb":  "mongodb://app:" + secret + "@db:27017/admin",
		} {
			if err := policy.DSNProblem(engine, dsn); err != nil {
				t.Errorf("%s: %v", engine, err)
			}
		}
	})
}

func TestTargetDSNFromEnvironmentIsChecked(t *testing.T) {
	t.Setenv("ORDERS_DSN", "postgres://app:"+secret+"@db:port/orders")
	tg := &policy.Target{Name: "orders", Engine: "postgres", Connection: policy.Connection{DSNEnv: "ORDERS_DSN"}}
	_, err := tg.DSN()
	if err == nil {
		t.Fatal("DSN() accepted a malformed DSN")
	}
	want := "environment: targets.orders.connection.dsnEnv: environment variable ORDERS_DSN holds a malformed DSN: invalid port"
	if err.Error() != want {
		t.Errorf("DSN() = %q, want %q", err, want)
	}
	if !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("errors.Is(err, ErrInvalid) = false: %v", err)
	}
}

func TestParseRunAsUser(t *testing.T) {
	const f = configFile
	tests := []struct {
		name, user string
		want       []string
	}{
		{"a user that does not exist", "nosuchuser-firedrill",
			[]string{f + `:11: targets[0].restore.local.runAsUser: user "nosuchuser-firedrill" does not exist on this machine: create it (useradd --system nosuchuser-firedrill) or name an existing unprivileged user`}},
		{"root", "root",
			[]string{f + `:11: targets[0].restore.local.runAsUser: user "root" is root, and PostgreSQL refuses to run as root: name an unprivileged user`}},
		{"an existing unprivileged user", "nobody", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := minimalTarget + "    restore:\n      local:\n        runAsUser: " + tt.user + "\n"
			wantLines(t, parseLines(t, doc), tt.want)
		})
	}
}

func TestParseOverlappingPaths(t *testing.T) {
	const f = configFile
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	if err := os.MkdirAll(filepath.Join(real, "pgdata"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	// two targets; a's paths on lines 6-8, b's on lines 14-16.
	two := func(aData, aRepo, aScratch, bData, bRepo, bScratch string) string {
		return `targets:
  - name: a
    connection: {dsn: "host=/run/pg"}
    snapshot:
      local:
        dataDir: ` + aData + `
        repository: ` + aRepo + `
    restore: {local: {scratchDir: ` + aScratch + `}}
  - name: b
    connection: {dsn: "host=/run/pg"}
    snapshot:
      local:
        dataDir: ` + bData + `
        repository: ` + bRepo + `
    restore: {local: {scratchDir: ` + bScratch + `}}
`
	}
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"separate paths and a shared scratch directory are fine",
			two("/pg/a", "/backups/a", "/scratch", "/pg/b", "/backups/b", "/scratch"), nil},
		{"the same repository",
			two("/pg/a", "/backups/shared", "/scratch", "/pg/b", "/backups/shared/", "/scratch"),
			[]string{f + ":14: targets[1].snapshot.local.repository: the same directory as the repository /backups/shared of target a (targets[0].snapshot.local.repository, line 7): each target needs a repository of its own (a drill restores the newest snapshot in its repository)"}},
		{"the same repository through a symlink",
			two("/pg/a", real+"/repo", "/scratch", "/pg/b", link+"/repo", "/scratch"),
			[]string{f + ":14: targets[1].snapshot.local.repository: the same directory as the repository " + real + "/repo of target a (targets[0].snapshot.local.repository, line 7): each target needs a repository of its own (a drill restores the newest snapshot in its repository)"}},
		{"a repository inside another",
			two("/pg/a", "/backups", "/scratch", "/pg/b", "/backups/b", "/scratch"),
			[]string{f + ":14: targets[1].snapshot.local.repository: inside the repository /backups of target a (targets[0].snapshot.local.repository, line 7): each target needs a repository of its own, and neither inside the other"}},
		{"a repository containing another",
			two("/pg/a", "/backups/a/x", "/scratch", "/pg/b", "/backups/a", "/scratch"),
			[]string{f + ":14: targets[1].snapshot.local.repository: contains the repository /backups/a/x of target a (targets[0].snapshot.local.repository, line 7): each target needs a repository of its own, and neither inside the other"}},
		{"a repository inside its own data directory",
			two("/pg/a", "/pg/a/backups", "/scratch", "/pg/b", "/backups/b", "/scratch"),
			[]string{f + ":7: targets[0].snapshot.local.repository: inside the data directory /pg/a of target a (targets[0].snapshot.local.dataDir, line 6): a snapshot would copy the repository into itself; keep snapshots outside every data directory"}},
		{"a repository inside a symlinked data directory, named by its real path",
			two(link+"/pgdata", real+"/pgdata/backups", "/scratch", "/pg/b", "/backups/b", "/scratch"),
			[]string{f + ":7: targets[0].snapshot.local.repository: inside the data directory " + link + "/pgdata, which resolves to " + real + "/pgdata, of target a (targets[0].snapshot.local.dataDir, line 6): a snapshot would copy the repository into itself; keep snapshots outside every data directory"}},
		{"a repository inside another target's data directory",
			two("/pg/a", "/backups/a", "/scratch", "/pg/b", "/pg/a/repo", "/scratch"),
			[]string{f + ":14: targets[1].snapshot.local.repository: inside the data directory /pg/a of target a (targets[0].snapshot.local.dataDir, line 6): a snapshot would copy the repository into itself; keep snapshots outside every data directory"}},
		{"a repository containing a data directory",
			two("/srv/a/pgdata", "/srv/a", "/scratch", "/pg/b", "/backups/b", "/scratch"),
			[]string{f + ":7: targets[0].snapshot.local.repository: contains the data directory /srv/a/pgdata of target a (targets[0].snapshot.local.dataDir, line 6): keep snapshots and live data directories apart"}},
		{"a repository inside another target's WAL archive",
			two("/pg/a", "/archive/a/snapshots", "/scratch", "/pg/b", "/backups/b", "/scratch") + "    audit: {wal: {archive: {path: /archive/a}}}\n",
			[]string{f + ":7: targets[0].snapshot.local.repository: inside the WAL archive /archive/a of target b (targets[1].audit.wal.archive, line 16): archive cleanup would reach the snapshots; keep them apart"}},
		{"a repository containing a WAL archive",
			two("/pg/a", "/backups/a", "/scratch", "/pg/b", "/backups/b", "/scratch") + "    audit: {wal: {archive: {path: /backups/b/wal}}}\n",
			[]string{f + ":14: targets[1].snapshot.local.repository: contains the WAL archive /backups/b/wal of target b (targets[1].audit.wal.archive, line 16): its files would sit among the snapshots; keep them apart"}},
		{"a scratch directory inside a data directory and one inside a repository",
			two("/pg/a", "/backups/a", "/pg/a/tmp", "/pg/b", "/backups/b", "/backups/b/scratch"),
			[]string{
				f + ":8: targets[0].restore.local.scratchDir: inside the data directory /pg/a of target a (targets[0].snapshot.local.dataDir, line 6): drills would write copies of the database into a live data directory",
				f + ":15: targets[1].restore.local.scratchDir: inside the repository /backups/b of target b (targets[1].snapshot.local.repository, line 14): drills' scratch copies would sit among its snapshots",
			}},
		{"the docker runtime's scratch directory inside a data directory",
			strings.Replace(two("/pg/a", "/backups/a", "/pg/a/tmp", "/pg/b", "/backups/b", "/scratch"), "restore: {local:", "restore: {runtime: docker, local:", 1),
			[]string{f + ":8: targets[0].restore.local.scratchDir: inside the data directory /pg/a of target a (targets[0].snapshot.local.dataDir, line 6): drills would write copies of the database into a live data directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantLines(t, parseLines(t, tt.yaml), tt.want)
		})
	}
}
