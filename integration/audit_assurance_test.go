package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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

// Issue 17 items 1, 2, 3, 6 and 9 against three real S3 servers (and a directory): layouts an
// auditor would call false assurance, each of which the old auditor passed.
func TestAuditFalseAssurance(t *testing.T) {
	l := startThreeLocations(t)
	l.c.CreateBucket(t, "gov", harness.BucketOptions{ObjectLock: true, RetentionMode: types.ObjectLockRetentionModeGovernance, RetentionDays: 30})
	mirror := t.TempDir()
	now := time.Now()
	const size = 64 << 10
	sum := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
	putMeta := func(s *harness.S3, bucket, key string, body []byte, sha string) {
		t.Helper()
		_, err := s.Client(t).PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
			Body: strings.NewReader(string(body)), Metadata: map[string]string{"sha256": sha}})
		if err != nil {
			t.Fatalf("while uploading %s/%s: %v", bucket, key, err)
		}
	}
	writeFile := func(rel string, body []byte) {
		t.Helper()
		p := filepath.Join(mirror, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// yaml is one target whose sources are the given lines (under audit.sources), with more
	// lines under audit: (6 spaces), and the three S3 locations plus the gov bucket and the
	// mirror directory.
	yaml := func(rpo string, sources []string, audit string) string {
		loc := func(name string, s *harness.S3, bucket, env string) string {
			return fmt.Sprintf("  - name: %s\n    kind: s3\n    s3:\n      endpoint: %s\n      region: %s\n      bucket: %s\n      pathStyle: true\n      maxAttempts: 1\n"+
				"      credentials:\n        accessKeyIdEnv: FD_TEST_%s_AK\n        secretAccessKeyEnv: FD_TEST_%s_SK\n", name, s.Endpoint, s.Region, bucket, env, env)
		}
		var src strings.Builder
		for _, s := range sources {
			src.WriteString("        - " + s + "\n")
		}
		if !strings.Contains(audit, "skip:") {
			audit = "      skip: [wal-archiving, drill-recency]\n" + audit
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
      rpo: ` + rpo + `
    audit:
` + audit + `      sources:
` + src.String() + `
locations:
` + loc("primary", l.a, "primary", "A") + loc("offsite", l.b, "offsite", "B") + loc("third", l.c, "locked", "C") + loc("gov", l.c, "gov", "C") +
			"  - name: mirror\n    kind: directory\n    path: " + mirror + "\n"
	}
	row := func(f checks.Finding, key, source string) map[string]any {
		b, _ := json.Marshal(f.Evidence[key])
		var rows []map[string]any
		_ = json.Unmarshal(b, &rows)
		for _, r := range rows {
			if r["source"] == source {
				return r
			}
		}
		return nil
	}
	type want struct {
		check   string
		status  checks.Status
		reasons []string
		msg     string
		// field of the evidence row of source (in "sources" or "locations") and its value.
		source, field, value string
	}
	tests := []struct {
		name  string
		setup func(p string)
		yaml  func(p string) string
		want  []want
	}{
		{
			// Item 1: five dumps 3 h to 4 d old and one dated a year ahead.
			name: "a future-dated object does not hide stale backups",
			setup: func(p string) {
				for i, age := range []time.Duration{3 * time.Hour, 10 * time.Hour, 24 * time.Hour, 48 * time.Hour, 96 * time.Hour} {
					key := fmt.Sprintf("%sorders-%d.dump", p, 5-i)
					put(t, l.a, "primary", key, dumpBytes(size, byte(i)))
					l.a.SetModTime(t, "primary", key, now.Add(-age))
				}
				put(t, l.a, "primary", p+"orders-9.dump", dumpBytes(size, 9))
				l.a.SetModTime(t, "primary", p+"orders-9.dump", now.Add(365*24*time.Hour))
			},
			yaml: func(p string) string {
				return yaml("2h", []string{"{location: primary, prefix: " + p + "}"}, "      skip: [wal-archiving, drill-recency, copies-3-2-1]\n")
			},
			want: []want{
				{check: policy.CheckBackupAge, status: checks.Fail, reasons: []string{audit.ReasonTooOld, audit.ReasonFutureDated},
					msg: "orders-9.dump is 364d23h ahead", source: "primary", field: "newest", value: "orders-5.dump"},
				{check: policy.CheckBackupSize, status: checks.Pass, source: "primary", field: "newest", value: "orders-5.dump"},
			},
		},
		{
			name: "a future-dated object within the RPO is a warning",
			setup: func(p string) {
				put(t, l.a, "primary", p+"orders-1.dump", dumpBytes(size, 1))
				l.a.SetModTime(t, "primary", p+"orders-1.dump", now.Add(-3*time.Hour))
				put(t, l.a, "primary", p+"orders-9.dump", dumpBytes(size, 9))
				l.a.SetModTime(t, "primary", p+"orders-9.dump", now.Add(365*24*time.Hour))
			},
			yaml: func(p string) string {
				return yaml("24h", []string{"{location: primary, prefix: " + p + "}"}, "      skip: [wal-archiving, drill-recency, copies-3-2-1]\n")
			},
			want: []want{{check: policy.CheckBackupAge, status: checks.Warn, reasons: []string{audit.ReasonFutureDated}, source: "primary", field: "newest", value: "orders-1.dump"}},
		},
		{
			// Item 2: a README and checksum sidecars newer than the dumps, and no match.
			name: "a README and sidecars are not backups",
			setup: func(p string) {
				for i, age := range []time.Duration{26 * time.Hour, 2 * time.Hour} {
					key := fmt.Sprintf("%sorders-%d.dump", p, i+1)
					body := dumpBytes(size, byte(i))
					put(t, l.a, "primary", key, body)
					put(t, l.a, "primary", key+".sha256", []byte(sum(body)+"  "+filepath.Base(key)+"\n"))
					l.a.SetModTime(t, "primary", key, now.Add(-age))
				}
				put(t, l.a, "primary", p+"SHA256SUMS", []byte("x"))
				put(t, l.a, "primary", p+"README", []byte("nightly pg_dump -Fc of orders"))
			},
			yaml: func(p string) string {
				return yaml("24h", []string{"{location: primary, prefix: " + p + "}"}, "      skip: [wal-archiving, drill-recency, copies-3-2-1]\n")
			},
			want: []want{
				{check: policy.CheckBackupAge, status: checks.Pass, source: "primary", field: "newest", value: "orders-2.dump"},
				{check: policy.CheckBackupSize, status: checks.Pass, source: "primary", field: "newest", value: "orders-2.dump"},
			},
		},
		{
			// Item 3: the offsite copy holds other bytes but carries the primary's claim.
			name: "a copy claiming the primary's sha256 with other content",
			setup: func(p string) {
				good, bad := dumpBytes(size, 1), dumpBytes(size, 7)
				putMeta(l.a, "primary", p+"orders-1.dump", good, sum(good))
				putMeta(l.b, "offsite", p+"orders-1.dump", bad, sum(good))
				putMeta(l.c, "locked", p+"orders-1.dump", good, sum(good))
			},
			yaml: func(p string) string {
				return yaml("24h", []string{"{location: primary, prefix: " + p + "}", "{location: offsite, prefix: " + p + "}", "{location: third, prefix: " + p + "}"},
					"      copies:\n        minCopies: 4\n")
			},
			want: []want{{check: policy.CheckCopies, status: checks.Fail, reasons: []string{audit.ReasonCopyMismatch}, source: "offsite", field: "compared", value: "store-crc64nvme"}},
		},
		{
			// Item 9 (and the store's checksum as the evidence of a good copy).
			name: "three good copies and the live database",
			setup: func(p string) {
				l.everywhere(t, "locked", p+"orders-1.dump", dumpBytes(size, 1))
			},
			yaml: func(p string) string {
				return yaml("24h", []string{"{location: primary, prefix: " + p + "}", "{location: offsite, prefix: " + p + "}", "{location: third, prefix: " + p + "}"},
					"      copies:\n        minCopies: 4\n")
			},
			want: []want{{check: policy.CheckCopies, status: checks.Pass, msg: "4 copies of orders-1.dump (live database + 3 backups) on disk (live database) + object-storage",
				source: "offsite", field: "compared", value: "store-crc64nvme"}},
		},
		{
			// Item 3: a directory has no store checksum; its .sha256 is the writer's claim.
			name:  "a directory copy with only a sidecar, verify store",
			setup: func(p string) { mirrored(t, l, putMeta, writeFile, p, dumpBytes(size, 1), dumpBytes(size, 1)) },
			yaml:  func(p string) string { return mirrorYAML(yaml, p, "store") },
			want: []want{{check: policy.CheckCopies, status: checks.Fail, reasons: []string{audit.ReasonTooFewCopies, audit.ReasonUnverifiedCopy},
				source: "mirror", field: "compared", value: "claimed-sha256"}},
		},
		{
			name:  "a directory copy with only a sidecar, verify claimed",
			setup: func(p string) { mirrored(t, l, putMeta, writeFile, p, dumpBytes(size, 1), dumpBytes(size, 1)) },
			yaml:  func(p string) string { return mirrorYAML(yaml, p, "claimed") },
			want:  []want{{check: policy.CheckCopies, status: checks.Pass, source: "mirror", field: "compared", value: "claimed-sha256"}},
		},
		{
			name:  "a directory copy, verify read",
			setup: func(p string) { mirrored(t, l, putMeta, writeFile, p, dumpBytes(size, 1), dumpBytes(size, 1)) },
			yaml:  func(p string) string { return mirrorYAML(yaml, p, "read") },
			want:  []want{{check: policy.CheckCopies, status: checks.Pass, source: "mirror", field: "compared", value: "read-sha256"}},
		},
		{
			name:  "a directory copy with other bytes under a correct claim, verify read",
			setup: func(p string) { mirrored(t, l, putMeta, writeFile, p, dumpBytes(size, 1), dumpBytes(size, 5)) },
			yaml:  func(p string) string { return mirrorYAML(yaml, p, "read") },
			want: []want{{check: policy.CheckCopies, status: checks.Fail, reasons: []string{audit.ReasonCopyMismatch},
				source: "mirror", field: "status", value: "mismatch"}},
		},
		{
			// Item 6: GOVERNANCE retention is recorded, and counts only with immutableMode any.
			name:  "GOVERNANCE retention, immutableMode any",
			setup: func(p string) { govCopies(t, l, p, dumpBytes(size, 1)) },
			yaml:  func(p string) string { return govYAML(yaml, p, "any") },
			want:  []want{{check: policy.CheckCopies, status: checks.Pass, source: "gov", field: "lockMode", value: "GOVERNANCE"}},
		},
		{
			name:  "GOVERNANCE retention, immutableMode compliance",
			setup: func(p string) { govCopies(t, l, p, dumpBytes(size, 1)) },
			yaml:  func(p string) string { return govYAML(yaml, p, "compliance") },
			want: []want{{check: policy.CheckCopies, status: checks.Fail, reasons: []string{audit.ReasonNoImmutable}, msg: "bypassed by a privileged user",
				source: "gov", field: "lockMode", value: "GOVERNANCE"}},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := fmt.Sprintf("fa%02d/", i)
			tt.setup(p)
			got := runAudit(t, tt.yaml(p), now)
			for _, w := range tt.want {
				f, ok := got[w.check]
				if !ok {
					t.Fatalf("no %s finding in %v", w.check, got)
				}
				ev, _ := json.MarshalIndent(f.Evidence, "", "  ")
				rs := findingReasons(f)
				okReasons := len(w.reasons) == 0 && len(rs) == 0
				if len(w.reasons) > 0 {
					okReasons = true
					for _, r := range w.reasons {
						okReasons = okReasons && slices.Contains(rs, r)
					}
				}
				if f.Status != w.status || !okReasons || !strings.Contains(f.Message, w.msg) {
					t.Errorf("%s = %s %v (%s), want %s %v containing %q\n%s", w.check, f.Status, rs, f.Message, w.status, w.reasons, w.msg, ev)
					continue
				}
				key := "sources"
				if w.check == policy.CheckCopies {
					key = "locations"
				}
				if r := row(f, key, w.source); r == nil || fmt.Sprint(r[w.field]) != w.value {
					t.Errorf("%s: evidence of %s: %s = %v, want %s\n%s", w.check, w.source, w.field, r[w.field], w.value, ev)
				} else {
					t.Logf("%s: %s: %s", w.check, f.Status, f.Message)
				}
			}
		})
	}
}

// mirrored puts one dump in the primary bucket (with the writer's sha256 as metadata) and at the
// offsite, and mirrorBody with a .sha256 sidecar claiming the primary's digest in the mirror.
func mirrored(t *testing.T, l *threeLocations, putMeta func(*harness.S3, string, string, []byte, string), writeFile func(string, []byte),
	p string, body, mirrorBody []byte) {
	h := sha256.Sum256(body)
	sha := hex.EncodeToString(h[:])
	putMeta(l.a, "primary", p+"orders-1.dump", body, sha)
	putMeta(l.b, "offsite", p+"orders-1.dump", body, sha)
	writeFile(p+"orders-1.dump", mirrorBody)
	writeFile(p+"orders-1.dump.sha256", []byte(sha+"  orders-1.dump\n"))
}

// mirrorYAML audits the primary, the offsite bucket and the mirror directory: 4 copies with the
// live database, all needed.
func mirrorYAML(yaml func(string, []string, string) string, p, verify string) string {
	return yaml("24h", []string{"{location: primary, prefix: " + p + "}", "{location: offsite, prefix: " + p + "}", "{location: mirror, prefix: " + p + "}"},
		"      copies:\n        minCopies: 4\n        minImmutable: 0\n        verify: "+verify+"\n")
}

// govCopies puts one dump in the primary, offsite and GOVERNANCE buckets.
func govCopies(t *testing.T, l *threeLocations, p string, body []byte) {
	put(t, l.a, "primary", p+"orders-1.dump", body)
	put(t, l.b, "offsite", p+"orders-1.dump", body)
	put(t, l.c, "gov", p+"orders-1.dump", body)
}

func govYAML(yaml func(string, []string, string) string, p, mode string) string {
	return yaml("24h", []string{"{location: primary, prefix: " + p + "}", "{location: offsite, prefix: " + p + "}", "{location: gov, prefix: " + p + "}"},
		"      copies:\n        minCopies: 4\n        immutableMode: "+mode+"\n")
}
