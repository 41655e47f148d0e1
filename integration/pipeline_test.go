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

func ptr[T any](v T) *T { return &v }

// A snapshot taken while pgbench writes restores with amcheck clean and the pgbench balance
// invariant holding.
func TestSnapshotUnderLoadRestoresClean(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{DataChecksums: true, Archive: true, PgbenchScale: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	load := pg.PgbenchCmd(ctx, "-c", "2", "-j", "2", "-T", "60", "-n")
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = load.Cancel(); _ = load.Wait() }()
	time.Sleep(time.Second) // let the load run before the snapshot starts

	repo := local.New(harness.TempDir(t)+"/repo", 4)
	meta, err := take.Take(ctx, take.Options{Target: "orders", Engine: "postgres", Mode: "online",
		DSN: pg.DSN("postgres"), DataDir: pg.DataDir, Repository: repo, Fast: true})
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	t.Logf("snapshot %s: %d files, %d bytes, backup mode %.2fs, LSN %s..%s", meta.ID, meta.Files, meta.SizeBytes, meta.FrozenSeconds, meta.StartLSN, meta.StopLSN)

	d := &drill.Drill{Source: drill.Repository(repo)}
	res, err := d.Run(ctx, drill.Options{Target: "orders", Engine: "postgres", RTO: 10 * time.Minute, RPO: time.Hour,
		Checks: checks.Config{Amcheck: checks.AmcheckOn(true), Checksums: ptr(true), RowCounts: &checks.RowCountConfig{Min: map[string]int64{"public.pgbench_accounts": 200000}}, Parallel: 2,
			SQL: []checks.SQLAssertion{{Name: "balances-match", Database: "postgres",
				Query:  "SELECT sum(abalance) = (SELECT sum(delta) FROM pgbench_history) FROM pgbench_accounts",
				Expect: checks.Expect{Equals: ptr("t")}}}},
		Runtime: drill.RuntimeOptions{ScratchDir: harness.TempDir(t), Listen: "socket", IsolateNetwork: true, StartTimeout: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Checks {
		t.Logf("%-20s %-5s %s", f.Check, f.Status, f.Message)
	}
	for _, p := range res.Phases {
		t.Logf("phase %-25s %.2fs", p.Name, p.Seconds)
	}
	if res.Status != reports.StatusPass {
		t.Fatalf("drill status %s (%s), want pass", res.Status, res.Error)
	}
}
