package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/firedrill/firedrill/integration/harness"
)

const pgbenchChecks = `    checks:
      amcheck: true
      rowCounts:
        min:
          public.pgbench_accounts: 100000
      sql:
        - name: balances-match
          query: "SELECT sum(abalance) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history) FROM pgbench_accounts"
          database: postgres
          expect: {equals: "t"}`

// The whole CLI path: snapshot under load, list, drill with JSON output, history written.
func TestCLISnapshotListDrill(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{DataChecksums: true, Archive: true, PgbenchScale: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	load := pg.PgbenchCmd(ctx, "-n", "-c", "2", "-j", "2", "-T", "60")
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	// "Under load" means pgbench has committed transactions when the first snapshot starts,
	// not that it was merely spawned: wait for its first rows in pgbench_history.
	waitPgbenchWriting(t, ctx, pg)
	tg, cfg := newTarget(t, pg, pgbenchChecks)
	first := snapshotID(t, ctx, cfg)
	second := snapshotID(t, ctx, cfg)
	_ = load.Cancel()
	_ = load.Wait()

	r := runCLI(t, ctx, "snapshots", "--config", cfg, "--target", "orders", "--output", "json")
	var snaps []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &snaps); err != nil || r.code != 0 {
		t.Fatalf("snapshots: exit %d, %v: %s %s", r.code, err, r.stdout, r.stderr)
	}
	if len(snaps) != 2 || snaps[0].ID != second || snaps[1].ID != first {
		t.Fatalf("snapshots newest first: got %+v, want [%s %s]", snaps, second, first)
	}

	r = runCLI(t, ctx, "drill", "--config", cfg, "--target", "orders", "--output", "json")
	d := parseDrill(t, r)
	if r.code != 0 || d.Status != "pass" {
		t.Fatalf("drill exit %d status %s failed=%v error=%s\n%s", r.code, d.Status, d.failed(), d.Error, r.stderr)
	}
	if d.Snapshot == nil || d.Snapshot.ID != second {
		t.Errorf("drill restored %+v, want the newest snapshot %s", d.Snapshot, second)
	}
	if !d.RTO.Met || d.RTO.TargetSeconds != 600 || d.RTO.ActualSeconds <= 0 {
		t.Errorf("rto = %+v", d.RTO)
	}
	if d.RecoveryPoint == nil {
		t.Errorf("no recoveryPoint")
	}
	for _, name := range []string{"snapshot-integrity", "recovery", "amcheck", "row-counts", "sql:balances-match", "checksums", "rto", "pg_checksums"} {
		if st, msg := d.check(name); st != "pass" {
			t.Errorf("check %s = %q (%s), want pass", name, st, msg)
		}
	}
	// The stopped copy's checksum pass reads only what amcheck did not: the heaps amcheck read
	// whole were verified by the server as it read them.
	for _, c := range d.Checks {
		if c.Name == "pg_checksums" {
			read, _ := c.Evidence["blocksScanned"].(float64)
			byAmcheck, _ := c.Evidence["blocksVerifiedByAmcheck"].(float64)
			if read <= 0 || byAmcheck < 1500 || c.Evidence["badChecksums"] != float64(0) {
				t.Errorf("pg_checksums evidence %v: want blocks read by the pass and the pgbench heaps verified by amcheck", c.Evidence)
			}
		}
	}
	phases := map[string]bool{}
	for _, p := range d.Phases {
		phases[p.Name] = true
	}
	for _, p := range []string{"select", "clone", "start-and-recovery", "check:amcheck", "teardown"} {
		if !phases[p] {
			t.Errorf("phase %s missing from %+v", p, d.Phases)
		}
	}
	if left := leftovers(t, tg.scratch); len(left) != 0 {
		t.Errorf("scratch directory not empty after the drill: %v", left)
	}
	hist, _ := filepath.Glob(filepath.Join(tg.history, "orders", "*.json"))
	if len(hist) != 1 {
		t.Errorf("history files: %v, want 1", hist)
	}
	// A drill of an older snapshot by id.
	r = runCLI(t, ctx, "drill", "--config", cfg, "--target", "orders", "--snapshot", first, "--output", "json")
	if d := parseDrill(t, r); r.code != 0 || d.Snapshot.ID != first {
		t.Fatalf("drill --snapshot %s: exit %d, restored %+v", first, r.code, d.Snapshot)
	}
	// An unknown snapshot id is a usage error.
	if r = runCLI(t, ctx, "drill", "--config", cfg, "--target", "orders", "--snapshot", "nope"); r.code != 2 {
		t.Errorf("drill --snapshot nope: exit %d, want 2\n%s", r.code, r.stderr)
	}
}

