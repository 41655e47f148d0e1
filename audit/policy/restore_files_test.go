package policy_test

import (
	"path/filepath"
	"testing"

	"github.com/firedrill/firedrill/audit/policy"
)

func TestFileSources(t *testing.T) {
	const f = configFile
	dir := t.TempDir()
	target := func(engine, dsn, source string) string {
		return "targets:\n  - name: cache\n    engine: " + engine + "\n    connection: {dsn: \"" + dsn + "\"}\n    restore:\n      source:\n" + source
	}
	redis := func(source string) string { return target("redis", "redis://127.0.0.1:6379", source) }
	maria := func(engine, source string) string { return target(engine, "root@tcp(127.0.0.1:3306)/", source) }
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"rdb for redis needs no snapshot section", redis("        kind: rdb\n        dir: " + dir + "\n        pattern: dump-*.rdb\n"), nil},
		{"rdb on docker", redis("        kind: rdb\n        dir: "+dir+"\n") + "      runtime: docker\n", nil},
		{"mariadb-backup for mariadb", maria("mariadb", "        kind: mariadb-backup\n        dir: "+dir+"\n"), nil},
		{"mariadb-backup for mysql (an alias)", maria("mysql", "        kind: mariadb-backup\n        dir: "+dir+"\n"), nil},
		{"rdb without dir, a bad pattern",
			redis("        kind: rdb\n        pattern: \"[\"\n"),
			[]string{
				f + ":6: targets[0].restore.source.dir: required with kind rdb: the directory that holds the backups (one per file or directory)",
				f + `:8: targets[0].restore.source.pattern: "[" is not a glob on backup names (such as dump-*.rdb or full-*)`,
			}},
		{"dir that is not a directory",
			redis("        kind: rdb\n        dir: " + filepath.Join(dir, "absent") + "\n"),
			[]string{f + ":8: targets[0].restore.source.dir: " + filepath.Join(dir, "absent") + " is not a directory"}},
		{"rdb for mariadb says which kind to use",
			maria("mariadb", "        kind: rdb\n        dir: "+dir+"\n"),
			[]string{f + ":7: targets[0].restore.source.kind: kind rdb holds backups of redis, not of engine mariadb: use kind mariadb-backup"}},
		{"mariadb-backup for redis says which kind to use",
			redis("        kind: mariadb-backup\n        dir: " + dir + "\n"),
			[]string{f + ":7: targets[0].restore.source.kind: kind mariadb-backup holds backups of mariadb, not of engine redis: use kind rdb"}},
		{"rdb for postgres",
			target("postgres", "host=/run/pg", "        kind: rdb\n        dir: "+dir+"\n"),
			[]string{f + ":7: targets[0].restore.source.kind: kind rdb holds backups of redis, not of engine postgres: use another kind (snapshots: the target's own)"}},
		{"rdb on kubernetes",
			redis("        kind: rdb\n        dir: "+dir+"\n") + "      runtime: kubernetes\n",
			[]string{
				f + `:7: targets[0].restore.source.kind: kind rdb is copied into the drill's local scratch directory: use restore.runtime: local or docker (got "kubernetes")`,
				f + ":9: targets[0].restore.runtime: restore.runtime kubernetes drills CSI snapshots: set snapshot.driver: csi (or restore.runtime: local)",
			}},
		{"keys of other kinds",
			maria("mariadb", "        kind: mariadb-backup\n        dir: "+dir+"\n        stanza: main\n        location: nas\n"),
			[]string{
				f + ":6: targets[0].restore.source: archive, archiveLocation, recovery, stanza, config and repoPath are keys of kinds basebackup and pgbackrest",
				f + ":10: targets[0].restore.source.location: kind mariadb-backup reads a directory: use dir (location and prefix are keys of kinds dump and basebackup)",
				f + ":10: targets[0].restore.source.location: only used with kinds dump and basebackup",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantLines(t, parseLines(t, tt.yaml), tt.want)
		})
	}
	cfg, err := policy.Parse(f, []byte(redis("        kind: rdb\n        dir: "+dir+"\n")))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Targets[0].Restore.Source
	if s.Pattern != policy.DefaultDumpPattern || !s.Files() || !s.Foreign() || s.Physical() || s.Recovery.Target != "" {
		t.Errorf("defaults: %+v", s)
	}
	if a := cfg.Targets[0].Audit.Sources; len(a) != 1 || a[0].Name != policy.DefaultPhysicalAuditSourceName || a[0].Location != "" || !s.ListsBackups() {
		t.Errorf("the default audit source of an rdb target = %+v, want its own backups", a)
	}
}
