package integration

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/firedrill/firedrill/integration/harness"
)

// Recovery that cannot complete (a WAL segment the backup needs is gone, or the backup_label
// is wrong) is a drill failure with PostgreSQL's own log lines as evidence.
func TestDrillRecoveryFailureIsEvidenced(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{DataChecksums: true, PgbenchScale: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cases := []struct {
		name   string
		break_ func(t *testing.T, snap string)
		want   string // in the evidence's server log lines
	}{
		{"missing WAL segment", func(t *testing.T, snap string) {
			segs, _ := filepath.Glob(filepath.Join(snap, "data", "pg_wal", "0000000*"))
			if len(segs) == 0 {
				t.Fatal("the snapshot has no WAL segment")
			}
			for _, s := range segs {
				if err := os.Remove(s); err != nil {
					t.Fatal(err)
				}
			}
		}, "checkpoint record"},
		{"bad backup_label", func(t *testing.T, snap string) {
			p := filepath.Join(snap, "files", "backup_label")
			b, _ := os.ReadFile(p)
			b = []byte(strings.Replace(string(b), "CHECKPOINT LOCATION: ", "CHECKPOINT LOCATION: F", 1))
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tg, cfg := newTarget(t, pg, "")
			id := snapshotID(t, ctx, cfg)
			tc.break_(t, filepath.Join(tg.repo, id))
			r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json")
			d := parseDrill(t, r)
			if r.code != 1 || d.Status != "fail" {
				t.Fatalf("exit %d status %s (%s), want 1/fail\n%s", r.code, d.Status, d.Error, r.stderr)
			}
			var found bool
			for _, c := range d.Checks {
				if c.Name != "recovery" {
					continue
				}
				found = true
				if c.Status != "fail" {
					t.Errorf("recovery = %s %q, want fail", c.Status, c.Message)
				}
				lines, _ := c.Evidence["serverLog"].([]any)
				joined := ""
				for _, l := range lines {
					joined += l.(string) + "\n"
				}
				if len(lines) == 0 || !strings.Contains(joined, "FATAL") && !strings.Contains(joined, "PANIC") {
					t.Errorf("recovery evidence has no FATAL/PANIC log line: %q", joined)
				}
				if tc.want != "" && !strings.Contains(joined, tc.want) {
					t.Errorf("recovery evidence does not mention %q: %q", tc.want, joined)
				}
			}
			if !found {
				t.Errorf("no recovery finding in %+v", d.Checks)
			}
			if left := leftovers(t, tg.scratch); len(left) != 0 {
				t.Errorf("scratch left behind: %v", left)
			}
			if procs := processesUnder(tg.scratch); len(procs) != 0 {
				t.Errorf("processes left running: %v", procs)
			}
		})
	}
}

// An RTO miss fails the drill, with the rto check naming the times.
func TestDrillRTOMissFails(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{PgbenchScale: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, cfg := newTarget(t, pg, "")
	// Objectives are set by writeConfig; tighten the RTO to something no restore meets.
	b, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(b), "rto: 10m", "rto: 1ms", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	snapshotID(t, ctx, cfg)
	r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json")
	d := parseDrill(t, r)
	if r.code != 1 || d.Status != "fail" || d.RTO.Met {
		t.Fatalf("exit %d status %s rto %+v, want 1/fail/missed", r.code, d.Status, d.RTO)
	}
	if st, msg := d.check("rto"); st != "fail" || !strings.Contains(msg, "beyond the RTO") {
		t.Errorf("rto check = %s %q", st, msg)
	}
	if failed := d.failed(); len(failed) != 1 {
		t.Errorf("failed checks %v, want only rto", failed)
	}
}

// --keep leaves a verified copy running and says how to reach it; the server runs as an
// unprivileged user (when firedrill is root) in its own network namespace.
func TestDrillKeep(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{PgbenchScale: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tg, cfg := newTarget(t, pg, "")
	snapshotID(t, ctx, cfg)
	r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json", "--keep")
	var res struct {
		Status  string `json:"status"`
		Runtime struct {
			RunAs           string `json:"runAs"`
			NetworkIsolated bool   `json:"networkIsolated"`
			Listen          string `json:"listen"`
		} `json:"runtime"`
		Kept struct {
			ScratchDir string `json:"scratchDir"`
			PID        int    `json:"pid"`
			Connect    string `json:"connect"`
		} `json:"kept"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 0 {
		t.Fatalf("exit %d: %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	t.Cleanup(func() {
		if res.Kept.PID > 0 {
			_ = syscall.Kill(-res.Kept.PID, syscall.SIGKILL)
		}
		_ = os.RemoveAll(res.Kept.ScratchDir)
	})
	if !strings.HasPrefix(res.Kept.ScratchDir, tg.scratch) || res.Kept.PID == 0 || res.Kept.Connect == "" {
		t.Fatalf("kept = %+v", res.Kept)
	}
	conn, err := pgx.Connect(ctx, res.Kept.Connect)
	if err != nil {
		t.Fatalf("connecting to the kept copy: %v", err)
	}
	var n int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pgbench_accounts").Scan(&n); err != nil || n != 100000 {
		t.Errorf("kept copy: %d accounts, %v", n, err)
	}
	var archive, conninfo, listen string
	if err := conn.QueryRow(ctx, "SELECT current_setting('archive_mode'), current_setting('primary_conninfo'), current_setting('listen_addresses')").Scan(&archive, &conninfo, &listen); err != nil {
		t.Fatal(err)
	}
	if archive != "off" || conninfo != "" || listen != "" {
		t.Errorf("throwaway settings: archive_mode=%q primary_conninfo=%q listen_addresses=%q", archive, conninfo, listen)
	}
	conn.Close(ctx)
	if os.Geteuid() == 0 {
		if res.Runtime.RunAs == "" || res.Runtime.RunAs == "root" || res.Runtime.RunAs == "(current user)" {
			t.Errorf("as root, the server ran as %q, want an unprivileged user", res.Runtime.RunAs)
		}
		if !res.Runtime.NetworkIsolated {
			t.Errorf("as root, the server was not network-isolated")
		}
		// The postmaster really is in another network namespace.
		self, _ := os.Readlink("/proc/self/ns/net")
		theirs, err := os.Readlink("/proc/" + itoa(res.Kept.PID) + "/ns/net")
		if err != nil || theirs == self {
			t.Errorf("postmaster network namespace %q (err %v), ours %q: want a different one", theirs, err, self)
		}
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// A scratch disk too small for the snapshot: the drill stops with an error that says which
// disk is full, exits 3, and leaves nothing on that disk. Needs root (it mounts a small tmpfs).
func TestDrillScratchDiskFull(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{PgbenchScale: 2})
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tg, cfg := newTarget(t, pg, "")
	tiny := filepath.Join(harness.TempDir(t), "tiny")
	if err := os.Mkdir(tiny, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", tiny).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", tiny).Run() })
	b, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(b), "scratchDir: "+tg.scratch, "scratchDir: "+tiny, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	snapshotID(t, ctx, cfg)
	r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json")
	d := parseDrill(t, r)
	if r.code != 3 || d.Status != "error" {
		t.Fatalf("exit %d status %s, want 3/error: %s", r.code, d.Status, d.Error)
	}
	if !strings.Contains(d.Error, "is full") || !strings.Contains(d.Error, tiny) {
		t.Errorf("error %q does not say that the disk holding %s is full", d.Error, tiny)
	}
	if left := leftovers(t, tiny); len(left) != 0 {
		t.Errorf("left on the full disk: %v", left)
	}
}

// A database with a tablespace outside the data directory: the snapshot carries the tablespace,
// the drill restores it into scratch (tablespace_map remapped), verifies it, and never writes to
// production's tablespace directory.
func TestDrillWithTablespace(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{DataChecksums: true, PgbenchScale: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	spc := filepath.Join(pg.Dir, "spc")
	if err := os.Mkdir(spc, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := pg.RunAs.Chown(spc); err != nil {
		t.Fatal(err)
	}
	if err := pg.Exec(ctx, "postgres", "CREATE TABLESPACE fast LOCATION '"+spc+"'"); err != nil {
		t.Fatal(err)
	}
	if err := pg.Exec(ctx, "postgres", `CREATE TABLE hot (id int PRIMARY KEY, note text) TABLESPACE fast;
		INSERT INTO hot SELECT i, repeat('x', 200) FROM generate_series(1, 20000) i;
		CREATE INDEX hot_note ON hot (note) TABLESPACE fast`); err != nil {
		t.Fatal(err)
	}
	_, cfg := newTarget(t, pg, `    checks:
      rowCounts:
        min:
          public.hot: 20000`)
	snapshotID(t, ctx, cfg)
	if err := pg.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	before := treeState(t, spc)
	r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json")
	d := parseDrill(t, r)
	if r.code != 0 || d.Status != "pass" {
		t.Fatalf("drill exit %d status %s failed %v: %s\n%s", r.code, d.Status, d.failed(), d.Error, r.stderr)
	}
	after := treeState(t, spc)
	if len(after) != len(before) {
		t.Errorf("production's tablespace directory changed: %d files before, %d after", len(before), len(after))
	}
	for p, s := range after {
		if before[p] != s {
			t.Errorf("production's tablespace file changed by the drill: %s", p)
		}
	}
	// The restored copy's tablespace lives in scratch, not at production's path.
	r = runCLI(t, ctx, "drill", "--config", cfg, "--output", "json", "--keep")
	var kept struct {
		Kept struct {
			ScratchDir string `json:"scratchDir"`
			PID        int    `json:"pid"`
			Connect    string `json:"connect"`
		} `json:"kept"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &kept); err != nil || r.code != 0 {
		t.Fatalf("drill --keep: exit %d %v\n%s", r.code, err, r.stderr)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-kept.Kept.PID, syscall.SIGKILL)
		_ = os.RemoveAll(kept.Kept.ScratchDir)
	})
	conn, err := pgx.Connect(ctx, kept.Kept.Connect)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var loc string
	var rows int64
	if err := conn.QueryRow(ctx, "SELECT pg_tablespace_location(oid), (SELECT count(*) FROM hot) FROM pg_tablespace WHERE spcname = 'fast'").Scan(&loc, &rows); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(loc, kept.Kept.ScratchDir) || rows != 20000 {
		t.Errorf("restored tablespace at %q with %d rows; want inside %s with 20000", loc, rows, kept.Kept.ScratchDir)
	}
}