// waitPgbenchWriting waits until pgbench has committed a transaction (a row in pgbench_history,
// which pgbench -i leaves empty), polling with a deadline.
func waitPgbenchWriting(t *testing.T, ctx context.Context, pg *harness.Postgres) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var last error
	for {
		conn, err := pgx.Connect(wctx, pg.DSN("postgres"))
		if err == nil {
			var writing bool
			err = conn.QueryRow(wctx, "SELECT EXISTS (SELECT 1 FROM pgbench_history)").Scan(&writing)
			_ = conn.Close(context.WithoutCancel(wctx))
			if err == nil && writing {
				return
			}
		}
		if err != nil {
			last = err
		}
		select {
		case <-wctx.Done():
			t.Fatalf("pgbench committed no transaction within a minute (last error: %v)", last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// relationFile returns the path, relative to the data directory, of a relation's first segment.
func relationFile(t *testing.T, ctx context.Context, pg *harness.Postgres, rel string) string {
	t.Helper()
	conn, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var p string
	if err := conn.QueryRow(ctx, "SELECT pg_relation_filepath($1::regclass)", rel).Scan(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

// damage overwrites bytes in the middle of the 4th page of a file.
func damage(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte(strings.Repeat("\xde\xad\xbe\xef", 64)), 3*8192+2000); err != nil {
		t.Fatal(err)
	}
}

// A drill on a snapshot whose data file was damaged fails with named checks: the manifest
// catches damage to the snapshot, and the database's own checks catch corruption that the
// manifest cannot (damage that was already there when the snapshot was taken).
func TestDrillOnDamagedSnapshotFails(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{DataChecksums: true, PgbenchScale: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	relFile := relationFile(t, ctx, pg, "pgbench_accounts")

	t.Run("damaged after the snapshot", func(t *testing.T) {
		tg, cfg := newTarget(t, pg, pgbenchChecks)
		id := snapshotID(t, ctx, cfg)
		damage(t, filepath.Join(tg.repo, id, "data", relFile))
		r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json")
		d := parseDrill(t, r)
		if r.code != 1 || d.Status != "fail" {
			t.Fatalf("exit %d status %s, want 1/fail", r.code, d.Status)
		}
		if st, msg := d.check("snapshot-integrity"); st != "fail" || !strings.Contains(msg, relFile) {
			t.Errorf("snapshot-integrity = %s %q, want fail naming %s", st, msg, relFile)
		}
		for _, name := range []string{"amcheck", "checksums"} {
			if st, msg := d.check(name); st != "fail" {
				t.Errorf("%s = %s %q, want fail", name, st, msg)
			}
		}
		if left := leftovers(t, tg.scratch); len(left) != 0 {
			t.Errorf("scratch left behind: %v", left)
		}
	})

	t.Run("damaged with a matching manifest", func(t *testing.T) {
		tg, cfg := newTarget(t, pg, pgbenchChecks)
		id := snapshotID(t, ctx, cfg)
		dir := filepath.Join(tg.repo, id)
		damage(t, filepath.Join(dir, "data", relFile))
		rewriteManifest(t, dir, "data/"+relFile)
		r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json")
		d := parseDrill(t, r)
		if r.code != 1 || d.Status != "fail" {
			t.Fatalf("exit %d status %s, want 1/fail", r.code, d.Status)
		}
		if st, _ := d.check("snapshot-integrity"); st != "pass" {
			t.Errorf("snapshot-integrity = %s, want pass (the manifest was made to match)", st)
		}
		for _, name := range []string{"amcheck", "checksums"} {
			if st, msg := d.check(name); st != "fail" {
				t.Errorf("%s = %s %q, want fail", name, st, msg)
			}
		}
	})
}

// rewriteManifest recomputes one file's manifest line and the manifest's hash in meta.json,
// as if the damage had been there when the snapshot was taken.
func rewriteManifest(t *testing.T, dir, rel string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	mb, err := os.ReadFile(filepath.Join(dir, "manifest.sha256"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(mb), "\n")
	for i, l := range lines {
		if strings.HasSuffix(l, "  "+rel) {
			lines[i] = hex.EncodeToString(sum[:]) + "  " + rel
		}
	}
	nm := strings.Join(lines, "\n")
	if err := os.WriteFile(filepath.Join(dir, "manifest.sha256"), []byte(nm), 0o600); err != nil {
		t.Fatal(err)
	}
	msum := sha256.Sum256([]byte(nm))
	var meta map[string]any
	metaB, _ := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err := json.Unmarshal(metaB, &meta); err != nil {
		t.Fatal(err)
	}
	meta["manifestSha256"] = hex.EncodeToString(msum[:])
	metaB, _ = json.Marshal(meta)
	if err := os.WriteFile(filepath.Join(dir, "meta.json"), metaB, 0o600); err != nil {
		t.Fatal(err)
	}
}

// treeState records every file under dir with its size and content hash.
func treeState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, _ := d.Info()
		sum := sha256.Sum256(b)
		out[p] = fmt.Sprintf("%d %x %s", len(b), sum[:8], fi.ModTime().Format(time.RFC3339Nano))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A drill never writes into the source's WAL archive directory, even though the snapshot's
// cluster had archive_mode on and the throwaway writes WAL (CREATE EXTENSION, checkpoints).
func TestDrillNeverWritesToWALArchive(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{DataChecksums: true, Archive: true, PgbenchScale: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, cfg := newTarget(t, pg, pgbenchChecks)
	snapshotID(t, ctx, cfg)
	// Production stops, so that only the drill could change the archive from here on.
	if err := pg.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	before := treeState(t, pg.ArchiveDir)
	if len(before) == 0 {
		t.Fatal("the archive is empty: archiving did not work, the test would prove nothing")
	}
	r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json")
	if d := parseDrill(t, r); r.code != 0 {
		t.Fatalf("drill exit %d, failed %v: %s", r.code, d.failed(), d.Error)
	}
	after := treeState(t, pg.ArchiveDir)
	for p, s := range after {
		if before[p] != s {
			t.Errorf("archive changed by the drill: %s (%s -> %s)", p, before[p], s)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("archive file removed by the drill: %s", p)
		}
	}
}

// An interrupted drill (Ctrl-C or SIGTERM, in any phase) leaves no process, socket or scratch
// directory behind, and exits 3.
func TestInterruptedDrillLeavesNothing(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{DataChecksums: true, PgbenchScale: 5})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cases := []struct {
		name string
		sig  syscall.Signal
		// when reports whether the drill reached the phase to interrupt in.
		when func(scratch string) bool
	}{
		{"SIGINT while cloning", syscall.SIGINT, func(s string) bool { return globAny(s, "*/clone/data/base") }},
		{"SIGTERM while the server runs", syscall.SIGTERM, func(s string) bool { return globAny(s, "*/server.log") }},
		{"SIGINT during checks", syscall.SIGINT, func(s string) bool {
			return sizeAbove(s, "*/server.log", 0) && globAny(s, "*/clone/data/postmaster.pid")
		}},
	}
	tg, cfg := newTarget(t, pg, pgbenchChecks)
	snapshotID(t, ctx, cfg)
	if err := pg.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.CommandContext(ctx, binary, "drill", "--config", cfg, "--output", "json")
			out := &strings.Builder{}
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			reached := false
			for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				if tc.when(tg.scratch) {
					reached = true
					break
				}
			}
			if !reached {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Skipf("the drill finished before the phase to interrupt (output: %s)", out)
			}
			_ = cmd.Process.Signal(tc.sig)
			err := cmd.Wait()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != 3 {
				t.Errorf("exit code %d after %s, want 3\n%s", code, tc.sig, out)
			}
			if left := leftovers(t, tg.scratch); len(left) != 0 {
				t.Errorf("left behind in scratch: %v", left)
			}
			if procs := processesUnder(tg.scratch); len(procs) != 0 {
				t.Errorf("processes left running: %v", procs)
			}
		})
	}
}

func globAny(dir, pattern string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, pattern))
	return len(m) > 0
}

