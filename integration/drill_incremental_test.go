package integration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/firedrill/firedrill/integration/harness"
	"github.com/firedrill/firedrill/restore/engine/postgres"
)

// verificationJSON is the drill result's verification block.
type verificationJSON struct {
	Verification *struct {
		Mode             string `json:"mode"`
		Reason           string `json:"reason"`
		BaselineSnapshot string `json:"baselineSnapshot"`
		DataFiles        int    `json:"dataFiles"`
		ChangedFiles     int    `json:"changedFiles"`
		BaselineRecorded bool   `json:"baselineRecorded"`
	} `json:"verification"`
	Notes []string `json:"notes"`
}

const incrementalChecks = `    checks:
      amcheck:
        mode: incremental
        fullEvery: 7d
      rowCounts:
        min:
          public.cold: 20000`

// TestDrillIncrementalAmcheck: with checks.amcheck.mode incremental, the first drill runs in
// full and becomes the baseline; a drill of a newer snapshot re-checks only what changed (the
// cold table and its index are left to the baseline); damage planted before the snapshot is
// caught whether it lies in a changed file or in one that was unchanged (its hash then
// differs from the baseline's), damage at rest in an unchanged file is caught by the
// manifest on clone, and a baseline older than fullEvery forces a full drill.
func TestDrillIncrementalAmcheck(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{DataChecksums: true, PgbenchScale: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	for _, q := range []string{
		"CREATE TABLE cold AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g",
		"ALTER TABLE cold ADD PRIMARY KEY (id)", "VACUUM (FREEZE, ANALYZE) cold", "VACUUM (FREEZE, ANALYZE) pgbench_accounts", "CHECKPOINT",
	} {
		if err := pg.Exec(ctx, "postgres", q); err != nil {
			t.Fatal(err)
		}
	}
	hot, cold := relationFile(t, ctx, pg, "pgbench_accounts"), relationFile(t, ctx, pg, "cold")
	tg, cfg := newTarget(t, pg, incrementalChecks)
	change := func() {
		t.Helper()
		// About 1% of the accounts.
		if err := pg.Exec(ctx, "postgres", "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 100 = 0; CHECKPOINT"); err != nil {
			t.Fatal(err)
		}
	}
	drill := func(args ...string) (cliResult, drillJSON, verificationJSON) {
		t.Helper()
		r := runCLI(t, ctx, append([]string{"drill", "--config", cfg, "--output", "json"}, args...)...)
		d := parseDrill(t, r)
		var v verificationJSON
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Verification == nil {
			t.Fatalf("drill result has no verification block (%v):\n%s", err, r.stdout)
		}
		return r, d, v
	}
	evidence := func(d drillJSON, check, key string) any {
		c, _ := d.find(check)
		return c.Evidence[key]
	}

	// A target in full mode keeps no baseline.
	fullTg, fullCfg := newTarget(t, pg, "")
	snapshotID(t, ctx, fullCfg)
	r := runCLI(t, ctx, "drill", "--config", fullCfg, "--output", "json")
	var fv verificationJSON
	if err := json.Unmarshal([]byte(r.stdout), &fv); err != nil || r.code != 0 || fv.Verification == nil || fv.Verification.Mode != "full" || fv.Verification.BaselineRecorded {
		t.Fatalf("full-mode drill: exit %d, verification %+v (%v), want 0, full, no baseline:\n%s", r.code, fv.Verification, err, r.stdout)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(fullTg.history), "amcheck-baselines")); !os.IsNotExist(err) {
		t.Errorf("a full-mode target wrote amcheck baselines (stat: %v)", err)
	}

	first := snapshotID(t, ctx, cfg)
	r, d, v := drill()
	if r.code != 0 || v.Verification.Mode != "full" || !strings.Contains(v.Verification.Reason, "no earlier snapshot") || !v.Verification.BaselineRecorded {
		t.Fatalf("first drill: exit %d, verification %+v, want 0, full (no baseline yet), recorded as the baseline:\n%s", r.code, *v.Verification, summary(d))
	}
	if m := evidence(d, "amcheck", "mode"); m != "full" {
		t.Errorf("first drill's amcheck mode = %v, want full", m)
	}

	change()
	second := snapshotID(t, ctx, cfg)
	r, d, v = drill()
	vf := v.Verification
	if r.code != 0 || vf.Mode != "incremental" || vf.BaselineSnapshot != first || vf.BaselineRecorded {
		t.Fatalf("second drill: exit %d, verification %+v, want 0, incremental on %s, not a new baseline:\n%s", r.code, *vf, first, summary(d))
	}
	if vf.ChangedFiles == 0 || vf.ChangedFiles >= vf.DataFiles {
		t.Errorf("second drill: %d of %d data files changed, want some but not all", vf.ChangedFiles, vf.DataFiles)
	}
	_, msg := d.check("amcheck")
	t.Logf("incremental drill: %d of %d data files changed; amcheck: %s", vf.ChangedFiles, vf.DataFiles, msg)
	if m := evidence(d, "amcheck", "mode"); m != "incremental" {
		t.Errorf("second drill's amcheck mode = %v, want incremental", m)
	}
	if n, _ := evidence(d, "amcheck", "unchangedIndexes").(float64); n < 1 {
		t.Errorf("second drill left %v indexes to the baseline, want cold's primary key and more", n)
	}
	if n, _ := evidence(d, "amcheck", "unchangedHeapBlocks").(float64); n < 1 {
		t.Errorf("second drill left %v heap blocks to the baseline, want cold's", n)
	}
	if n, _ := evidence(d, "pg_checksums", "blocksUnchangedSinceBaseline").(float64); n < 1 {
		t.Errorf("second drill's checksum pass left %v blocks to the baseline, want cold's; pg_checksums: %v", n, evidence(d, "pg_checksums", "method"))
	}
	if st, msg := d.check("row-counts"); st != "pass" {
		t.Errorf("row-counts = %s %q: exact counts stay whole in an incremental drill", st, msg)
	}

	// Damage before the snapshot, in a file that changed: the incremental drill re-reads it.
	change()
	changed := snapshotID(t, ctx, cfg)
	damage(t, filepath.Join(tg.repo, changed, "data", hot))
	rewriteManifest(t, filepath.Join(tg.repo, changed), "data/"+hot)
	r, d, v = drill()
	if r.code != 1 || v.Verification.Mode != "incremental" {
		t.Errorf("damage in a changed file: exit %d, mode %s, want 1, incremental:\n%s", r.code, v.Verification.Mode, summary(d))
	}
	if st, msg := d.check("amcheck"); st != "fail" || !strings.Contains(msg, "pgbench_accounts") {
		t.Errorf("damage in a changed file: amcheck = %s %q, want fail naming pgbench_accounts", st, msg)
	}

	// Damage at rest in a file unchanged since the baseline: the clone's manifest check.
	atRest := snapshotID(t, ctx, cfg)
	damage(t, filepath.Join(tg.repo, atRest, "data", cold))
	r, d, _ = drill()
	if st, msg := d.check("snapshot-integrity"); r.code != 1 || st != "fail" || !strings.Contains(msg, cold) {
		t.Errorf("damage at rest in an unchanged file: exit %d, snapshot-integrity %s %q, want 1, fail naming %s", r.code, st, msg, cold)
	}

	// Damage before the snapshot in a file otherwise unchanged: its hash is not the baseline's,
	// so it is re-read and the damage proven.
	before := snapshotID(t, ctx, cfg)
	damage(t, filepath.Join(tg.repo, before, "data", cold))
	rewriteManifest(t, filepath.Join(tg.repo, before), "data/"+cold)
	r, d, v = drill()
	if r.code != 1 || v.Verification.Mode != "incremental" {
		t.Errorf("damage in an unchanged file before the snapshot: exit %d, mode %s, want 1, incremental:\n%s", r.code, v.Verification.Mode, summary(d))
	}
	if st, msg := d.check("amcheck"); st != "fail" || !strings.Contains(msg, "cold") {
		t.Errorf("damage in an unchanged file before the snapshot: amcheck = %s %q, want fail naming cold", st, msg)
	}
	if st, _ := d.check("pg_checksums"); st != "fail" {
		t.Errorf("damage in an unchanged file before the snapshot: pg_checksums = %s, want fail", st)
	}

	// A baseline older than fullEvery: the drill runs in full and becomes the new baseline.
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(b), "fullEvery: 7d", "fullEvery: 1s", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	r, d, v = drill("--snapshot", second)
	if r.code != 0 || v.Verification.Mode != "full" || !strings.Contains(v.Verification.Reason, "fullEvery") || !v.Verification.BaselineRecorded {
		t.Errorf("after fullEvery: exit %d, verification %+v, want 0, full (fullEvery), a new baseline:\n%s", r.code, *v.Verification, summary(d))
	}
	if left := leftovers(t, tg.scratch); len(left) != 0 {
		t.Errorf("scratch left behind: %v", left)
	}
}

