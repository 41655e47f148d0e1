package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/integration/harness"
)

// A group is drilled as one unit: every member's snapshot of the newest batch they all have,
// each restored into a throwaway of its own, one result; each member's drill is in the history
// too (drill recency is per target).
func TestDrillGroupOneBatch(t *testing.T) {
	orders := harness.StartPostgres(t, harness.PostgresOptions{PgbenchScale: 1})
	billing := harness.StartPostgres(t, harness.PostgresOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	base := harness.TempDir(t)
	if err := os.MkdirAll(filepath.Join(base, "scratch"), 0o755); err != nil {
		t.Fatal(err)
	}
	member := func(name string, pg *harness.Postgres) string {
		return fmt.Sprintf(`  - name: %s
    engine: postgres
    connection:
      dsn: %q
    snapshot:
      local:
        dataDir: %s
        repository: %s/%s-repo
    restore:
      local:
        scratchDir: %s/scratch
    objectives: {rto: 10m, rpo: 1h}
`, name, pg.DSN("postgres"), pg.DataDir, base, name, base)
	}
	cfg := filepath.Join(base, "firedrill.yaml")
	yaml := "targets:\n" + member("orders", orders) + member("billing", billing) +
		"groups:\n  - name: shop\n    targets: [orders, billing]\nhistory:\n  dir: " + base + "/history\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}

	// Before any group snapshot: a clear error naming what to do.
	if r := runCLI(t, ctx, "snapshot", "--config", cfg, "--target", "orders"); r.code != 0 {
		t.Fatalf("snapshot of orders: exit %d\n%s", r.code, r.stderr)
	}
	r := runCLI(t, ctx, "drill", "--config", cfg, "--group", "shop", "--output", "json")
	if r.code != 3 || !strings.Contains(r.stdout, "firedrill snapshot --group shop") {
		t.Fatalf("drill of a group without a common batch: exit %d, want 3 naming the command\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	for i := 0; i < 2; i++ {
		if r := runCLI(t, ctx, "snapshot", "--config", cfg, "--group", "shop"); r.code != 0 {
			t.Fatalf("group snapshot: exit %d\n%s", r.code, r.stderr)
		}
	}
	// A newer snapshot of orders alone is not part of any batch both have.
	if r := runCLI(t, ctx, "snapshot", "--config", cfg, "--target", "orders"); r.code != 0 {
		t.Fatalf("snapshot of orders: exit %d\n%s", r.code, r.stderr)
	}
	var list []struct {
		ID      string `json:"id"`
		BatchID string `json:"batchId"`
	}
	ls := runCLI(t, ctx, "snapshots", "--config", cfg, "--target", "billing", "--output", "json")
	if err := json.Unmarshal([]byte(ls.stdout), &list); err != nil || len(list) != 2 {
		t.Fatalf("billing's snapshots: %v %s", err, ls.stdout)
	}
	newest := list[0].BatchID

	r = runCLI(t, ctx, "drill", "--config", cfg, "--group", "shop", "--output", "json")
	var gr struct {
		Group   string      `json:"group"`
		BatchID string      `json:"batchId"`
		Status  string      `json:"status"`
		Members []drillJSON `json:"members"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &gr); err != nil {
		t.Fatalf("group drill output: %v\n%s\n%s", err, r.stdout, r.stderr)
	}
	if r.code != 0 || gr.Status != "pass" || gr.Group != "shop" || gr.BatchID != newest || len(gr.Members) != 2 {
		t.Fatalf("exit %d: group %s batch %s (want %s) status %s, %d members\n%s", r.code, gr.Group, gr.BatchID, newest, gr.Status, len(gr.Members), r.stderr)
	}
	for i, want := range []string{"orders", "billing"} {
		m := gr.Members[i]
		if m.Target != want || m.Status != "pass" || m.Snapshot == nil {
			t.Errorf("member %d: %s %s %+v", i, m.Target, m.Status, m.Snapshot)
		}
	}
	for _, name := range []string{"orders", "billing"} {
		entries, _ := os.ReadDir(filepath.Join(base, "history", name))
		if len(entries) == 0 {
			t.Errorf("no history record of %s's drill", name)
		}
	}
	if left := leftovers(t, filepath.Join(base, "scratch")); len(left) != 0 {
		t.Errorf("scratch left behind: %v", left)
	}

	// An unknown group and a batch one member lacks are usage errors.
	if r := runCLI(t, ctx, "drill", "--config", cfg, "--group", "nope"); r.code != 2 || !strings.Contains(r.stderr, "groups: shop") {
		t.Errorf("unknown group: exit %d %s", r.code, r.stderr)
	}
	if r := runCLI(t, ctx, "drill", "--config", cfg, "--group", "shop", "--batch", "no-such-batch"); r.code != 2 {
		t.Errorf("unknown batch: exit %d %s", r.code, r.stderr)
	}
}
