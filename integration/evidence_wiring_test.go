package integration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/integration/harness"
)

// Every snapshot, drill and audit the CLI runs writes a signed evidence record to the chain:
// earlier drill history is imported first, 'report verify' accepts the chain, 'history' and
// 'report' read it.
func TestRunsWriteSignedEvidence(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{PgbenchScale: 1, Archive: true})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	tg, cfg := newTarget(t, pg, "    audit: {skip: [copies-3-2-1]}")
	keys := filepath.Join(harness.TempDir(t), "keys")
	if r := runCLI(t, ctx, "keygen", "--dir", keys); r.code != 0 {
		t.Fatalf("keygen: exit %d %s", r.code, r.stderr)
	}
	b, _ := os.ReadFile(cfg)
	b = []byte(strings.Replace(string(b), "history:\n", "history:\n  signingKey: "+filepath.Join(keys, "firedrill-evidence.key")+"\n", 1))
	if err := os.WriteFile(cfg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	snapshotID(t, ctx, cfg)
	for _, args := range [][]string{{"drill"}, {"audit"}} {
		if r := runCLI(t, ctx, append(args, "--config", cfg)...); r.code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
	evidenceDir := filepath.Join(tg.history, ".evidence")
	entries, _ := os.ReadDir(filepath.Join(evidenceDir, "orders"))
	var kinds []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			kinds = append(kinds, strings.SplitN(e.Name(), "-", 3)[1])
		}
	}
	if strings.Join(kinds, ",") != "snapshot,drill,audit" {
		t.Errorf("evidence records %v, want snapshot, drill, audit in order", kinds)
	}
	r := runCLI(t, ctx, "report", "verify", "--history", evidenceDir, "--key", filepath.Join(keys, "firedrill-evidence.pub"))
	if r.code != 0 {
		t.Errorf("report verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, ctx, "history", "--config", cfg, "--output", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"pass"`) {
		t.Errorf("history: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	day := time.Now().UTC().Format("2006-01-02")
	r = runCLI(t, ctx, "report", "--config", cfg, "--from", day, "--to", day, "--format", "json")
	var rep map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rep) != nil {
		t.Errorf("report: exit %d\n%.500s\n%s", r.code, r.stdout, r.stderr)
	}
}
