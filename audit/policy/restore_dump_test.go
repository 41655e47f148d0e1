package policy_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/firedrill/firedrill/audit/policy"
)

func TestDumpLocation(t *testing.T) {
	const f = configFile
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "nightly"), 0o700); err != nil {
		t.Fatal(err)
	}
	locations := `locations:
  - name: s3-dumps
    kind: s3
    s3: {endpoint: "http://127.0.0.1:9000", region: us-east-1, bucket: backups, prefix: pg/, pathStyle: true,
         credentials: {accessKeyIdEnv: DUMP_AK, secretAccessKeyEnv: DUMP_SK}}
  - name: nas
    kind: directory
    path: ` + dir + `
  - name: repo
    kind: snapshots
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
		{"s3", target("{kind: dump, location: s3-dumps, prefix: orders/, pattern: '*.dump.zst'}"), nil},
		{"directory location", target("{kind: dump, location: nas, prefix: nightly}"), nil},
		{"unknown location", target("{kind: dump, location: tape}"), []string{f + `:16: targets[0].restore.source.location: no location "tape" under locations:`}},
		{"snapshot repository", target("{kind: dump, location: repo}"), []string{f + ":16: targets[0].restore.source.location: location repo is of kind snapshots: dumps are read from kind s3 or directory"}},
		{"dir and location", target("{kind: dump, location: nas, dir: " + dir + "}"), []string{f + ":16: targets[0].restore.source.location: set dir or location, not both"}},
		{"directory location without the prefix directory", target("{kind: dump, location: nas, prefix: weekly}"),
			[]string{f + ":16: targets[0].restore.source.location: " + dir + `/weekly (location nas, prefix "weekly") is not a directory`}},
		{"prefix without location", target("{kind: dump, dir: " + dir + ", prefix: x}"), []string{f + ":16: targets[0].restore.source.prefix: only used with location"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantLines(t, parseLines(t, tt.yaml), tt.want)
		})
	}

	cfg, err := policy.Parse(f, []byte(target("{kind: dump, location: s3-dumps, prefix: orders/, pattern: '*.dump.zst'}")))
	if err != nil {
		t.Fatal(err)
	}
	tg := &cfg.Targets[0]
	l, prefix := tg.Restore.Source.DumpS3()
	if l == nil || l.S3.Bucket != "backups" || prefix != "pg/orders/" {
		t.Errorf("DumpS3 = %+v, %q", l, prefix)
	}
	// The audit's default source is where the dumps are.
	if got := tg.Audit.Sources; len(got) != 1 || got[0] != (policy.AuditSource{Name: "dumps", Location: "s3-dumps", Prefix: "orders/", Match: "*.dump.zst"}) {
		t.Errorf("audit sources = %+v", got)
	}

	cfg, err = policy.Parse(f, []byte(target("{kind: dump, location: nas, prefix: nightly}")))
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Targets[0].Restore.Source; s.Dir != filepath.Join(dir, "nightly") {
		t.Errorf("a directory location resolves to Dir %q", s.Dir)
	}
	if l, _ := cfg.Targets[0].Restore.Source.DumpS3(); l != nil {
		t.Errorf("DumpS3 of a directory location = %+v", l)
	}

	cfg, err = policy.Parse(f, []byte(target("{kind: dump, dir: "+dir+"}")))
	if err != nil {
		t.Fatal(err)
	}
	tg = &cfg.Targets[0]
	if got := tg.Audit.Sources; len(got) != 1 || got[0] != (policy.AuditSource{Name: "dumps"}) || !tg.DumpAuditSource(got[0]) {
		t.Errorf("audit sources of a dump directory = %+v", got)
	}
}

// A target firedrill only audits (its backups are made by another tool, in a location) needs
// no snapshot section; one with neither a snapshot section nor a located source still does.
func TestAuditOnlyTargetNeedsNoSnapshotSection(t *testing.T) {
	const f = configFile
	dir := t.TempDir()
	doc := func(sources string) string {
		return `locations:
  - name: nas
    kind: directory
    path: ` + dir + `
targets:
  - name: orders
    connection: {dsn: "host=/run/pg"}
    audit:
      sources: ` + sources + "\n"
	}
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"located sources only", doc("[{location: nas}]"), nil},
		{"a drill schedule with nothing to drill", doc("[{location: nas}]\n    schedule: \"0 3 * * *\""), []string{
			f + ":10: targets[0].schedule: this target is only audited (no snapshot section, no restore.source): there is nothing to drill on a schedule",
		}},
		{"the target's own snapshots too", doc("[{location: nas}, {name: own}]"), []string{
			f + ":6: targets[0].snapshot.local.dataDir: required with driver local: the database's data directory",
			f + ":6: targets[0].snapshot.local.repository: required with driver local: the directory that keeps this target's snapshots",
			f + ":9: targets[0].audit.sources[1].location: required: this target has no snapshot repository to default to",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantLines(t, parseLines(t, tt.yaml), tt.want)
		})
	}
	cfg, err := policy.Parse(f, []byte(doc("[{location: nas}]")))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Targets[0].AuditOnly() {
		t.Error("AuditOnly = false")
	}
}
