package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/firedrill/firedrill/audit"
	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/integration/harness"
)

// threeLocations is three versitygw gateways standing for three places: the primary bucket
// (us-east-1), an offsite bucket in another region, and a bucket under Object Lock (30 days of
// COMPLIANCE retention by default) at another provider, plus a plain bucket there.
type threeLocations struct {
	a, b, c *harness.S3
}

func startThreeLocations(t *testing.T) *threeLocations {
	t.Helper()
	l := &threeLocations{
		a: harness.StartS3(t),
		b: harness.StartS3(t, harness.WithRegion("eu-west-1")),
		c: harness.StartS3(t),
	}
	l.a.CreateBucket(t, "primary", harness.BucketOptions{})
	l.b.CreateBucket(t, "offsite", harness.BucketOptions{Versioning: true})
	l.c.CreateBucket(t, "locked", harness.BucketOptions{ObjectLock: true, RetentionMode: types.ObjectLockRetentionModeCompliance, RetentionDays: 30})
	l.c.CreateBucket(t, "plain", harness.BucketOptions{})
	for name, s := range map[string]*harness.S3{"A": l.a, "B": l.b, "C": l.c} {
		t.Setenv("FD_TEST_"+name+"_AK", s.AccessKey)
		t.Setenv("FD_TEST_"+name+"_SK", s.SecretKey)
	}
	return l
}

// config is a firedrill.yaml auditing one target whose dumps live under prefix in the three
// locations; third names the bucket of the third location (locked or plain).
func (l *threeLocations) config(prefix, third, extraCopies string) string {
	loc := func(name string, s *harness.S3, bucket, env string) string {
		return fmt.Sprintf(`  - name: %s
    kind: s3
    s3:
      endpoint: %s
      region: %s
      bucket: %s
      pathStyle: true
      maxAttempts: 1
      credentials:
        accessKeyIdEnv: FD_TEST_%s_AK
        secretAccessKeyEnv: FD_TEST_%s_SK
`, name, s.Endpoint, s.Region, bucket, env, env)
	}
	return `targets:
  - name: orders
    connection:
      dsn: "host=/nonexistent"
    snapshot:
      local:
        dataDir: /nonexistent/data
        repository: /nonexistent/repo
    objectives:
      rpo: 24h
    audit:
      skip: [wal-archiving, drill-recency]
      sources:
        - {location: primary, prefix: ` + prefix + `, match: "*.dump"}
        - {location: offsite, prefix: ` + prefix + `, match: "*.dump"}
        - {location: third, prefix: ` + prefix + `, match: "*.dump"}
      size:
        history: 3
      copies:
        minCopies: 4
        maxLag: 1h
` + extraCopies + `
locations:
` + loc("primary", l.a, "primary", "A") + loc("offsite", l.b, "offsite", "B") + loc("third", l.c, third, "C")
}

func put(t *testing.T, s *harness.S3, bucket, key string, body []byte) {
	t.Helper()
	_, err := s.Client(t).PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatalf("while uploading %s/%s to %s: %v", bucket, key, s.Endpoint, err)
	}
}

func del(t *testing.T, s *harness.S3, bucket, key string) {
	t.Helper()
	if _, err := s.Client(t).DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		t.Fatalf("while deleting %s/%s: %v", bucket, key, err)
	}
}

// dumpBytes is a dump of n bytes whose content depends on seed.
func dumpBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i%251)
	}
	return b
}

// everywhere uploads one dump to the three locations (third: locked or plain).
func (l *threeLocations) everywhere(t *testing.T, third, key string, body []byte) {
	put(t, l.a, "primary", key, body)
	put(t, l.b, "offsite", key, body)
	put(t, l.c, third, key, body)
}

