package integration

import (
	"context"
	"testing"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/integration/harness"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/snapshot/local"
	"github.com/firedrill/firedrill/restore/snapshot/take"
)

// Twenty online snapshots in a row, taken while pgbench writes, all restore with amcheck clean
// and the pgbench balance invariant holding.
func TestPostgresTwentySnapshotsUnderLoadAllRestore(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{DataChecksums: true, PgbenchScale: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	load := pg.PgbenchCmd(ctx, "-n", "-c", "2", "-j", "2", "-T", "600")
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	stopLoad := func() { _ = load.Cancel(); _ = load.Wait() }
	defer stopLoad()
	time.Sleep(500 * time.Millisecond)

	repo := local.New(harness.TempDir(t)+"/repo", 4)
	var ids []string
	var maxBackup float64
	for i := range 20 {
		meta, err := take.Take(ctx, take.Options{Target: "orders", Engine: "postgres", Mode: "online",
			DSN: pg.DSN("postgres"), DataDir: pg.DataDir, Repository: repo, Fast: true})
		if err != nil {
			t.Fatalf("snapshot %d: %v", i+1, err)
		}
		ids = append(ids, meta.ID)
		maxBackup = max(maxBackup, meta.FrozenSeconds)
	}
	stopLoad()
	t.Logf("20 snapshots under load; longest backup mode %.2fs", maxBackup)

	d := &drill.Drill{Source: drill.Repository(repo)}
	for i, id := range ids {
		res, err := d.Run(ctx, drill.Options{Target: "orders", Engine: "postgres", SnapshotID: id, RTO: 10 * time.Minute, RPO: time.Hour,
			Checks: checks.Config{Amcheck: checks.AmcheckOn(true), Checksums: ptr(false), RowCounts: &checks.RowCountConfig{Enabled: ptr(false)}, Parallel: 2,
				SQL: []checks.SQLAssertion{{Name: "balances-match", Database: "postgres",
					Query:  "SELECT sum(abalance) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history) FROM pgbench_accounts",
					Expect: checks.Expect{Equals: ptr("t")}}}},
			Runtime: drill.RuntimeOptions{ScratchDir: harness.TempDir(t), Listen: "socket", IsolateNetwork: true, StartTimeout: time.Minute}})
		if err != nil {
			t.Fatalf("drill of snapshot %d (%s): %v", i+1, id, err)
		}
		if res.Status != reports.StatusPass {
			for _, f := range res.Checks {
				t.Logf("%-20s %-5s %s", f.Check, f.Status, f.Message)
			}
			t.Fatalf("snapshot %d (%s) restored with status %s (%s)", i+1, id, res.Status, res.Error)
		}
	}
}
