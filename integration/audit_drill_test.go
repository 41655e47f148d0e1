package integration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/integration/harness"
)

// auditFindingJSON is one finding of `firedrill audit --output json`, read the way a machine
// would, by the documented field names only.
type auditFindingJSON struct {
	Target   string         `json:"target"`
	Check    string         `json:"check"`
	Status   string         `json:"status"`
	Message  string         `json:"message"`
	Reasons  []string       `json:"reasons"`
	Evidence map[string]any `json:"evidence"`
}

// parseAuditJSON returns the findings of one target by check, and fails the test unless every
// finding carries the documented fields.
func parseAuditJSON(t *testing.T, r cliResult, target string) map[string]auditFindingJSON {
	t.Helper()
	var rep struct {
		SchemaVersion *int `json:"schemaVersion"`
		Targets       []struct {
			Target   string            `json:"target"`
			Findings []json.RawMessage `json:"findings"`
		} `json:"targets"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("audit output is not JSON (%v):\nstdout: %s\nstderr: %s", err, r.stdout, r.stderr)
	}
	if rep.SchemaVersion == nil || *rep.SchemaVersion != 1 {
		t.Errorf("schemaVersion = %v, want 1", rep.SchemaVersion)
	}
	out := map[string]auditFindingJSON{}
	for _, tr := range rep.Targets {
		if tr.Target != target {
			continue
		}
		for _, raw := range tr.Findings {
			var keys map[string]json.RawMessage
			if err := json.Unmarshal(raw, &keys); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"target", "check", "status", "message", "reasons", "evidence"} {
				if v, ok := keys[k]; !ok || string(v) == "null" {
					t.Errorf("finding %s has no %q: %s", keys["check"], k, raw)
				}
			}
			var f auditFindingJSON
			if err := json.Unmarshal(raw, &f); err != nil {
				t.Fatal(err)
			}
			if f.Target != target {
				t.Errorf("finding %s names target %q, want %q", f.Check, f.Target, target)
			}
			out[f.Check] = f
		}
	}
	return out
}

// wantAudit checks one finding's status and reason codes (none when it passed).
func wantAudit(t *testing.T, fs map[string]auditFindingJSON, check, status string, reasons ...string) auditFindingJSON {
	t.Helper()
	f, ok := fs[check]
	if !ok {
		t.Errorf("no %s finding in %v", check, fs)
		return f
	}
	if f.Status != status || !slices.Equal(f.Reasons, reasons) && !(len(reasons) == 0 && len(f.Reasons) == 0) {
		t.Errorf("%s = %s %v (%s), want %s %v", check, f.Status, f.Reasons, f.Message, status, reasons)
	}
	return f
}

// drillConfig is a firedrill.yaml for tg's PostgreSQL with the given objectives, auditing only
// what a local snapshot repository and the drill history can show (no WAL archive is set up,
// and one repository is not 3-2-1).
func drillConfig(t *testing.T, tg target, objectives string) string {
	t.Helper()
	tg.objectives = objectives
	tg.extra = "    audit:\n      skip: [wal-archiving, copies-3-2-1]"
	return writeConfig(t, tg)
}

// drillCLI runs `firedrill drill` and returns its result and the drill's id.
func drillCLI(t *testing.T, ctx context.Context, cfg string) (drillJSON, string, int) {
	t.Helper()
	r := runCLI(t, ctx, "drill", "--config", cfg, "--target", "orders", "--output", "json")
	d := parseDrill(t, r)
	var id struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal([]byte(r.stdout), &id)
	if id.ID == "" {
		t.Fatalf("drill output has no id:\n%s\n%s", r.stdout, r.stderr)
	}
	return d, id.ID, r.code
}

// backdateHistory moves every recorded drill of orders back by ago, as if it had run then.
func backdateHistory(t *testing.T, dir string, ago time.Duration) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "orders", "*.json"))
	if len(files) == 0 {
		t.Fatalf("no drill recorded under %s", dir)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var r map[string]any
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"startedAt", "finishedAt"} {
			ts, err := time.Parse(time.RFC3339Nano, r[k].(string))
			if err != nil {
				t.Fatalf("%s: %s: %v", p, k, err)
			}
			r[k] = ts.Add(-ago)
		}
		if b, err = json.Marshal(r); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// Drill recency from the history real drills write: no history fails with a clear reason, a
// passing drill passes, a newer drill that missed its RTO fails naming it, a history whose last
// passing drill is older than drillEvery fails, and an unreadable history is an error (exit 3).
func TestAuditDrillRecencyFromRealDrills(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	tg, _ := newTarget(t, pg, "")
	cfg := drillConfig(t, tg, "      rto: 10m\n      rpo: 1h")

	// Nothing drilled yet: the history directory does not even exist.
	r := runCLI(t, ctx, "audit", "--config", cfg, "--output", "json")
	fs := parseAuditJSON(t, r, "orders")
	f := wantAudit(t, fs, "drill-recency", "fail", "no-drill")
	if !strings.Contains(f.Message, "no drill recorded") || !strings.Contains(f.Message, "firedrill drill") {
		t.Errorf("no history: message %q does not say no drill was recorded and what to run", f.Message)
	}
	if r.code != 1 {
		t.Errorf("no history: exit %d, want 1\n%s", r.code, r.stderr)
	}

	snapshotID(t, ctx, cfg)
	d, passID, code := drillCLI(t, ctx, cfg)
	if code != 0 || d.Status != "pass" {
		t.Fatalf("drill: exit %d, status %s, failed %v: %s", code, d.Status, d.failed(), d.Error)
	}
	r = runCLI(t, ctx, "audit", "--config", cfg, "--output", "json")
	fs = parseAuditJSON(t, r, "orders")
	f = wantAudit(t, fs, "drill-recency", "pass")
	wantAudit(t, fs, "backup-age", "pass")
	wantAudit(t, fs, "backup-size", "pass")
	if r.code != 0 {
		t.Errorf("after a passing drill: exit %d, want 0\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(f.Message, "RTO met") {
		t.Errorf("passing drill: message %q does not say the RTO was met", f.Message)
	}
	if last, _ := f.Evidence["lastPassingDrill"].(map[string]any); last["id"] != passID {
		t.Errorf("evidence lastPassingDrill = %v, want the drill just run, %s", f.Evidence["lastPassingDrill"], passID)
	}
	if tbl := runCLI(t, ctx, "audit", "--config", cfg); tbl.code != 0 || !strings.Contains(tbl.stdout, "drill-recency") {
		t.Errorf("table: exit %d, no drill-recency row:\n%s", tbl.code, tbl.stdout)
	}

	// A newer drill against an RTO of 1ms: it fails, and the audit names the missed RTO.
	tight := drillConfig(t, tg, "      rto: 1ms\n      rpo: 1h")
	d, failID, code := drillCLI(t, ctx, tight)
	if code != 1 || d.Status != "fail" || d.RTO.Met {
		t.Fatalf("drill with rto 1ms: exit %d, status %s, rto %+v", code, d.Status, d.RTO)
	}
	r = runCLI(t, ctx, "audit", "--config", cfg, "--output", "json")
	fs = parseAuditJSON(t, r, "orders")
	f = wantAudit(t, fs, "drill-recency", "fail", "rto-missed")
	if r.code != 1 || !strings.Contains(f.Message, failID) || !strings.Contains(f.Message, "missed the RTO") || !strings.Contains(f.Message, "objective 1ms") {
		t.Errorf("RTO missed: exit %d, message %q, want 1 naming drill %s", r.code, f.Message, failID)
	}
	if last, _ := f.Evidence["lastDrill"].(map[string]any); last["id"] != failID || last["status"] != "fail" {
		t.Errorf("evidence lastDrill = %v, want the failed drill %s", f.Evidence["lastDrill"], failID)
	}
	t.Logf("RTO missed: %s", f.Message)

	// A separate history whose only (passing) drill ran 40 days ago: older than the default
	// drillEvery of 31 days.
	old := tg
	old.history = filepath.Join(harness.TempDir(t), "history")
	oldCfg := drillConfig(t, old, "      rto: 10m\n      rpo: 1h")
	if d, _, code = drillCLI(t, ctx, oldCfg); code != 0 || d.Status != "pass" {
		t.Fatalf("drill: exit %d, status %s", code, d.Status)
	}
	backdateHistory(t, old.history, 40*24*time.Hour)
	r = runCLI(t, ctx, "audit", "--config", oldCfg, "--output", "json")
	fs = parseAuditJSON(t, r, "orders")
	f = wantAudit(t, fs, "drill-recency", "fail", "drill-too-old")
	if r.code != 1 || !strings.Contains(f.Message, "40d") || !strings.Contains(f.Message, "drills every 31d") {
		t.Errorf("old history: exit %d, message %q, want 1 saying 40d ago against 31d", r.code, f.Message)
	}
	// The same history against drillEvery: 90d passes.
	r = runCLI(t, ctx, "audit", "--config", drillConfig(t, old, "      rto: 10m\n      rpo: 1h\n      drillEvery: 90d"), "--output", "json")
	wantAudit(t, parseAuditJSON(t, r, "orders"), "drill-recency", "pass")

	// A history that cannot be read: an error naming it, exit 3 (nothing else fails).
	broken := tg
	broken.history = filepath.Join(harness.TempDir(t), "history")
	if err := os.WriteFile(broken.history, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, ctx, "audit", "--config", drillConfig(t, broken, "      rto: 10m\n      rpo: 1h"), "--output", "json")
	f = wantAudit(t, parseAuditJSON(t, r, "orders"), "drill-recency", "error", "unreadable")
	if r.code != 3 || !strings.Contains(f.Message, "could not read the drill history") {
		t.Errorf("unreadable history: exit %d, message %q, want 3", r.code, f.Message)
	}
}