func runAudit(t *testing.T, yaml string, now time.Time) map[string]checks.Finding {
	t.Helper()
	cfg, err := policy.Parse(t.TempDir()+"/firedrill.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	a := &audit.Auditor{Now: func() time.Time { return now }}
	rep := a.Audit(t.Context(), cfg, cfg.Targets)
	out := map[string]checks.Finding{}
	for _, f := range rep.Targets[0].Findings {
		out[f.Check] = f
	}
	return out
}

func findingReasons(f checks.Finding) []string {
	r, _ := f.Evidence["reasons"].([]string)
	return r
}

// The 3-2-1, age and size checks against three real S3 servers: one passing layout, then one
// fault at a time, each failing for its own named reason.
func TestAuditS3Locations(t *testing.T) {
	l := startThreeLocations(t)
	const size = 64 << 10
	// d1, d2: two daily dumps present in all three locations.
	seed := func(prefix, third string) {
		l.everywhere(t, third, prefix+"orders-d1.dump", dumpBytes(size, 1))
		l.everywhere(t, third, prefix+"orders-d2.dump", dumpBytes(size, 2))
	}
	type want struct {
		check  string
		status checks.Status
		reason string
	}
	tests := []struct {
		name  string
		third string
		setup func(prefix string)
		// clock is how far after the uploads the audit runs.
		clock time.Duration
		want  []want
	}{
		{name: "all three, one under Object Lock", third: "locked", setup: func(p string) { seed(p, "locked") },
			want: []want{{policy.CheckCopies, checks.Pass, ""}, {policy.CheckBackupAge, checks.Pass, ""}, {policy.CheckBackupSize, checks.Pass, ""}}},
		{name: "one copy removed", third: "locked", setup: func(p string) {
			seed(p, "locked")
			del(t, l.b, "offsite", p+"orders-d1.dump")
			del(t, l.b, "offsite", p+"orders-d2.dump")
		}, want: []want{{policy.CheckCopies, checks.Fail, audit.ReasonTooFewCopies}, {policy.CheckCopies, checks.Fail, audit.ReasonMissingCopy}}},
		{name: "no bucket under lock", third: "plain", setup: func(p string) { seed(p, "plain") },
			want: []want{{policy.CheckCopies, checks.Fail, audit.ReasonNoImmutable}}},
		{name: "a new dump not copied, within the lag", third: "locked", setup: func(p string) {
			seed(p, "locked")
			put(t, l.a, "primary", p+"orders-d3.dump", dumpBytes(size, 3))
			put(t, l.b, "offsite", p+"orders-d3.dump", dumpBytes(size, 3))
		}, clock: 10 * time.Minute, want: []want{{policy.CheckCopies, checks.Pass, ""}}},
		{name: "a stale copy", third: "locked", setup: func(p string) {
			seed(p, "locked")
			put(t, l.a, "primary", p+"orders-d3.dump", dumpBytes(size, 3))
			put(t, l.b, "offsite", p+"orders-d3.dump", dumpBytes(size, 3))
		}, clock: 2 * time.Hour, want: []want{{policy.CheckCopies, checks.Fail, audit.ReasonStaleCopy}}},
		{name: "a copy of the wrong size", third: "locked", setup: func(p string) {
			seed(p, "locked")
			put(t, l.b, "offsite", p+"orders-d2.dump", dumpBytes(size-100, 2))
		}, want: []want{{policy.CheckCopies, checks.Fail, audit.ReasonCopyMismatch}}},
		{name: "a copy with other content of the same size", third: "locked", setup: func(p string) {
			seed(p, "locked")
			put(t, l.b, "offsite", p+"orders-d2.dump", dumpBytes(size, 9))
		}, want: []want{{policy.CheckCopies, checks.Fail, audit.ReasonCopyMismatch}}},
		{name: "a zero-byte newest dump", third: "locked", setup: func(p string) {
			seed(p, "locked")
			l.everywhere(t, "locked", p+"orders-d3.dump", nil)
		}, want: []want{{policy.CheckBackupSize, checks.Fail, audit.ReasonZeroByte}, {policy.CheckBackupAge, checks.Pass, ""}}},
		{name: "a newest dump half the size of its predecessors", third: "locked", setup: func(p string) {
			seed(p, "locked")
			l.everywhere(t, "locked", p+"orders-d3.dump", dumpBytes(size, 3))
			l.everywhere(t, "locked", p+"orders-d4.dump", dumpBytes(size/2, 4))
		}, want: []want{{policy.CheckBackupSize, checks.Fail, audit.ReasonSizeDrop}}},
		{name: "the newest good backup older than the RPO", third: "locked", setup: func(p string) { seed(p, "locked") },
			clock: 25 * time.Hour, want: []want{{policy.CheckBackupAge, checks.Fail, audit.ReasonTooOld}}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := fmt.Sprintf("case%02d/", i)
			tt.setup(prefix)
			now := time.Now().Add(tt.clock)
			got := runAudit(t, l.config(prefix, tt.third, ""), now)
			for _, w := range tt.want {
				f, ok := got[w.check]
				if !ok {
					t.Fatalf("no %s finding in %v", w.check, got)
				}
				if f.Status != w.status || (w.reason != "" && !slices.Contains(findingReasons(f), w.reason)) || (w.reason == "" && len(findingReasons(f)) > 0) {
					ev, _ := json.MarshalIndent(f.Evidence, "", "  ")
					t.Errorf("%s = %s %v (%s), want %s %q\n%s", w.check, f.Status, findingReasons(f), f.Message, w.status, w.reason, ev)
				} else {
					t.Logf("%s: %s: %s", w.check, f.Status, f.Message)
				}
			}
		})
	}
}