// TestWALReplayTouchesRealWAL: pg_waldump over a real server's WAL, from a backup label's
// start segment, names the files of a table written after that point and not those of a table
// left alone.
func TestWALReplayTouchesRealWAL(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{DataChecksums: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, q := range []string{
		"CREATE TABLE written (id int PRIMARY KEY)", "CREATE TABLE quiet (id int PRIMARY KEY) WITH (autovacuum_enabled = off)",
		"INSERT INTO quiet SELECT generate_series(1, 1000)", "VACUUM (FREEZE, ANALYZE) quiet", "CHECKPOINT", "SELECT pg_switch_wal()",
	} {
		if err := pg.Exec(ctx, "postgres", q); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// The segment the next record goes to (an LSN on a segment boundary names the one before).
	var lsn, seg string
	if err := conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text, pg_walfile_name(pg_current_wal_lsn() + 1)").Scan(&lsn, &seg); err != nil {
		t.Fatal(err)
	}
	if err := pg.Exec(ctx, "postgres", "INSERT INTO written SELECT generate_series(1, 1000)"); err != nil {
		t.Fatal(err)
	}
	written, quiet := relationFile(t, ctx, pg, "written"), relationFile(t, ctx, pg, "quiet")
	label := []byte("START WAL LOCATION: " + lsn + " (file " + seg + ")\nSTART TIMELINE: 1\n")
	got, err := postgres.WALReplayTouches(ctx, pg.BinDir, pg.DataDir, label)
	if err != nil {
		t.Fatal(err)
	}
	if got.Records == 0 || !got.Touches(written) || got.Touches(quiet) {
		t.Errorf("%d records: touches written (%s) %v, quiet (%s) %v; want true, false", got.Records, written, got.Touches(written), quiet, got.Touches(quiet))
	}
}