func sizeAbove(dir, pattern string, n int64) bool {
	m, _ := filepath.Glob(filepath.Join(dir, pattern))
	for _, p := range m {
		if fi, err := os.Stat(p); err == nil && fi.Size() > n {
			return true
		}
	}
	return false
}

// An interrupted snapshot ends backup mode, drops its slot, and leaves no partial snapshot.
func TestInterruptedSnapshotLeavesNothing(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{DataChecksums: true, PgbenchScale: 10})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tg, cfg := newTarget(t, pg, "")
	cmd := exec.CommandContext(ctx, binary, "snapshot", "--config", cfg)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reached := false
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if globAny(tg.repo, ".partial-*/data/base") {
			reached = true
			break
		}
	}
	if !reached {
		_ = cmd.Wait()
		t.Skipf("the snapshot finished before it could be interrupted: %s", out)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Errorf("exit %v after SIGINT, want 3\n%s", err, out)
	}
	if left := leftovers(t, tg.repo); len(left) > 1 || (len(left) == 1 && left[0] != ".lock") {
		t.Errorf("repository holds %v after an interrupted snapshot", left)
	}
	conn, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var sessions, slots int
	if err := conn.QueryRow(ctx, "SELECT (SELECT count(*) FROM pg_stat_activity WHERE application_name = 'firedrill-snapshot'), (SELECT count(*) FROM pg_replication_slots)").Scan(&sessions, &slots); err != nil {
		t.Fatal(err)
	}
	if sessions != 0 || slots != 0 {
		t.Errorf("after the interrupt: %d firedrill sessions, %d replication slots; want none", sessions, slots)
	}
	// Backup mode is over: a new backup can start right away.
	if _, err := conn.Exec(ctx, "SELECT pg_backup_start('probe', true)"); err != nil {
		t.Errorf("a new backup cannot start: %v", err)
	} else if _, err := conn.Exec(ctx, "SELECT pg_backup_stop(false)"); err != nil {
		t.Errorf("stopping the probe backup: %v", err)
	}
	// And a snapshot after the interrupted one works.
	if r := runCLI(t, ctx, "snapshot", "--config", cfg); r.code != 0 {
		t.Errorf("snapshot after an interrupted one: exit %d\n%s", r.code, r.stderr)
	}
}

