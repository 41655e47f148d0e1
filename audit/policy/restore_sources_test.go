package policy_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/restore/engine/postgres"
)

func TestPhysicalSources(t *testing.T) {
	const f = configFile
	dir := t.TempDir()
	conf := filepath.Join(dir, "pgbackrest.conf")
	if err := os.WriteFile(conf, []byte("[orders]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	target := func(source string) string {
		return "targets:\n  - name: orders\n    connection:\n      dsn: \"host=/run/pg\"\n    restore:\n      source:\n" + source
	}
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"basebackup needs no snapshot section",
			target("        kind: basebackup\n        dir: " + dir + "\n        archive: " + dir + "\n        recovery: {target: '2026-11-30T10:00:00Z'}\n"), nil},
		{"basebackup without dir and archive, a bad target",
			target("        kind: basebackup\n        recovery: {target: yesterday}\n"),
			[]string{
				f + ":6: targets[0].restore.source.dir: required with kind basebackup: the directory holding the base backups (one per subdirectory, or one), or location (+prefix)",
				f + ":6: targets[0].restore.source.archive: required with kind basebackup: the WAL archive directory archive_command writes to, or archiveLocation (+archivePrefix)",
				f + `:8: targets[0].restore.source.recovery.target: "yesterday" is not a recovery target: use latest, immediate, an RFC 3339 timestamp (2026-11-30T10:00:00Z) or an LSN (16/B374D848)`,
			}},
		{"pgbackrest with stanza and config", target("        kind: pgbackrest\n        stanza: main\n        config: " + conf + "\n        recovery: {target: 0/3000028}\n"), nil},
		{"pgbackrest without stanza, with basebackup keys",
			target("        kind: pgbackrest\n        archive: " + dir + "\n        config: " + dir + "/missing.conf\n"),
			[]string{
				f + ":6: targets[0].restore.source.stanza: required with kind pgbackrest: the stanza's name (letters, digits, '_', '.', '-'), got \"\"",
				f + ":6: targets[0].restore.source: dir, archive and archiveLocation are keys of kind basebackup (pgBackRest keeps both in its repository)",
				f + ":9: targets[0].restore.source.config: " + dir + "/missing.conf is not a file",
			}},
		{"basebackup on docker", target("        kind: basebackup\n        dir: "+dir+"\n        archive: "+dir+"\n") + "      runtime: docker\n",
			[]string{f + `:7: targets[0].restore.source.kind: kind basebackup is recovered by a local throwaway that reads WAL firedrill staged in scratch: use restore.runtime: local (got "docker")`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantLines(t, parseLines(t, tt.yaml), tt.want)
		})
	}
	cfg, err := policy.Parse(f, []byte(target("        kind: basebackup\n        dir: "+dir+"\n        archive: "+dir+"\n")))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Targets[0].Restore.Source
	if a := cfg.Targets[0].Audit.Sources; len(a) != 1 || a[0].Name != policy.DefaultPhysicalAuditSourceName || a[0].Location != "" {
		t.Errorf("the default audit source of a basebackup target = %+v, want its own backups", a)
	}
	if s.Recovery.Target != policy.DefaultRecoveryTarget || s.RecoveryTarget().Kind != postgres.TargetLatest || !s.Physical() || !s.Foreign() {
		t.Errorf("defaults: %+v", s)
	}
	if cfg, err := policy.Parse(f, []byte(target("        kind: dump\n        dir: "+dir+"\n"))); err != nil || strings.Contains(cfg.Targets[0].Restore.Source.Recovery.Target, "latest") {
		t.Errorf("a dump source gets a recovery target: %v", err)
	}
}

func TestBaseBackupLocations(t *testing.T) {
	const f = configFile
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "wal"), 0o700); err != nil {
		t.Fatal(err)
	}
	locations := `locations:
  - name: s3
    kind: s3
    s3: {endpoint: "http://127.0.0.1:9000", region: us-east-1, bucket: backups, prefix: pg/, pathStyle: true,
         credentials: {accessKeyIdEnv: BB_AK, secretAccessKeyEnv: BB_SK}}
  - name: nas
    kind: directory
    path: ` + dir + `
`
	target := func(source string) string {
		return locations + `targets:
  - name: orders
    connection: {dsn: "host=/run/pg"}
    restore:
      source: ` + source + "\n"
	}
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"both in s3", target("{kind: basebackup, location: s3, prefix: base, archiveLocation: s3, archivePrefix: wal}"), nil},
		{"backups in s3, archive in a directory location", target("{kind: basebackup, location: s3, archiveLocation: nas, archivePrefix: wal}"), nil},
		{"archive and archiveLocation", target("{kind: basebackup, location: s3, archive: " + dir + ", archiveLocation: s3}"),
			[]string{f + ":13: targets[0].restore.source.archiveLocation: set archive or archiveLocation, not both"}},
		{"unknown archive location", target("{kind: basebackup, dir: " + dir + ", archiveLocation: nowhere}"),
			[]string{f + `:13: targets[0].restore.source.archiveLocation: no location "nowhere" under locations:`}},
		{"archivePrefix alone", target("{kind: basebackup, dir: " + dir + ", archive: " + dir + ", archivePrefix: wal}"),
			[]string{f + ":13: targets[0].restore.source.archivePrefix: only used with archiveLocation"}},
		{"archiveLocation on a dump", target("{kind: dump, dir: " + dir + ", archiveLocation: s3}"),
			[]string{f + ":13: targets[0].restore.source.archiveLocation: only used with kind basebackup"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantLines(t, parseLines(t, tt.yaml), tt.want)
		})
	}
	cfg, err := policy.Parse(f, []byte(target("{kind: basebackup, location: s3, prefix: base, archiveLocation: s3, archivePrefix: wal}")))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Targets[0].Restore.Source
	if l, p := s.BaseBackupS3(); l == nil || l.S3.Bucket != "backups" || p != "pg/base/" {
		t.Errorf("BaseBackupS3() = %v, %q; want bucket backups, prefix pg/base/", l, p)
	}
	if l, p := s.ArchiveS3(); l == nil || p != "pg/wal/" {
		t.Errorf("ArchiveS3() = %v, %q; want prefix pg/wal/", l, p)
	}
	if l, _ := s.DumpS3(); l != nil {
		t.Errorf("DumpS3() of a basebackup target = %v, want nil", l)
	}
	cfg, err = policy.Parse(f, []byte(target("{kind: basebackup, location: s3, archiveLocation: nas, archivePrefix: wal}")))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Targets[0].Restore.Source.Archive; got != filepath.Join(dir, "wal") {
		t.Errorf("a directory archiveLocation resolves to %q, want %q", got, filepath.Join(dir, "wal"))
	}
}
