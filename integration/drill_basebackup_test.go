package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/firedrill/firedrill/integration/harness"
)

// walPrimary is a real PostgreSQL 15 archiving to a directory, with base backups taken by
// pg_basebackup and three committed rows: one before the backups, one after, one after
// midpoint (a time between the second and the third commit).
type walPrimary struct {
	pg       *harness.Postgres
	backups  string
	midpoint time.Time
}

func startWALPrimary(t *testing.T, ctx context.Context, formats map[string][]string) *walPrimary {
	t.Helper()
	pg := harness.StartPostgres(t, harness.PostgresOptions{Archive: true, DataChecksums: true})
	w := &walPrimary{pg: pg, backups: filepath.Join(pg.Dir, "backups")}
	exec1 := func(sql string) {
		t.Helper()
		if err := pg.Exec(ctx, "postgres", sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec1("CREATE TABLE drill_rows (id int PRIMARY KEY, note text, at timestamptz DEFAULT clock_timestamp())")
	exec1("INSERT INTO drill_rows (id, note) VALUES (1, 'before the backup')")
	names := make([]string, 0, len(formats))
	for name := range formats {
		names = append(names, name)
	}
	sort.Strings(names) // taken in name order: the last is the newest
	for _, name := range names {
		args := formats[name]
		cmd := exec.CommandContext(ctx, filepath.Join(pg.BinDir, "pg_basebackup"),
			append([]string{"-h", pg.SocketDir, "-p", strconv.Itoa(pg.Port), "-U", pg.Superuser, "-c", "fast", "-D", filepath.Join(w.backups, name)}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pg_basebackup %v: %v\n%s", args, err, out)
		}
	}
	exec1("INSERT INTO drill_rows (id, note) VALUES (2, 'after the backup')")
	time.Sleep(1100 * time.Millisecond)
	w.midpoint = time.Now().UTC()
	time.Sleep(1100 * time.Millisecond)
	exec1("INSERT INTO drill_rows (id, note) VALUES (3, 'after the midpoint')")
	w.switchAndWait(t, ctx)
	return w
}

// switchAndWait ends the current segment and waits until the archiver has it.
func (w *walPrimary) switchAndWait(t *testing.T, ctx context.Context) {
	t.Helper()
	conn, err := pgx.Connect(ctx, w.pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var file string
	if err := conn.QueryRow(ctx, "SELECT pg_walfile_name(pg_switch_wal())").Scan(&file); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var last string
		if err := conn.QueryRow(ctx, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver").Scan(&last); err != nil {
			t.Fatal(err)
		}
		if len(last) >= 24 && last[:24] >= file { // a .backup or .history file may be the last
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the archiver never archived %s (last %s)", file, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// treeHash hashes every file (name, mode, content) under dir.
func treeHash(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		names = append(names, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	for _, p := range names {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s %v %d\n", strings.TrimPrefix(p, dir), fi.Mode(), fi.Size())
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(h, f)
			f.Close()
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func copyDir(t *testing.T, src, dst string, skip func(name string) bool) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if skip != nil && skip(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func segmentsIn(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if len(e.Name()) == 24 {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// basebackupConfig is a target drilled from the base backups in backups with archive.
func basebackupConfig(t *testing.T, w *walPrimary, backups, archive, recoveryTarget, scratch string) string {
	t.Helper()
	rec := ""
	if recoveryTarget != "" {
		rec = "\n        recovery: {target: " + strconv.Quote(recoveryTarget) + "}"
	}
	return writeYAML(t, fmt.Sprintf(`targets:
  - name: orders
    engine: postgres
    connection:
      dsn: %q
    restore:
      source:
        kind: basebackup
        dir: %s
        archive: %s%s
      local: {scratchDir: %s}
    objectives: {rto: 10m, rpo: 1h}
    checks:
      sql:
        - name: row-1
          query: SELECT count(*) FROM drill_rows WHERE id = 1
          expect: {equals: "1"}
history: {dir: %s}
`, w.pg.DSN("postgres"), backups, archive, rec, scratch, filepath.Join(filepath.Dir(scratch), "history")))
}

// Base backups in plain, tar and tar.gz format with a real WAL archive drill to a pass at
// target latest (the last transaction and the achieved RPO recorded), a PITR to a time
// between two commits restores the first and not the second, a segment missing from the
// archive fails naming it, a target past the archive's end fails with PostgreSQL's reason;
// the archive and the backups are byte-identical afterwards and scratch is empty.
func TestDrillBaseBackup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	w := startWALPrimary(t, ctx, map[string][]string{
		"plain": {"-Fp"}, "tar": {"-Ft"}, "targz": {"-Ft", "-z"},
	})
	archive := w.pg.ArchiveDir
	beforeArchive, beforeBackups := treeHash(t, archive), treeHash(t, w.backups)

	r := runCLI(t, ctx, "snapshots", "--config", basebackupConfig(t, w, w.backups, archive, "", harness.TempDir(t)), "--output", "json")
	for _, id := range []string{"plain", "tar", "targz"} {
		if r.code != 0 || !strings.Contains(r.stdout, `"`+id+`"`) {
			t.Errorf("snapshots does not list base backup %s: exit %d\n%s\n%s", id, r.code, r.stdout, r.stderr)
		}
	}

	// A copy of the archive without one segment after the backups' end.
	segs := segmentsIn(t, archive)
	if len(segs) < 3 {
		t.Fatalf("the archive holds too few segments: %v", segs)
	}
	missing := segs[len(segs)-2]
	gapped := filepath.Join(harness.TempDir(t), "archive")
	copyDir(t, archive, gapped, func(n string) bool { return n == missing })

	// The audit's wal-continuity check walks the same archive without restoring anything.
	for _, a := range []struct {
		archive, status, reason, msg string
	}{{archive, "pass", "", "the last commit at"}, {gapped, "fail", "archive-gap", missing}} {
		r := runCLI(t, ctx, "audit", "--config", basebackupConfig(t, w, w.backups, a.archive, "", harness.TempDir(t)), "--output", "json")
		var reasons []string
		if a.reason != "" {
			reasons = []string{a.reason}
		}
		fs := parseAuditJSON(t, r, "orders")
		f := wantAudit(t, fs, "wal-continuity", a.status, reasons...)
		// backup-age and backup-size read the base backups the drills restore (the newest,
		// compressed, is far smaller than the plain ones before it: a size drop).
		g := wantAudit(t, fs, "backup-age", "pass")
		t.Logf("audit backup-age: %s", g.Message)
		if g, ok := fs["backup-size"]; !ok || !strings.Contains(g.Message, "targz") {
			t.Errorf("backup-size does not judge the base backups: %+v", g)
		}
		t.Logf("audit wal-continuity (%s): %s %s", filepath.Base(filepath.Dir(a.archive)), f.Status, f.Message)
		if !strings.Contains(f.Message, a.msg) {
			t.Errorf("wal-continuity says %q, want it to mention %q", f.Message, a.msg)
		}
	}

	// The same archive as a gzip-compressing archive_command leaves it.
	gzipped := filepath.Join(harness.TempDir(t), "archive")
	copyDir(t, archive, gzipped, nil)
	for _, seg := range segmentsIn(t, gzipped) {
		if out, err := exec.CommandContext(ctx, "gzip", filepath.Join(gzipped, seg)).CombinedOutput(); err != nil {
			t.Fatalf("gzip: %v %s", err, out)
		}
	}

	type tc struct {
		name, snapshot, target, archive string
		sql                             string // an extra assertion: rows 2 and 3 as "present,present"
		wantCode                        int
		wantFail, wantMsg               string
	}
	cases := []tc{
		{name: "plain latest", snapshot: "plain", sql: "1,1"},
		{name: "tar latest", snapshot: "tar", sql: "1,1"},
		{name: "tar.gz latest", snapshot: "targz", sql: "1,1"},
		{name: "gzip archive", snapshot: "plain", archive: gzipped, sql: "1,1"},
		{name: "pitr between two commits", snapshot: "plain", target: w.midpoint.Format(time.RFC3339Nano), sql: "1,0"},
		{name: "immediate", snapshot: "tar", target: "immediate", sql: "0,0"},
		{name: "segment missing", snapshot: "plain", archive: gapped, wantCode: 1, wantFail: "wal-continuity", wantMsg: missing},
		{name: "target beyond the archive", snapshot: "plain", target: time.Now().Add(time.Hour).UTC().Format(time.RFC3339), wantCode: 1, wantFail: "recovery", wantMsg: "recovery ended before configured recovery target was reached"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := harness.TempDir(t)
			scratch := filepath.Join(base, "scratch")
			if err := os.MkdirAll(scratch, 0o755); err != nil {
				t.Fatal(err)
			}
			ar := archive
			if c.archive != "" {
				ar = c.archive
			}
			cfg := basebackupConfig(t, w, w.backups, ar, c.target, scratch)
			if c.sql != "" {
				two, three, _ := strings.Cut(c.sql, ",")
				b, _ := os.ReadFile(cfg)
				extra := fmt.Sprintf(`        - name: row-2
          query: SELECT count(*) FROM drill_rows WHERE id = 2
          expect: {equals: "%s"}
        - name: row-3
          query: SELECT count(*) FROM drill_rows WHERE id = 3
          expect: {equals: "%s"}
history:`, two, three)
				os.WriteFile(cfg, []byte(strings.Replace(string(b), "history:", extra, 1)), 0o600)
			}
			start := time.Now()
			r := runCLI(t, ctx, "drill", "--config", cfg, "--snapshot", c.snapshot, "--output", "json")
			d := parseDrill(t, r)
			t.Logf("drill %s: exit %d in %s", c.name, r.code, time.Since(start).Round(time.Millisecond))
			if r.code != c.wantCode {
				t.Fatalf("exit %d status %s (%s), want %d\nchecks: %+v\n%s", r.code, d.Status, d.Error, c.wantCode, d.Checks, r.stderr)
			}
			if c.wantCode == 0 {
				for _, name := range []string{"snapshot-integrity", "wal-continuity", "recovery", "recovery-target", "amcheck", "sql:row-1", "sql:row-2", "sql:row-3"} {
					if st, msg := d.check(name); st != "pass" {
						t.Errorf("%s = %q %q, want pass", name, st, msg)
					}
				}
				_, msg := d.check("recovery-target")
				t.Logf("recovery-target: %s", msg)
				if c.target == "" && (d.RecoveryPoint == nil || !strings.Contains(msg, "achieved RPO")) {
					t.Errorf("target latest records no achieved RPO: %s (recovery point %v)", msg, d.RecoveryPoint)
				}
			} else {
				var ev string
				for _, ch := range d.Checks {
					if ch.Name == c.wantFail {
						ev = fmt.Sprint(ch.Status, " ", ch.Message, ch.Evidence)
					}
				}
				t.Logf("%s: %s", c.wantFail, ev)
				if !strings.HasPrefix(ev, "fail") || !strings.Contains(ev, c.wantMsg) {
					t.Errorf("%s = %s; want a failure mentioning %q", c.wantFail, ev, c.wantMsg)
				}
			}
			if left := leftovers(t, scratch); len(left) != 0 {
				t.Errorf("scratch left behind: %v", left)
			}
			if procs := processesUnder(scratch); len(procs) != 0 {
				t.Errorf("processes left running: %v", procs)
			}
		})
	}
	if got := treeHash(t, archive); got != beforeArchive {
		t.Errorf("the WAL archive changed during the drills")
	}
	if got := treeHash(t, w.backups); got != beforeBackups {
		t.Errorf("the base backups changed during the drills")
	}
}
