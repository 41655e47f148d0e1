package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/integration/harness"
)

// snapshotResultJSON is one row of `firedrill snapshot -o json`.
type snapshotResultJSON struct {
	ID        string `json:"id"`
	Target    string `json:"target"`
	Status    string `json:"status"`
	Error     string `json:"error"`
	Retention *struct {
		Rules   string `json:"rules"`
		Kept    int    `json:"kept"`
		Deleted []struct {
			ID      string    `json:"id"`
			TakenAt time.Time `json:"takenAt"`
			Reason  string    `json:"reason"`
		} `json:"deleted"`
		Error string `json:"error"`
	} `json:"retention"`
}

// listedSnapshot is one entry of `firedrill snapshots -o json`.
type listedSnapshot struct {
	ID      string    `json:"id"`
	Target  string    `json:"target"`
	TakenAt time.Time `json:"takenAt"`
	Status  string    `json:"status"`
	Reason  string    `json:"reason"`
}

// integrityAuditJSON is the part of `firedrill audit -o json` these tests read.
type integrityAuditJSON struct {
	Targets []struct {
		Target   string `json:"target"`
		Findings []struct {
			Check   string   `json:"check"`
			Status  string   `json:"status"`
			Message string   `json:"message"`
			Reasons []string `json:"reasons"`
		} `json:"findings"`
	} `json:"targets"`
}

func decodeCLI[T any](t *testing.T, what string, r cliResult) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("%s: output is not the JSON expected (%v), exit %d:\nstdout: %s\nstderr: %s", what, err, r.code, r.stdout, r.stderr)
	}
	return v
}

func repoIDs(t *testing.T, repo string) []string {
	t.Helper()
	var out []string
	for _, e := range leftovers(t, repo) {
		if !strings.HasPrefix(e, ".") {
			out = append(out, e)
		}
	}
	return out
}

