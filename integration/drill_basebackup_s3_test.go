package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/firedrill/firedrill/integration/harness"
)

// A real tar base backup and WAL archive of PostgreSQL 15 under S3 prefixes (versitygw): the
// drill downloads the backup into scratch and only the WAL recovery needs into staging, and
// passes; a copy of the archive missing one segment fails wal-continuity naming it (exit 1),
// in the drill and in the audit, which lists the archive without downloading it; an
// unreachable endpoint is exit 3 with the reason; no credential is in any output.
func TestDrillBaseBackupS3(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	w := startWALPrimary(t, ctx, map[string][]string{"tar": {"-Ft"}})
	archive := w.pg.ArchiveDir
	// Two more segments, so that the one left out is after the backup's end.
	for i := 4; i <= 5; i++ {
		if err := w.pg.Exec(ctx, "postgres", fmt.Sprintf("INSERT INTO drill_rows (id, note) VALUES (%d, 'later')", i)); err != nil {
			t.Fatal(err)
		}
		w.switchAndWait(t, ctx)
	}
	gw := harness.StartS3(t)
	t.Setenv("FD_TEST_S3_AK", gw.AccessKey)
	t.Setenv("FD_TEST_S3_SK", gw.SecretKey)
	c := gw.Client(t)
	upload := func(bucket, prefix, dir string, skip func(string) bool) {
		t.Helper()
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			if skip != nil && skip(rel) {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(prefix + filepath.ToSlash(rel)), Body: bytes.NewReader(b)})
			return err
		})
		if err != nil {
			t.Fatalf("uploading %s: %v", dir, err)
		}
	}
	segs := segmentsIn(t, archive)
	if len(segs) < 5 {
		t.Fatalf("the archive holds too few segments: %v", segs)
	}
	missing := segs[len(segs)-2]
	for _, b := range []string{"complete", "gapped"} {
		gw.CreateBucket(t, b, harness.BucketOptions{})
		upload(b, "pg/base/", w.backups, nil)
		upload(b, "pg/wal/", archive, func(n string) bool { return b == "gapped" && n == missing })
	}

	const closed = "http://127.0.0.1:1" // nothing listens on port 1 of this machine
	cases := []struct {
		name, bucket, endpoint string
		wantCode               int
		wantMsg                string
	}{
		{name: "complete", bucket: "complete"},
		{name: "segment missing", bucket: "gapped", wantCode: 1, wantMsg: missing},
		{name: "unreachable endpoint", bucket: "complete", endpoint: closed, wantCode: 3, wantMsg: "connection refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := harness.TempDir(t)
			scratch := filepath.Join(base, "scratch")
			if err := os.MkdirAll(scratch, 0o755); err != nil {
				t.Fatal(err)
			}
			endpoint := tc.endpoint
			if endpoint == "" {
				endpoint = gw.Endpoint
			}
			cfg := writeYAML(t, fmt.Sprintf(`locations:
  - name: backups-s3
    kind: s3
    s3:
      endpoint: %s
      region: us-east-1
      bucket: %s
      prefix: pg/
      pathStyle: true
      maxAttempts: 1
      credentials: {accessKeyIdEnv: FD_TEST_S3_AK, secretAccessKeyEnv: FD_TEST_S3_SK}
targets:
  - name: orders
    engine: postgres
    connection:
      dsn: %q
    restore:
      source:
        kind: basebackup
        location: backups-s3
        prefix: base
        archiveLocation: backups-s3
        archivePrefix: wal
      local: {scratchDir: %s}
    objectives: {rto: 10m, rpo: 1h}
    checks:
      sql:
        - name: row-3
          query: SELECT count(*) FROM drill_rows WHERE id = 3
          expect: {equals: "1"}
    audit:
      skip: [wal-archiving, copies-3-2-1, drill-recency]
history: {dir: %s}
`, endpoint, tc.bucket, w.pg.DSN("postgres"), scratch, filepath.Join(base, "history")))
			var outputs []string
			noCredentials := func(r cliResult) {
				t.Helper()
				outputs = append(outputs, r.stdout, r.stderr)
				for _, secret := range []string{gw.AccessKey, gw.SecretKey} {
					if strings.Contains(r.stdout+r.stderr, secret) {
						t.Errorf("the output holds a credential:\n%s\n%s", r.stdout, r.stderr)
					}
				}
			}
			snaps := runCLI(t, ctx, "snapshots", "--config", cfg, "--output", "json")
			noCredentials(snaps)
			if tc.wantCode != 3 && (snaps.code != 0 || !strings.Contains(snaps.stdout, `"tar"`)) {
				t.Errorf("snapshots does not list base backup tar: exit %d\n%s\n%s", snaps.code, snaps.stdout, snaps.stderr)
			}
			start := time.Now()
			r := runCLI(t, ctx, "drill", "--config", cfg, "--snapshot", "tar", "--output", "json")
			noCredentials(r)
			d := parseDrill(t, r)
			t.Logf("drill %s: exit %d in %s", tc.name, r.code, time.Since(start).Round(time.Millisecond))
			if r.code != tc.wantCode {
				t.Fatalf("exit %d status %s (%s), want %d\nchecks: %+v\n%s", r.code, d.Status, d.Error, tc.wantCode, d.Checks, r.stderr)
			}
			switch tc.wantCode {
			case 0:
				for _, name := range []string{"snapshot-integrity", "wal-continuity", "recovery", "recovery-target", "sql:row-3"} {
					if st, msg := d.check(name); st != "pass" {
						t.Errorf("%s = %q %q, want pass", name, st, msg)
					}
				}
			case 1:
				st, msg := d.check("wal-continuity")
				t.Logf("wal-continuity: %s %s", st, msg)
				if st != "fail" || !strings.Contains(msg, tc.wantMsg) {
					t.Errorf("wal-continuity = %s %q, want a failure naming %s", st, msg, tc.wantMsg)
				}
			case 3:
				if !strings.Contains(d.Error+r.stderr, tc.wantMsg) {
					t.Errorf("drill error %q does not say %q", d.Error, tc.wantMsg)
				}
			}
			if tc.wantCode != 3 {
				a := runCLI(t, ctx, "audit", "--config", cfg, "--output", "json")
				noCredentials(a)
				fs := parseAuditJSON(t, a, "orders")
				want, reasons := "pass", []string(nil)
				if tc.wantCode == 1 {
					want, reasons = "fail", []string{"archive-gap"}
				}
				f := wantAudit(t, fs, "wal-continuity", want, reasons...)
				t.Logf("audit wal-continuity: %s %s", f.Status, f.Message)
				if tc.wantCode == 1 && !strings.Contains(f.Message, missing) {
					t.Errorf("audit wal-continuity %q does not name %s", f.Message, missing)
				}
			}
			if left := leftovers(t, scratch); len(left) != 0 {
				t.Errorf("scratch left behind (downloads must go): %v", left)
			}
			if procs := processesUnder(scratch); len(procs) != 0 {
				t.Errorf("processes left running: %v", procs)
			}
		})
	}
}
