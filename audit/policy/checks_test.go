package policy_test

import (
	"strings"
	"testing"

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