// Two targets, the first unreachable: the second is still snapshotted, both get a row (table and
// JSON), retention runs for the one that succeeded and says what it deleted and why, and the
// exit code is 3 (could not snapshot billing). A single failing target still prints JSON.
func TestSnapshotEveryTargetAttempted(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{PgbenchScale: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	base := harness.TempDir(t)
	for _, d := range []string{"billing-data", "scratch"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ordersRepo, billingRepo := base+"/orders-repo", base+"/billing-repo"
	// billing: nothing listens on its port.
	cfg := filepath.Join(base, "firedrill.yaml")
	yaml := fmt.Sprintf(`targets:
  - name: billing
    engine: postgres
    connection:
      dsn: "host=127.0.0.1 port=%d user=postgres dbname=postgres connect_timeout=5"
    snapshot:
      local:
        dataDir: %s/billing-data
        repository: %s
    restore:
      local:
        scratchDir: %s/scratch
    objectives: {rto: 10m, rpo: 1h}
  - name: orders
    engine: postgres
    connection:
      dsn: %q
    snapshot:
      local:
        dataDir: %s
        repository: %s
    restore:
      local:
        scratchDir: %s/scratch
    objectives: {rto: 10m, rpo: 1h}
RETENTION
groups:
  - name: both
    targets: [billing, orders]
history:
  dir: %s/history
`, harness.FreePort(t), base, billingRepo, base, pg.DSN("postgres"), pg.DataDir, ordersRepo, base, base)
	write := func(retention string) {
		if err := os.WriteFile(cfg, []byte(strings.Replace(yaml, "RETENTION", retention, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// Two older snapshots of orders (no retention yet) for retention to judge.
	write("")
	var older []string
	for range 2 {
		r := runCLI(t, ctx, "snapshot", "--config", cfg, "--target", "orders", "--output", "json")
		if r.code != 0 {
			t.Fatalf("snapshot of orders: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		older = append(older, decodeCLI[snapshotResultJSON](t, "snapshot --target orders", r).ID)
	}
	write("    retention:\n      keepLast: 1")

	r := runCLI(t, ctx, "snapshot", "--config", cfg, "--output", "json")
	if r.code != 3 {
		t.Errorf("snapshot of both: exit %d, want 3 (billing could not be snapshotted)\n%s", r.code, r.stderr)
	}
	rows := decodeCLI[[]snapshotResultJSON](t, "snapshot of both", r)
	if len(rows) != 2 {
		t.Fatalf("%d rows, want one per target:\n%s", len(rows), r.stdout)
	}
	billing, orders := rows[0], rows[1]
	t.Run("the unreachable target has its row with the error", func(t *testing.T) {
		if billing.Target != "billing" || billing.Status != "error" || billing.ID != "" || !strings.Contains(billing.Error, "billing") {
			t.Errorf("billing row = %+v", billing)
		}
	})
	t.Run("the reachable target is snapshotted", func(t *testing.T) {
		if orders.Target != "orders" || orders.Status != "complete" || orders.ID == "" || slices.Contains(older, orders.ID) {
			t.Errorf("orders row = %+v", orders)
		}
	})
	t.Run("retention ran for the success and says what it deleted and why", func(t *testing.T) {
		if orders.Retention == nil {
			t.Fatalf("orders row has no retention: %s", r.stdout)
		}
		got := map[string]string{}
		for _, d := range orders.Retention.Deleted {
			got[d.ID] = d.Reason
		}
		want := map[string]string{older[1]: "keepLast 1: 2nd newest", older[0]: "keepLast 1: 3rd newest"}
		for id, why := range want {
			if got[id] != why {
				t.Errorf("deletion of %s: %q, want %q (deleted: %v)", id, got[id], why, got)
			}
		}
		if orders.Retention.Kept != 1 || orders.Retention.Rules != "keepLast 1" {
			t.Errorf("retention = %+v", orders.Retention)
		}
		if ids := repoIDs(t, ordersRepo); !slices.Equal(ids, []string{orders.ID}) {
			t.Errorf("orders' repository holds %v, want only %s", ids, orders.ID)
		}
	})

	t.Run("table", func(t *testing.T) {
		r := runCLI(t, ctx, "snapshot", "--config", cfg)
		if r.code != 3 {
			t.Errorf("exit %d, want 3", r.code)
		}
		t.Logf("firedrill snapshot:\n%s", r.stdout)
		ids := repoIDs(t, ordersRepo)
		if len(ids) != 1 {
			t.Fatalf("orders' repository holds %v after keepLast 1", ids)
		}
		for _, want := range []string{"billing", "ERROR", "orders", "COMPLETE", ids[0],
			"Retention of orders (keepLast 1): kept 1, deleted 1", orders.ID, "keepLast 1: 2nd newest"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("table lacks %q:\n%s", want, r.stdout)
			}
		}
	})

	t.Run("a failed group prints its result", func(t *testing.T) {
		before := repoIDs(t, ordersRepo)
		r := runCLI(t, ctx, "snapshot", "--config", cfg, "--group", "both", "--output", "json")
		if r.code != 3 {
			t.Errorf("exit %d, want 3\n%s", r.code, r.stderr)
		}
		g := decodeCLI[struct {
			Group     string `json:"group"`
			Status    string `json:"status"`
			Error     string `json:"error"`
			Snapshots []any  `json:"snapshots"`
		}](t, "snapshot --group both", r)
		if g.Group != "both" || g.Status != "error" || !strings.Contains(g.Error, "billing") || g.Snapshots == nil || len(g.Snapshots) != 0 {
			t.Errorf("group result = %+v", g)
		}
		// All or nothing: no member was snapshotted, and retention did not run.
		if after := repoIDs(t, ordersRepo); !slices.Equal(after, before) {
			t.Errorf("orders' repository went from %v to %v", before, after)
		}
		r = runCLI(t, ctx, "snapshot", "--config", cfg, "--group", "both")
		if r.code != 3 || !strings.Contains(r.stdout, "Group both: no snapshot taken") {
			t.Errorf("table: exit %d\n%s", r.code, r.stdout)
		}
	})

	t.Run("one failing target still prints JSON", func(t *testing.T) {
		r := runCLI(t, ctx, "snapshot", "--config", cfg, "--target", "billing", "--output", "json")
		if r.code != 3 {
			t.Errorf("exit %d, want 3", r.code)
		}
		row := decodeCLI[snapshotResultJSON](t, "snapshot --target billing", r)
		if row.Target != "billing" || row.Status != "error" || row.Error == "" {
			t.Errorf("row = %+v", row)
		}
		if ids := repoIDs(t, billingRepo); len(ids) != 0 {
			t.Errorf("billing's repository holds %v", ids)
		}
	})
}

// A newest snapshot that cannot be restored as the target's (truncated or missing meta.json, a
// meta.json naming another target) is listed with its status and reason, fails the drill of the
// target unless --snapshot picks another, and fails the audit's backup-integrity check.
func TestDamagedNewestSnapshot(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{DataChecksums: true, PgbenchScale: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cases := []struct {
		name   string
		damage func(t *testing.T, snapDir string)
		status string
		reason string // in the listed reason and the drill's finding
	}{
		{"truncated meta.json", func(t *testing.T, dir string) {
			if err := os.Truncate(filepath.Join(dir, "meta.json"), 64); err != nil {
				t.Fatal(err)
			}
		}, "damaged", "not valid metadata"},
		{"no meta.json", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "meta.json")); err != nil {
				t.Fatal(err)
			}
		}, "damaged", "no meta.json"},
		{"meta.json names another target", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "meta.json")
			var m map[string]any
			b, _ := os.ReadFile(p)
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			m["target"] = "billing"
			b, _ = json.MarshalIndent(m, "", "  ")
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "foreign", `names target "billing"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tg, cfg := newTarget(t, pg, "    audit:\n      skip: [wal-archiving, backup-size, copies-3-2-1, drill-recency]")
			older := snapshotID(t, ctx, cfg)
			newest := snapshotID(t, ctx, cfg)
			tc.damage(t, filepath.Join(tg.repo, newest))

			t.Run("snapshots lists it", func(t *testing.T) {
				r := runCLI(t, ctx, "snapshots", "--config", cfg, "--output", "json")
				if r.code != 0 {
					t.Errorf("exit %d\n%s", r.code, r.stderr)
				}
				got := decodeCLI[[]listedSnapshot](t, "snapshots", r)
				if len(got) != 2 || got[0].ID != newest || got[1].ID != older {
					t.Fatalf("snapshots = %+v, want %s (newest) then %s", got, newest, older)
				}
				if got[0].Status != tc.status || !strings.Contains(got[0].Reason, tc.reason) {
					t.Errorf("newest = %s %q, want %s …%s…", got[0].Status, got[0].Reason, tc.status, tc.reason)
				}
				if got[1].Status != "complete" || got[1].Reason != "" {
					t.Errorf("older = %s %q, want complete", got[1].Status, got[1].Reason)
				}
				r = runCLI(t, ctx, "snapshots", "--config", cfg)
				for _, want := range []string{newest, strings.ToUpper(tc.status), older, "COMPLETE", tc.reason} {
					if !strings.Contains(r.stdout, want) {
						t.Errorf("table lacks %q:\n%s", want, r.stdout)
					}
				}
			})

			t.Run("drill fails on it", func(t *testing.T) {
				r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json")
				d := parseDrill(t, r)
				if r.code != 1 || d.Status != "fail" {
					t.Fatalf("exit %d status %s (%s), want 1/fail\n%s", r.code, d.Status, d.Error, r.stderr)
				}
				st, msg := d.check("snapshot-integrity")
				if st != "fail" || !strings.Contains(msg, newest) || !strings.Contains(msg, tc.reason) {
					t.Errorf("snapshot-integrity = %s %q, want fail naming %s and %q", st, msg, newest, tc.reason)
				}
				if d.Snapshot == nil || d.Snapshot.ID != newest {
					t.Errorf("the result names snapshot %+v, want %s", d.Snapshot, newest)
				}
				if left := leftovers(t, tg.scratch); len(left) != 0 {
					t.Errorf("scratch left behind: %v", left)
				}
			})

			t.Run("drill --snapshot of it fails", func(t *testing.T) {
				r := runCLI(t, ctx, "drill", "--config", cfg, "--snapshot", newest, "--output", "json")
				d := parseDrill(t, r)
				if st, _ := d.check("snapshot-integrity"); r.code != 1 || d.Status != "fail" || st != "fail" {
					t.Errorf("exit %d status %s snapshot-integrity %s, want 1/fail/fail\n%s", r.code, d.Status, st, r.stderr)
				}
			})

			t.Run("drill --snapshot of the older one passes", func(t *testing.T) {
				r := runCLI(t, ctx, "drill", "--config", cfg, "--snapshot", older, "--output", "json")
				d := parseDrill(t, r)
				if r.code != 0 || d.Status != "pass" || d.Snapshot == nil || d.Snapshot.ID != older {
					t.Errorf("exit %d status %s (%s, failed %v), want 0/pass on %s\n%s", r.code, d.Status, d.Error, d.failed(), older, r.stderr)
				}
			})

			t.Run("audit fails backup-integrity", func(t *testing.T) {
				r := runCLI(t, ctx, "audit", "--config", cfg, "--output", "json")
				if r.code != 1 {
					t.Errorf("exit %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
				}
				rep := decodeCLI[integrityAuditJSON](t, "audit", r)
				if len(rep.Targets) != 1 {
					t.Fatalf("audit = %s", r.stdout)
				}
				var found bool
				for _, f := range rep.Targets[0].Findings {
					switch f.Check {
					case "backup-integrity":
						found = true
						if f.Status != "fail" || !slices.Contains(f.Reasons, tc.status) || !strings.Contains(f.Message, newest) {
							t.Errorf("backup-integrity = %s %v %q, want fail %s naming %s", f.Status, f.Reasons, f.Message, tc.status, newest)
						}
					case "backup-age":
						// The older snapshot is the newest good backup, and within the RPO.
						if f.Status != "pass" {
							t.Errorf("backup-age = %s %q, want pass", f.Status, f.Message)
						}
					default:
						t.Errorf("unexpected finding %s %s", f.Check, f.Status)
					}
				}
				if !found {
					t.Errorf("no backup-integrity finding: %s", r.stdout)
				}
			})
		})
	}
}