// The CLI over the same servers: a table row per target × check and exit 0; exit 1 for a
// failed check; exit 3 naming the source and the cause when credentials are wrong or the
// endpoint is unreachable, with no secret in the output.
func TestAuditCLI(t *testing.T) {
	l := startThreeLocations(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	l.everywhere(t, "locked", "cli/orders-d1.dump", dumpBytes(4096, 1))
	l.everywhere(t, "locked", "cli/orders-d2.dump", dumpBytes(4096, 2))
	write := func(yaml string) string {
		p := harness.TempDir(t) + "/firedrill.yaml"
		if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := write(l.config("cli/", "locked", ""))
	r := runCLI(t, ctx, "audit", "--config", cfg)
	if r.code != 0 {
		t.Fatalf("audit exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, c := range []string{"backup-age", "backup-size", "copies-3-2-1"} {
		if !strings.Contains(r.stdout, c) {
			t.Errorf("table has no %s row:\n%s", c, r.stdout)
		}
	}
	t.Logf("firedrill audit:\n%s", r.stdout)

	r = runCLI(t, ctx, "audit", "--config", cfg, "--target", "orders", "--output", "json")
	var rep audit.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 0 || len(rep.Targets) != 1 || len(rep.Targets[0].Findings) != 3 {
		t.Fatalf("audit --output json: exit %d, %v: %s", r.code, err, r.stdout)
	}

	l.everywhere(t, "locked", "cli/orders-d3.dump", nil)
	if r = runCLI(t, ctx, "audit", "--config", cfg); r.code != 1 || !strings.Contains(r.stdout, "zero bytes") {
		t.Errorf("zero-byte newest dump: exit %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// Wrong secret key for the offsite location: exit 3, naming it and the cause.
	good := l.b.SecretKey
	t.Setenv("FD_TEST_B_SK", "wrong-"+good)
	r = runCLI(t, ctx, "audit", "--config", write(l.config("cli/", "locked", "")), "--output", "json")
	if r.code != 1 && r.code != 3 {
		t.Errorf("bad credentials: exit %d, want 3 (or 1 with the zero-byte dump)", r.code)
	}
	if !strings.Contains(r.stdout, "could not read offsite") || !strings.Contains(r.stdout, "auth:") {
		t.Errorf("bad credentials: the report does not name the source and the cause:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout+r.stderr, good) || strings.Contains(r.stdout+r.stderr, l.a.SecretKey) {
		t.Errorf("a secret key reached the output")
	}
	t.Setenv("FD_TEST_B_SK", good)

	// Only the clean prefix, and an unreachable third endpoint: exit 3, cause network.
	l.everywhere(t, "locked", "net/orders-d1.dump", dumpBytes(4096, 1))
	yaml := strings.Replace(l.config("net/", "locked", ""), l.c.Endpoint, "http://127.0.0.1:"+fmt.Sprint(harness.FreePort(t)), 1)
	r = runCLI(t, ctx, "audit", "--config", write(yaml))
	if r.code != 3 || !strings.Contains(r.stdout, "could not read third") || !strings.Contains(r.stdout, "network") {
		t.Errorf("unreachable endpoint: exit %d, want 3 naming third and network\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
