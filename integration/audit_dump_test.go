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

	"github.com/firedrill/firedrill/integration/harness"
)

// 'firedrill audit' of targets whose backups another tool makes: a target drilled from a dump
// directory has its backup-age and backup-size checks read that directory (the files inside a
// directory dump are not backups of their own), a shrunken newest dump fails backup-size
// (exit 1), and a target that only names a location needs no snapshot section.
func TestAuditDumpTargets(t *testing.T) {
	harness.Integration(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := harness.TempDir(t)
	dumps := filepath.Join(base, "dumps")
	if err := os.MkdirAll(filepath.Join(dumps, "orders.dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, size int, age time.Duration) {
		t.Helper()
		p := filepath.Join(dumps, name)
		if err := os.WriteFile(p, bytes.Repeat([]byte("x"), size), 0o644); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-age)
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
	}
	write("orders-1.dump", 1<<20, 50*time.Hour)
	write("orders-2.dump", 1<<20, 26*time.Hour)
	write("orders-3.dump", 1<<20, 10*time.Minute)
	write("orders.dir/toc.dat", 10, time.Minute) // newer and tiny: must not count
	write("orders.dir/3345.dat.gz", 10, time.Minute)
	config := func(target string) string {
		cfg := filepath.Join(base, "firedrill.yaml")
		if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`locations:
  - name: nas
    kind: directory
    path: %s
%s
history: {dir: %s}
`, dumps, target, filepath.Join(base, "history"))), 0o644); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	const skip = "[wal-archiving, copies-3-2-1, drill-recency]"
	dumpTarget := config(`targets:
  - name: orders
    connection: {dsn: "host=/nonexistent dbname=postgres"}
    restore:
      source: {kind: dump, dir: ` + dumps + `}
    objectives: {rpo: 1h}
    audit: {skip: ` + skip + `}`)
	r := runCLI(t, ctx, "audit", "--config", dumpTarget, "--output", "json")
	t.Logf("audit: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	if r.code != 0 || !strings.Contains(r.stdout, `"newest": "orders-3.dump"`) {
		t.Errorf("audit of a dump directory: exit %d, want 0 with orders-3.dump the newest", r.code)
	}
	write("orders-4.dump", 100, time.Minute) // the newest dump shrank to almost nothing
	r = runCLI(t, ctx, "audit", "--config", dumpTarget, "--output", "json")
	if r.code != 1 || !strings.Contains(r.stdout, `"backup-size"`) || !strings.Contains(r.stdout, "orders-4.dump") {
		t.Errorf("audit of a shrunken dump: exit %d, want 1 (backup-size)\n%s%s", r.code, r.stdout, r.stderr)
	}

	auditOnly := config(`targets:
  - name: orders
    connection: {dsn: "host=/nonexistent dbname=postgres"}
    objectives: {rpo: 1h}
    audit:
      skip: ` + skip + `
      sources: [{location: nas, match: "orders-[123].dump"}]`)
	r = runCLI(t, ctx, "audit", "--config", auditOnly, "--output", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"backup-age"`) {
		t.Errorf("audit of an audit-only target without a snapshot section: exit %d, want 0\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// 'firedrill drill' of a target firedrill only audits is a usage error (exit 2) that says
// what to add; with several targets it is left out.
func TestDrillAuditOnlyTarget(t *testing.T) {
	harness.Integration(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	base := harness.TempDir(t)
	cfg := filepath.Join(base, "firedrill.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`locations:
  - {name: nas, kind: directory, path: %s}
targets:
  - name: orders
    connection: {dsn: "host=/nonexistent dbname=postgres"}
    audit: {sources: [{location: nas}]}
history: {dir: %s}
`, base, filepath.Join(base, "history"))), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, ctx, "drill", "--config", cfg, "--target", "orders")
	if r.code != 2 || !strings.Contains(r.stderr, "target orders is only audited") || !strings.Contains(r.stderr, "restore.source") {
		t.Errorf("drill of an audit-only target: exit %d, want 2\n%s%s", r.code, r.stdout, r.stderr)
	}
}