// A malformed configuration fails with exit 2 and names file, line and key.
func TestMalformedConfigExit2(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown key", "targets:\n  - name: orders\n    engine: postgres\n    conection:\n      dsn: x\n", []string{":4:", "conection", "connection"}},
		{"bad duration", "targets:\n  - name: orders\n    connection: {dsn: x}\n    snapshot: {local: {dataDir: /d, repository: /r}}\n    objectives:\n      rto: 10 minutes\n", []string{":6:", "invalid duration"}},
		{"bad mode", "targets:\n  - name: orders\n    connection: {dsn: x}\n    snapshot:\n      mode: crash-consistent\n      local: {dataDir: /d, repository: /r}\n", []string{":5:", "snapshot.mode", "not atomic"}},
		{"syntax", "targets:\n  - name: orders\n    engine: [postgres\n", []string{"malformed YAML"}},
		{"missing file", "", []string{"cannot read the configuration"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			if tc.yaml != "" {
				if err := os.WriteFile(p, []byte(tc.yaml), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for _, cmd := range []string{"drill", "snapshot", "snapshots"} {
				r := runCLI(t, ctx, cmd, "--config", p)
				if r.code != 2 {
					t.Errorf("%s: exit %d, want 2\n%s", cmd, r.code, r.stderr)
				}
				if tc.yaml != "" && !regexp.MustCompile(regexp.QuoteMeta(p)+`:\d+: `).MatchString(r.stderr) {
					t.Errorf("%s: stderr %q does not name file:line", cmd, r.stderr)
				}
				for _, w := range append(tc.want, p) {
					if !strings.Contains(r.stderr, w) {
						t.Errorf("%s: stderr %q does not mention %q", cmd, r.stderr, w)
					}
				}
			}
		})
	}
}
