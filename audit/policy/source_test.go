package policy_test

import (
	"strings"
	"testing"

	"github.com/firedrill/firedrill/audit/policy"
)

func TestRestoreSource(t *testing.T) {
	const f = configFile
	dir := t.TempDir()
	target := func(restore string) string {
		return `targets:
  - name: orders
    connection:
      dsn: "host=/run/pg"
    restore:
` + restore
	}
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"a dump source needs no snapshot section",
			target("      source: {kind: dump, dir: " + dir + "}\n"), nil},
		{"snapshots (the default) still need one",
			target("      source: {kind: snapshots}\n"),
			[]string{
				f + ":2: targets[0].snapshot.local.dataDir: required with driver local: the database's data directory",
				f + ":2: targets[0].snapshot.local.repository: required with driver local: the directory that keeps this target's snapshots",
			}},
		{"unknown kind", target("      source:\n        kind: tape\n        dir: " + dir + "\n"),
			[]string{
				f + ":2: targets[0].snapshot.local.dataDir: required with driver local: the database's data directory",
				f + ":2: targets[0].snapshot.local.repository: required with driver local: the directory that keeps this target's snapshots",
				f + `:7: targets[0].restore.source.kind: "tape" is not supported (supported: snapshots, dump, basebackup, pgbackrest, rdb, mariadb-backup, mariadb-dump, mongodump)`,
			}},
		{"dump without dir, bad pattern and jobs",
			target("      source:\n        kind: dump\n        pattern: \"[\"\n        jobs: 99\n"),
			[]string{
				f + ":6: targets[0].restore.source.dir: required with kind dump: the directory that holds the dump files (or location: a locations[] entry)",
				f + `:8: targets[0].restore.source.pattern: "[" is not a glob on file names (such as *.dump)`,
				f + ":9: targets[0].restore.source.jobs: must be between 1 and 64, got 99",
			}},
		{"dir that is not a directory",
			target("      source:\n        kind: dump\n        dir: " + dir + "/missing\n"),
			[]string{f + ":8: targets[0].restore.source.dir: " + dir + "/missing is not a directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantLines(t, parseLines(t, tt.yaml), tt.want)
		})
	}
	cfg, err := policy.Parse(f, []byte(target("      source: {kind: dump, dir: "+dir+"}\n")))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Targets[0].Restore.Source
	if s.Pattern != policy.DefaultDumpPattern || s.Jobs != policy.DefaultDumpJobs {
		t.Errorf("defaults: pattern %q jobs %d", s.Pattern, s.Jobs)
	}
}

func TestDumpSourceNeedsTheLocalRuntime(t *testing.T) {
	dir := t.TempDir()
	_, err := policy.Parse("f.yaml", []byte("targets:\n  - name: orders\n    connection: {dsn: \"host=/tmp dbname=postgres\"}\n    restore:\n      runtime: docker\n      source: {kind: dump, dir: "+dir+"}\n"))
	if err == nil || !strings.Contains(err.Error(), "restore.runtime: local") {
		t.Errorf("a dump source on the docker runtime: %v, want an error naming restore.runtime: local", err)
	}
}
