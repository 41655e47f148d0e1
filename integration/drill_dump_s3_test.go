package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/firedrill/firedrill/integration/harness"
)

// Dumps under an S3 prefix (versitygw): the newest matching object is downloaded into scratch,
// its SHA-256 compared with what the store says (x-amz-checksum-sha256, sha256 metadata, a
// .sha256 sidecar object), restored and removed; a mismatch fails the drill (exit 1); a bucket
// that cannot be reached is exit 3 with the reason; 'snapshots' lists the objects; the audit's
// backup-age and backup-size read the same prefix; the credentials are in no output.
func TestDrillDumpS3(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{PgbenchScale: 1})
	gw := harness.StartS3(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	custom := pgDumpOf(t, ctx, pg, "-Fc")
	t.Setenv("FD_TEST_S3_AK", gw.AccessKey)
	t.Setenv("FD_TEST_S3_SK", gw.SecretKey)
	c := gw.Client(t)
	put := func(t *testing.T, bucket, key string, body []byte, in func(*s3.PutObjectInput)) {
		t.Helper()
		p := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)}
		if in != nil {
			in(p)
		}
		if _, err := c.PutObject(ctx, p); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	sum := sha256.Sum256(custom)
	good := hex.EncodeToString(sum[:])
	bad := strings.Repeat("ab", 32)
	withChecksum := func(p *s3.PutObjectInput) {
		p.ChecksumAlgorithm = types.ChecksumAlgorithmSha256
		p.ChecksumSHA256 = aws.String(base64.StdEncoding.EncodeToString(sum[:]))
	}
	const closed = "http://127.0.0.1:1" // nothing listens on port 1 of this machine
	tests := []struct {
		name     string
		endpoint string // default: the gateway
		bucket   string // default: the case's own bucket
		setup    func(t *testing.T, bucket string)
		wantCode int
		wantMsg  string // in snapshot-integrity (exit 0, 1) or the error (exit 3)
		audit    bool
	}{
		{name: "newest with the store's checksum and metadata", setup: func(t *testing.T, b string) {
			put(t, b, "nightly/orders-1.dump", []byte("PGDMP older and broken"), nil)
			gw.SetModTime(t, b, "nightly/orders-1.dump", time.Now().Add(-26*time.Hour))
			put(t, b, "nightly/orders-2.dump.zst", zstdOf(t, custom), nil) // newest, but not the pattern's
			put(t, b, "nightly/orders-2.dump", custom, func(p *s3.PutObjectInput) {
				withChecksum(p)
				p.Metadata = map[string]string{"sha256": good}
			})
			gw.SetModTime(t, b, "nightly/orders-2.dump.zst", time.Now().Add(time.Minute))
		}, wantMsg: "matches the object's x-amz-checksum-sha256 and the object's sha256 metadata", audit: true},
		{name: "sidecar object that matches", setup: func(t *testing.T, b string) {
			put(t, b, "nightly/orders-3.dump", custom, nil)
			put(t, b, "nightly/orders-3.dump.sha256", []byte(good+"  orders-3.dump\n"), nil)
		}, wantMsg: "matches the sidecar object orders-3.dump.sha256"},
		{name: "sidecar object that does not match", setup: func(t *testing.T, b string) {
			put(t, b, "nightly/orders-3.dump", custom, nil)
			put(t, b, "nightly/orders-3.dump.sha256", []byte(bad+"  orders-3.dump\n"), nil)
		}, wantCode: 1, wantMsg: "but the sidecar object orders-3.dump.sha256 says " + bad},
		{name: "metadata that does not match", setup: func(t *testing.T, b string) {
			put(t, b, "nightly/orders-4.dump", custom, func(p *s3.PutObjectInput) { p.Metadata = map[string]string{"sha256": bad} })
		}, wantCode: 1, wantMsg: "but the object's sha256 metadata says " + bad},
		{name: "no such bucket", bucket: "not-there", wantCode: 3, wantMsg: "while listing s3://not-there/nightly/"},
		{name: "unreachable endpoint", endpoint: closed, wantCode: 3, wantMsg: "connection refused"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bucket := tc.bucket
			if bucket == "" {
				bucket = fmt.Sprintf("dumps-%d", i)
				gw.CreateBucket(t, bucket, harness.BucketOptions{})
			}
			if tc.setup != nil {
				tc.setup(t, bucket)
			}
			endpoint := tc.endpoint
			if endpoint == "" {
				endpoint = gw.Endpoint
			}
			base := harness.TempDir(t)
			scratch := filepath.Join(base, "scratch")
			if err := os.Mkdir(scratch, 0o755); err != nil {
				t.Fatal(err)
			}
			cfg := filepath.Join(base, "firedrill.yaml")
			if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`locations:
  - name: dumps-s3
    kind: s3
    s3:
      endpoint: %s
      region: us-east-1
      bucket: %s
      prefix: nightly/
      pathStyle: true
      maxAttempts: 1
      credentials: {accessKeyIdEnv: FD_TEST_S3_AK, secretAccessKeyEnv: FD_TEST_S3_SK}
targets:
  - name: orders
    engine: postgres
    connection:
      dsn: %q
    restore:
      source: {kind: dump, location: dumps-s3, pattern: "orders-*.dump"}
      local: {scratchDir: %s}
    objectives: {rto: 10m, rpo: 1h}
    checks:
      amcheck: false
      rowCounts:
        min: {public.pgbench_accounts: 100000}
    audit:
      skip: [wal-archiving, copies-3-2-1, drill-recency]
history: {dir: %s}
`, endpoint, bucket, pg.DSN("postgres"), scratch, filepath.Join(base, "history"))), 0o644); err != nil {
				t.Fatal(err)
			}
			var outputs []string
			noCredentials := func(r cliResult) {
				outputs = append(outputs, r.stdout, r.stderr)
				for _, secret := range []string{gw.AccessKey, gw.SecretKey} {
					if strings.Contains(r.stdout+r.stderr, secret) {
						t.Errorf("the output holds a credential:\n%s\n%s", r.stdout, r.stderr)
					}
				}
			}
			snaps := runCLI(t, ctx, "snapshots", "--config", cfg)
			noCredentials(snaps)
			if tc.wantCode == 3 {
				if snaps.code != 3 || !strings.Contains(snaps.stderr, tc.wantMsg) {
					t.Errorf("snapshots: exit %d, want 3 with %q\n%s%s", snaps.code, tc.wantMsg, snaps.stdout, snaps.stderr)
				}
			} else if snaps.code != 0 || !strings.Contains(snaps.stdout, "orders-") {
				t.Errorf("snapshots: exit %d\n%s%s", snaps.code, snaps.stdout, snaps.stderr)
			}
			r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json")
			noCredentials(r)
			d := parseDrill(t, r)
			if r.code != tc.wantCode {
				t.Fatalf("drill: exit %d (%s), want %d\nchecks: %+v\n%s", r.code, d.Error, tc.wantCode, d.Checks, r.stderr)
			}
			if tc.wantCode == 3 {
				if !strings.Contains(d.Error, tc.wantMsg) {
					t.Errorf("drill error %q does not say %q", d.Error, tc.wantMsg)
				}
			} else {
				st, msg := d.check("snapshot-integrity")
				t.Logf("snapshot-integrity: %s %s (snapshot %+v)", st, msg, d.Snapshot)
				want := map[int]string{0: "pass", 1: "fail"}[tc.wantCode]
				if st != want || !strings.Contains(msg, tc.wantMsg) {
					t.Errorf("snapshot-integrity %s %q, want %s with %q", st, msg, want, tc.wantMsg)
				}
				if st, msg := d.check("dump-restore"); st != "pass" {
					t.Errorf("dump-restore %s %q", st, msg)
				}
			}
			if tc.wantCode == 0 && d.Snapshot != nil && d.Snapshot.ID == "orders-1.dump" {
				t.Errorf("the drill restored the older dump")
			}
			if tc.audit {
				a := runCLI(t, ctx, "audit", "--config", cfg, "--output", "json")
				noCredentials(a)
				t.Logf("audit: exit %d\n%s", a.code, a.stdout)
				for _, check := range []string{"backup-age", "backup-size"} {
					if !strings.Contains(a.stdout, `"`+check+`"`) {
						t.Errorf("audit has no %s", check)
					}
				}
				if a.code != 0 {
					t.Errorf("audit exit %d, want 0\n%s%s", a.code, a.stdout, a.stderr)
				}
			}
			if left := leftovers(t, scratch); len(left) != 0 {
				t.Errorf("scratch left behind (downloads must go): %v", left)
			}
			_ = filepath.WalkDir(base, func(p string, de os.DirEntry, err error) error {
				if err == nil && de.Type().IsRegular() && p != cfg {
					if b, err := os.ReadFile(p); err == nil && (bytes.Contains(b, []byte(gw.SecretKey)) || bytes.Contains(b, []byte(gw.AccessKey))) {
						t.Errorf("%s holds a credential", p)
					}
				}
				return nil
			})
		})
	}
}
