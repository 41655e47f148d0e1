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
	locations := "locations:\n  - name: s3-backups\n    kind: s3\n    s3: {endpoint: \"http://127.0.0.1:9000\", region: us-east-1, bucket: backups, prefix: db/, pathStyle: true}\n  - name: repo\n    kind: snapshots\n    path: " + dir + "\n"
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
				f + ":6: targets[0].restore.source.dir: required with kind rdb: the directory that holds the backups (one per file or directory), or location: a locations[] entry (s3 or directory)",
				f + `:8: targets[0].restore.source.pattern: "[" is not a glob on backup names (such as dump-*.rdb, full-* or shop-*.sql.gz)`,
			}},
		{"dir that is not a directory",
			redis("        kind: rdb\n        dir: " + filepath.Join(dir, "absent") + "\n"),
			[]string{f + ":8: targets[0].restore.source.dir: " + filepath.Join(dir, "absent") + " is not a directory"}},
		{"rdb for mariadb says which kind to use",
			maria("mariadb", "        kind: rdb\n        dir: "+dir+"\n"),
			[]string{f + ":7: targets[0].restore.source.kind: kind rdb holds backups of redis, not of engine mariadb: use kind mariadb-backup or mariadb-dump"}},
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
			maria("mariadb", "        kind: mariadb-backup\n        dir: "+dir+"\n        stanza: main\n"),
			[]string{
				f + ":6: targets[0].restore.source: archive, archiveLocation, recovery, stanza, config and repoPath are keys of kinds basebackup and pgbackrest",
			}},
		{"mariadb-dump for mariadb", maria("mariadb", "        kind: mariadb-dump\n        dir: "+dir+"\n        pattern: shop-*.sql.gz\n"), nil},
		{"mongodump for mongodb", target("mongodb", "mongodb://127.0.0.1:27017", "        kind: mongodump\n        dir: "+dir+"\n"), nil},
		{"mariadb-dump for redis says which kind to use",
			redis("        kind: mariadb-dump\n        dir: " + dir + "\n"),
			[]string{f + ":7: targets[0].restore.source.kind: kind mariadb-dump holds backups of mariadb, not of engine redis: use kind rdb"}},
		{"mongodump for mariadb says which kinds to use",
			maria("mariadb", "        kind: mongodump\n        dir: "+dir+"\n"),
			[]string{f + ":7: targets[0].restore.source.kind: kind mongodump holds backups of mongodb, not of engine mariadb: use kind mariadb-backup or mariadb-dump"}},
		{"a location of s3", locations + maria("mariadb", "        kind: mariadb-dump\n        location: s3-backups\n        prefix: shop/\n"), nil},
		{"dir and location",
			locations + maria("mariadb", "        kind: mariadb-backup\n        location: s3-backups\n        dir: "+dir+"\n"),
			[]string{f + ":15: targets[0].restore.source.location: set dir or location, not both"}},
		{"a location of kind snapshots",
			locations + redis("        kind: rdb\n        location: repo\n"),
			[]string{f + ":15: targets[0].restore.source.location: location repo is of kind snapshots: rdb backups are read from kind s3 or directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantLines(t, parseLines(t, tt.yaml), tt.want)
		})
	}
	for _, tt := range []struct{ kind, prefix, want string }{
		{"mariadb-dump", "shop/nightly-", "db/shop/nightly-"},
		{"mariadb-backup", "shop", "db/shop/"},
	} {
		cfg, err := policy.Parse(f, []byte(locations+maria("mariadb", "        kind: "+tt.kind+"\n        location: s3-backups\n        prefix: "+tt.prefix+"\n")))
		if err != nil {
			t.Fatal(err)
		}
		s := cfg.Targets[0].Restore.Source
		if l, prefix := s.FilesS3(); l == nil || l.S3.Bucket != "backups" || prefix != tt.want {
			t.Errorf("%s: FilesS3 = %+v, %q, want the bucket backups and prefix %q", tt.kind, l, prefix, tt.want)
		}
		if l, _ := s.DumpS3(); l != nil {
			t.Errorf("%s: DumpS3 = %+v, want nil (kind dump only)", tt.kind, l)
		}
	}
	cfg, err := policy.Parse(f, []byte(redis("        kind: rdb\n        dir: "+dir+"\n")))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Targets[0].Restore.Source
	if s.Pattern != policy.DefaultDumpPattern || !s.Files() || !s.Foreign() || s.Physical() || s.Recovery.Target != "" {
		t.Errorf("defaults: %+v", s)
	}
	if l, _ := s.FilesS3(); l != nil {
		t.Errorf("FilesS3 of a directory = %+v", l)
	}
	if a := cfg.Targets[0].Audit.Sources; len(a) != 1 || a[0].Name != policy.DefaultPhysicalAuditSourceName || a[0].Location != "" || !s.ListsBackups() {
		t.Errorf("the default audit source of an rdb target = %+v, want its own backups", a)
	}
}
