package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/firedrill/firedrill/integration/harness"
)

// A real pgBackRest stanza on a posix repository, filled by archive-push and a full backup of
// a real PostgreSQL 15, drills clean to target latest (pgbackrest verify as evidence, the WAL
// fetched with archive-get, the last transaction recovered) and the repository is
// byte-identical afterwards; without a pgbackrest binary the drill could not check (exit 3)
// and says why.
func TestDrillPgBackRest(t *testing.T) {
	bin, err := exec.LookPath("pgbackrest")
	if err != nil {
		harness.Missing(t, "pgbackrest", err.Error(), "run `make setup` (installs Debian's pgbackrest)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir := harness.TempDir(t)
	conf := filepath.Join(dir, "pgbackrest.conf")
	repo := filepath.Join(dir, "repo")
	pg := harness.StartPostgres(t, harness.PostgresOptions{DataChecksums: true, Settings: map[string]string{
		"archive_mode": "on", "archive_command": bin + " --config=" + conf + " --stanza=main archive-push %p",
	}})
	for _, d := range []string{repo, filepath.Join(dir, "lock"), filepath.Join(dir, "log")} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := pg.RunAs.Chown(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`[global]
repo1-path=%s
repo1-retention-full=2
lock-path=%s/lock
log-path=%s/log
log-level-file=off
start-fast=y

[main]
pg1-path=%s
pg1-socket-path=%s
pg1-port=%d
`, repo, dir, dir, pg.DataDir, pg.SocketDir, pg.Port)), 0o644); err != nil {
		t.Fatal(err)
	}
	asPostgres := func(args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, append([]string{"--config=" + conf, "--stanza=main"}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.RunAs.Credential()}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pgbackrest %v: %v\n%s", args, err, out)
		}
	}
	asPostgres("stanza-create")
	for _, q := range []string{"CREATE TABLE drill_rows (id int PRIMARY KEY, note text)", "INSERT INTO drill_rows VALUES (1, 'before the backup')"} {
		if err := pg.Exec(ctx, "postgres", q); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	asPostgres("--type=full", "backup")
	t.Logf("pgbackrest full backup in %s", time.Since(start).Round(time.Millisecond))
	if err := pg.Exec(ctx, "postgres", "INSERT INTO drill_rows VALUES (2, 'after the backup')"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	midpoint := time.Now().UTC()
	time.Sleep(1100 * time.Millisecond)
	if err := pg.Exec(ctx, "postgres", "INSERT INTO drill_rows VALUES (3, 'after the midpoint')"); err != nil {
		t.Fatal(err)
	}
	(&walPrimary{pg: pg}).switchAndWait(t, ctx)
	if err := pg.Exec(ctx, "postgres", "INSERT INTO drill_rows VALUES (4, 'in the last segment')"); err != nil {
		t.Fatal(err)
	}
	(&walPrimary{pg: pg}).switchAndWait(t, ctx)
	before := treeHash(t, repo)

	base := harness.TempDir(t)
	scratch := filepath.Join(base, "scratch")
	if err := os.MkdirAll(scratch, 0o755); err != nil {
		t.Fatal(err)
	}
	config := func(target, row3 string) string {
		return writeYAML(t, fmt.Sprintf(`targets:
  - name: orders
    engine: postgres
    connection:
      dsn: %q
    restore:
      source: {kind: pgbackrest, stanza: main, config: %s, recovery: {target: %q}}
      local: {scratchDir: %s}
    objectives: {rto: 10m, rpo: 1h}
    checks:
      sql:
        - name: row-2
          query: SELECT count(*) FROM drill_rows WHERE id = 2
          expect: {equals: "1"}
        - name: row-3
          query: SELECT count(*) FROM drill_rows WHERE id = 3
          expect: {equals: %q}
history: {dir: %s}
`, pg.DSN("postgres"), conf, target, scratch, row3, filepath.Join(base, "history")))
	}
	cfg := config("latest", "1")

	r := runCLI(t, ctx, "snapshots", "--config", cfg, "--output", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `F"`) {
		t.Errorf("snapshots does not list the full backup: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// backup-age and backup-size read the stanza's backups.
	fs := parseAuditJSON(t, runCLI(t, ctx, "audit", "--config", cfg, "--output", "json"), "orders")
	for _, check := range []string{"backup-age", "backup-size", "wal-continuity"} {
		g := wantAudit(t, fs, check, "pass")
		t.Logf("audit %s: %s", check, g.Message)
	}
	start = time.Now()
	r = runCLI(t, ctx, "drill", "--config", cfg, "--output", "json")
	d := parseDrill(t, r)
	t.Logf("pgbackrest drill: exit %d in %s", r.code, time.Since(start).Round(time.Millisecond))
	if r.code != 0 {
		t.Fatalf("exit %d status %s (%s)\nchecks: %+v\n%s", r.code, d.Status, d.Error, d.Checks, r.stderr)
	}
	for _, name := range []string{"snapshot-integrity", "wal-continuity", "recovery", "recovery-target", "amcheck", "sql:row-2", "sql:row-3"} {
		if st, msg := d.check(name); st != "pass" {
			t.Errorf("%s = %q %q, want pass", name, st, msg)
		}
	}
	for _, c := range d.Checks {
		if c.Name == "snapshot-integrity" {
			t.Logf("verify evidence: %v", c.Evidence["output"])
			if !strings.Contains(fmt.Sprint(c.Evidence["output"]), "status: valid") {
				t.Errorf("the pgbackrest verify output is not attached: %v", c.Evidence)
			}
		}
	}
	// Point in time: between the commits of rows 2 and 3.
	var msg string
	r = runCLI(t, ctx, "drill", "--config", config(midpoint.Format(time.RFC3339Nano), "0"), "--output", "json")
	d = parseDrill(t, r)
	_, msg = d.check("recovery-target")
	t.Logf("pgbackrest PITR drill: exit %d: %s", r.code, msg)
	if r.code != 0 {
		t.Errorf("PITR drill: exit %d status %s (%s)\nchecks: %+v", r.code, d.Status, d.Error, d.Checks)
	}
	// A copy of the repository without the segment that holds rows 2 and 3: a gap.
	gapped := filepath.Join(harness.TempDir(t), "repo")
	if out, err := exec.CommandContext(ctx, "cp", "-a", repo, gapped).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	segs, _ := filepath.Glob(filepath.Join(gapped, "archive", "main", "15-1", "0000000100000000", "000000010000000000000003-*"))
	if len(segs) != 1 {
		t.Fatalf("segment 3 in the repository: %v", segs)
	}
	os.Remove(segs[0])
	gapCfg := config("latest", "1")
	b, _ := os.ReadFile(gapCfg)
	os.WriteFile(gapCfg, []byte(strings.Replace(string(b), "stanza: main,", "stanza: main, repoPath: "+gapped+",", 1)), 0o600)
	r = runCLI(t, ctx, "drill", "--config", gapCfg, "--output", "json")
	d = parseDrill(t, r)
	st, msg := d.check("wal-continuity")
	t.Logf("pgbackrest drill of a repository missing a segment: exit %d; wal-continuity %s: %s", r.code, st, msg)
	if r.code != 1 || st != "fail" || !strings.Contains(msg, "000000010000000000000003") {
		t.Errorf("exit %d, wal-continuity %s %q: want exit 1 naming 000000010000000000000003", r.code, st, msg)
	}
	g := wantAudit(t, parseAuditJSON(t, runCLI(t, ctx, "audit", "--config", gapCfg, "--output", "json"), "orders"), "wal-continuity", "fail", "archive-gap")
	t.Logf("audit wal-continuity of the gapped repository: %s", g.Message)
	if !strings.Contains(g.Message, "000000010000000000000003") {
		t.Errorf("audit wal-continuity does not name the missing segment: %s", g.Message)
	}
	if got := treeHash(t, repo); got != before {
		t.Errorf("the pgBackRest repository changed during the drill")
	}
	if left := leftovers(t, scratch); len(left) != 0 {
		t.Errorf("scratch left behind: %v", left)
	}

	// No pgbackrest where firedrill runs: could not check, with the reason.
	empty := harness.TempDir(t)
	cmd := exec.CommandContext(ctx, binary, "drill", "--config", cfg, "--output", "json")
	cmd.Env = append(os.Environ(), "PATH="+empty)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(string(out), "pgbackrest is not installed") {
		t.Errorf("without pgbackrest: %v, want exit 3 naming the missing binary\n%s", err, out)
	}
}
