package policy_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/audit/policy"
)

func TestCanaryAndSchemaConfig(t *testing.T) {
	const f = configFile
	with := func(checks string) string { return minimalTarget + "    checks:\n" + checks }
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"canary from config", with("      canary: {query: SELECT v FROM canary, equals: s3cr3t-sentinel}\n"), nil},
		{"canary from an environment variable", with("      canary: {query: SELECT v FROM canary, equalsEnv: CANARY_VALUE, database: app}\n"), nil},
		{"canary from a file", with("      canary: {query: SELECT v FROM canary, equalsFile: /etc/firedrill/canary}\n"), nil},
		{"canary with an empty expected value", with("      canary: {query: SELECT '', equals: \"\"}\n"), nil},
		{"canary without query or value", with("      canary: {database: app}\n"), []string{
			f + ":10: targets[0].checks.canary.query: required: a query returning the one sentinel value, e.g. SELECT value FROM canary",
			f + ":10: targets[0].checks.canary: set exactly one of equals, equalsEnv (an environment variable's name) and equalsFile (a file's path): the expected value",
		}},
		{"canary with two values does not repeat them", with("      canary: {query: SELECT 1, equals: s3cr3t-sentinel, equalsFile: /x}\n"), []string{
			f + ":10: targets[0].checks.canary: set exactly one of equals, equalsEnv (an environment variable's name) and equalsFile (a file's path): the expected value",
		}},
		{"canary equalsEnv that is no variable name", with("      canary: {query: SELECT 1, equalsEnv: \"not a name\"}\n"), []string{
			f + ":10: targets[0].checks.canary.equalsEnv: must be the name of an environment variable (letters, digits and '_', not starting with a digit); the value given is not one and is not repeated here, in case it is a secret",
		}},
		{"schema", with("      schema: {minTables: 4, tables: [public.pgbench_accounts, pgbench_branches]}\n"), nil},
		{"empty schema", with("      schema: {}\n"), []string{
			f + ":10: targets[0].checks.schema: set minTables, tables or both: an empty baseline checks nothing",
		}},
		{"schema with a negative count and bad names", with("      schema:\n        minTables: -1\n        tables: [a, \"\", a]\n"), []string{
			f + ":11: targets[0].checks.schema.minTables: must be zero or more, got -1",
			f + ":12: targets[0].checks.schema.tables[1]: must name a table (schema.table, or a table in the search_path)",
			f + `:12: targets[0].checks.schema.tables[2]: duplicate table "a"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseLines(t, tt.yaml)
			wantLines(t, got, tt.want)
			for _, l := range got {
				if strings.Contains(l, "s3cr3t-sentinel") {
					t.Errorf("an error repeats the canary's expected value: %s", l)
				}
			}
		})
	}
	// A relative equalsFile is relative to the configuration file, as every path in it.
	cfg, err := policy.Parse(f, []byte(with("      canary: {query: SELECT 1, equalsFile: canary.txt}\n")))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Targets[0].Checks.Canary.EqualsFile; got != "/etc/firedrill/canary.txt" {
		t.Errorf("equalsFile = %q, want /etc/firedrill/canary.txt", got)
	}
	cfg, err = policy.Parse(f, []byte(with("      canary: {query: SELECT 1, equalsEnv: CANARY_VALUE}\n      schema: {tables: [a]}\n")))
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Targets[0].Checks; c.Canary == nil || c.Canary.EqualsEnv != "CANARY_VALUE" || c.Schema == nil || len(c.Schema.Tables) != 1 {
		t.Errorf("checks = %+v", c)
	}
}

// A key-value store's checks are keys, redis assertions and freshness from a key; SQL checks
// are refused with what to use instead, and the other way round.
func TestKeyValueChecksConfig(t *testing.T) {
	const f = configFile
	redisTarget := `targets:
  - name: cache
    engine: redis
    connection:
      dsn: "redis://127.0.0.1:6379/0"
    snapshot:
      local:
        dataDir: /var/lib/redis
        repository: /backups/cache
    checks:
`
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"redis checks", redisTarget + "      keys: {min: {\"0\": 1000, \"3\": 1}, sample: 50}\n      redis:\n        - {name: users, command: [SCARD, users], expect: {min: 10}}\n      freshness: {key: last_write, db: 0}\n", nil},
		{"sql on redis", redisTarget + "      sql:\n        - {name: n, query: SELECT 1, expect: {equals: \"1\"}}\n", []string{
			f + ":11: targets[0].checks.sql: engine redis has no SQL: assert with checks.redis: [{name: ..., command: [DBSIZE], expect: {min: 1}}]",
		}},
		{"freshness query on redis", redisTarget + "      freshness: {query: SELECT now()}\n", []string{
			f + ":11: targets[0].checks.freshness.query: engine redis has no SQL: name the key holding the newest timestamp with freshness.key",
		}},
		{"bad keys and assertions", redisTarget + "      keys: {min: {x: 1, \"0\": -1}, sample: -1}\n      redis:\n        - {name: a, command: [], expect: {}}\n        - {name: a, command: [GET, k], db: -1, expect: {equals: v, min: 1}}\n", []string{
			f + ":11: targets[0].checks.keys.min.0: must be zero or more, got -1",
			f + ":11: targets[0].checks.keys.min.x: name logical databases by number (\"0\", \"1\", ...)",
			f + ":11: targets[0].checks.keys.sample: must be zero (the default, 100) or more, got -1",
			f + ":13: targets[0].checks.redis[0].command: required: the command and its arguments, e.g. [SCARD, users]",
			f + ":13: targets[0].checks.redis[0].expect: required: {equals: VALUE}, {min: N}, {max: N} or {min: N, max: M}",
			f + ":14: targets[0].checks.redis[1].name: duplicate assertion name \"a\"",
			f + ":14: targets[0].checks.redis[1].db: must be zero or more, got -1",
			f + ":14: targets[0].checks.redis[1].expect: equals cannot be combined with min or max",
		}},
		{"redis keys on postgres", minimalTarget + "    checks:\n      keys: {min: {\"0\": 1}}\n      freshness: {key: k}\n", []string{
			f + ":9: targets[0].checks: keys and redis are checks of a key-value store (engine redis); engine postgres is checked with sql, rowCounts and freshness.query",
			f + ":11: targets[0].checks.freshness.key: a key is read from a key-value store (engine redis); engine postgres's freshness is a query",
			f + ":11: targets[0].checks.freshness.query: required: a query returning the newest timestamp in the data, e.g. SELECT max(created_at) FROM orders",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantLines(t, parseLines(t, tt.yaml), tt.want)
		})
	}
	// SQL checks of MariaDB name their schema: no database defaults to postgres.
	cfg, err := policy.Parse(f, []byte("targets:\n  - name: shop\n    engine: mariadb\n    connection: {dsn: \"root@unix(/run/mysqld/mysqld.sock)/\"}\n"+
		"    snapshot:\n      driver: csi\n      csi: {namespace: db, pvc: data, className: fast}\n"+
		"    checks:\n      sql:\n        - {name: n, query: SELECT count(*) FROM shop.orders, expect: {min: 1}}\n      freshness: {query: SELECT max(at) FROM shop.orders}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Targets[0].Checks; c.SQL[0].Database != "" || c.Freshness.Database != "" {
		t.Errorf("mariadb sql database %q, freshness database %q: want none (the query names its schema)", c.SQL[0].Database, c.Freshness.Database)
	}
}

// A document store's checks are validate, document counts and count assertions.
func TestDocumentChecksConfig(t *testing.T) {
	const f = configFile
	target := `targets:
  - name: catalog
    engine: mongodb
    connection:
      dsn: "mongodb://127.0.0.1:27017/?directConnection=true"
    snapshot:
      local:
        dataDir: /var/lib/mongodb
        repository: /backups/catalog
    checks:
`
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"mongo checks", target + "      validate: true\n      rowCounts: {min: {shop.orders: 1000}}\n      mongo:\n        - {name: paid, database: shop, collection: orders, filter: '{\"status\": \"paid\"}', expect: {min: 1}}\n", nil},
		{"sql and a bad filter", target + "      sql:\n        - {name: n, query: SELECT 1, expect: {equals: \"1\"}}\n      rowCounts: {min: {orders: 1}}\n      mongo:\n        - {name: a, database: shop, filter: '{status', expect: {min: 1}}\n", []string{
			f + ":11: targets[0].checks.sql: not available for engine mongodb: assert with checks.mongo: [{name: ..., database: ..., collection: ..., filter: '{...}', expect: {min: 1}}]",
			f + ":13: targets[0].checks.rowCounts.min.orders: name collections as database.collection",
			f + ":15: targets[0].checks.mongo[0]: database and collection are required",
		}},
		{"mongo on postgres", minimalTarget + "    checks:\n      mongo:\n        - {name: a, database: d, collection: c, expect: {min: 1}}\n", []string{
			f + ":10: targets[0].checks.mongo: mongo assertions are checks of a document store (engine mongodb); engine postgres is checked with sql",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseLines(t, tt.yaml)
			if tt.name == "sql and a bad filter" {
				// The filter's parse error is the driver's text: only its key is held here.
				var rest []string
				found := false
				for _, l := range got {
					if strings.Contains(l, "targets[0].checks.mongo[0].filter: not a JSON document") {
						found = true
						continue
					}
					rest = append(rest, l)
				}
				if !found {
					t.Errorf("no error for the malformed filter: %v", got)
				}
				got = rest
			}
			wantLines(t, got, tt.want)
		})
	}
}

// TestAmcheckConfig: checks.amcheck is a switch or an object (mode, fullEvery); a bad mode,
// duration or key is an error naming its line.
func TestAmcheckConfig(t *testing.T) {
	const f = configFile
	with := func(checks string) string { return minimalTarget + "    checks:\n" + checks }
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"switch", with("      amcheck: false\n"), nil},
		{"incremental", with("      amcheck:\n        mode: incremental\n        fullEvery: 3d\n"), nil},
		{"bad mode and duration", with("      amcheck:\n        mode: partial\n        fullEvery: weekly\n"), []string{
			f + `:11: targets[0].checks.amcheck.mode: must be full or incremental, got "partial"`,
			f + `:12: targets[0].checks.amcheck.fullEvery: invalid duration "weekly" (use e.g. 90s, 10m, 1h, 31d, 1d12h)`,
		}},
		{"unknown key", with("      amcheck:\n        mode: incremental\n        every: 3d\n"), []string{
			f + ":12: targets[0].checks.amcheck.every: field every not found (known: enabled, mode, fullEvery)",
		}},
		{"not a switch", with("      amcheck: sometimes\n"), []string{
			f + `:10: targets[0].checks.amcheck: must be true, false or an object with mode and fullEvery, got "sometimes"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantLines(t, parseLines(t, tt.yaml), tt.want)
		})
	}
	cfg, err := policy.Parse(f, []byte(with("      amcheck:\n        mode: incremental\n        fullEvery: 3d\n")))
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Targets[0].Checks.Amcheck
	if !a.On() || !a.Incremental() || a.FullAfter() != 72*time.Hour {
		t.Errorf("amcheck = %+v: on %v, incremental %v, full after %s; want on, incremental, 72h", *a, a.On(), a.Incremental(), a.FullAfter())
	}
	cfg, err = policy.Parse(f, []byte(minimalTarget))
	if err != nil {
		t.Fatal(err)
	}
	a = cfg.Targets[0].Checks.Amcheck
	if !a.On() || a.Incremental() || a.FullAfter() != 7*24*time.Hour {
		t.Errorf("default amcheck = %+v, want on, full, a full drill every 7 days", *a)
	}
	if b, _ := json.Marshal(a); string(b) != "true" {
		t.Errorf("default amcheck in JSON = %s, want true (the switch form, as before the object form)", b)
	}
}
