package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/integration/harness"
)

// `firedrill demo` (what `make demo` runs) shows the whole pipeline and leaves nothing behind.
func TestDemo(t *testing.T) {
	harness.PostgresBinDir(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tmp := harness.TempDir(t)
	t.Setenv("TMPDIR", tmp) // the sandbox goes here, so leftovers are ours to see

	r := runCLI(t, ctx, "demo")
	if r.code != 0 {
		t.Fatalf("demo exited %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{`of target "demo": PASS`, "amcheck", "sql:balances-match", "freshness", "pg_checksums", "Audit of the live estate", "wal-archiving"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, r.stdout)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "firedrill-demo-*")); len(left) != 0 {
		t.Errorf("the demo left its sandbox behind: %v", left)
	}

	r = runCLI(t, ctx, "demo", "--output", "json", "--scale", "1")
	d := parseDrill(t, r)
	if r.code != 0 || d.Status != "pass" || d.Target != "demo" || d.RecoveryPoint == nil {
		t.Fatalf("demo -o json: exit %d, %+v", r.code, d)
	}

	r = runCLI(t, ctx, "demo", "--keep", "--scale", "1")
	kept, _ := filepath.Glob(filepath.Join(tmp, "firedrill-demo-*"))
	if r.code != 0 || len(kept) != 1 {
		t.Fatalf("demo --keep: exit %d, sandboxes %v\n%s", r.code, kept, r.stderr)
	}
	cfg := filepath.Join(kept[0], "firedrill.yaml")
	if _, err := os.Stat(cfg); err != nil || !strings.Contains(r.stderr, cfg) {
		t.Errorf("demo --keep should keep and name %s: %v\n%s", cfg, err, r.stderr)
	}
	if procs := processesUnder(kept[0]); len(procs) != 0 {
		t.Errorf("demo --keep left servers running: %v", procs)
	}
	if r := runCLI(t, ctx, "snapshots", "--config", cfg); r.code != 0 || !strings.Contains(r.stdout, "online") {
		t.Errorf("snapshots of the kept sandbox: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
