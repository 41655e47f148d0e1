package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/integration/harness"
	"github.com/firedrill/firedrill/restore/engine/postgres"
)

// A failover in the archive: the base backup is restored into a second server that recovers
// from the archive, promotes to timeline 2 and archives its history file and segments into the
// same archive, while the old primary goes on writing timeline 1 (an abandoned branch). A drill
// at target latest follows timeline 2 and finds the promoted server's row and not the old
// primary's; without 00000002.history it fails wal-continuity naming the broken timeline.
func TestDrillBaseBackupTimeline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	w := startWALPrimary(t, ctx, map[string][]string{"plain": {"-Fp"}})
	archive := w.pg.ArchiveDir

	// The promoted server: a copy of the base backup recovering from the archive.
	dir := harness.TempDir(t)
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	if out, err := exec.CommandContext(ctx, "cp", "-a", filepath.Join(w.backups, "plain"), data).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	os.Remove(filepath.Join(data, "backup_manifest"))
	os.MkdirAll(sock, 0o700)
	os.WriteFile(filepath.Join(data, "recovery.signal"), nil, 0o600)
	for _, p := range []string{data, sock} {
		if err := w.pg.RunAs.ChownTree(p); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(data, 0o700)
	s := &postgres.Server{BinDir: w.pg.BinDir, DataDir: data, SocketDir: sock, Port: 5432, RunAs: w.pg.RunAs, LogFile: filepath.Join(dir, "promoted.log"),
		Settings: map[string]string{"restore_command": fmt.Sprintf("cp %s/%%f %%p", archive), "archive_mode": "on",
			"archive_command": fmt.Sprintf("test ! -f %[1]s/%%f && cp %%p %[1]s/%%f", archive), "recovery_target_timeline": "latest"}}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(10 * time.Second)
	if err := s.WaitReady(ctx, "postgres", nil); err != nil {
		t.Fatalf("the promoted server did not come up: %v\n%s", err, s.LogTail(20))
	}
	promoted := &harness.Postgres{Instance: &postgres.Instance{Server: s, Superuser: "postgres"}}
	if err := promoted.Exec(ctx, "postgres", "INSERT INTO drill_rows (id, note) VALUES (4, 'on timeline 2')"); err != nil {
		t.Fatal(err)
	}
	(&walPrimary{pg: promoted}).switchAndWait(t, ctx)
	// The old primary writes on: timeline 1 past the fork is not replayed.
	if err := w.pg.Exec(ctx, "postgres", "INSERT INTO drill_rows (id, note) VALUES (5, 'abandoned branch')"); err != nil {
		t.Fatal(err)
	}
	w.switchAndWait(t, ctx)
	if _, err := os.Stat(filepath.Join(archive, "00000002.history")); err != nil {
		t.Fatalf("the promoted server did not archive its history file: %v", err)
	}
	before := treeHash(t, archive)

	noHistory := filepath.Join(harness.TempDir(t), "archive")
	copyDir(t, archive, noHistory, func(n string) bool { return n == "00000002.history" })
	for _, c := range []struct {
		name, archive string
		code          int
	}{{"follows timeline 2", archive, 0}, {"history file missing", noHistory, 1}} {
		t.Run(c.name, func(t *testing.T) {
			scratch := filepath.Join(harness.TempDir(t), "scratch")
			os.MkdirAll(scratch, 0o755)
			cfg := basebackupConfig(t, w, w.backups, c.archive, "", scratch)
			b, _ := os.ReadFile(cfg)
			extra := `        - name: row-4
          query: SELECT count(*) FROM drill_rows WHERE id IN (3, 4)
          expect: {equals: "2"}
        - name: row-5
          query: SELECT count(*) FROM drill_rows WHERE id = 5
          expect: {equals: "0"}
history:`
			os.WriteFile(cfg, []byte(strings.Replace(string(b), "history:", extra, 1)), 0o600)
			r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json")
			d := parseDrill(t, r)
			st, msg := d.check("wal-continuity")
			t.Logf("exit %d; wal-continuity %s: %s", r.code, st, msg)
			if r.code != c.code {
				t.Fatalf("exit %d (%s), want %d\nchecks: %+v", r.code, d.Error, c.code, d.Checks)
			}
			if c.code == 0 {
				for _, name := range []string{"recovery", "recovery-target", "sql:row-4", "sql:row-5"} {
					if st, msg := d.check(name); st != "pass" {
						t.Errorf("%s = %s %s, want pass", name, st, msg)
					}
				}
				if !strings.Contains(msg, "timeline 2") {
					t.Errorf("wal-continuity does not say it followed timeline 2: %s", msg)
				}
			} else if st != "fail" || !strings.Contains(msg, "00000002.history") {
				t.Errorf("wal-continuity = %s %s, want a failure naming 00000002.history", st, msg)
			}
			if left := leftovers(t, scratch); len(left) != 0 {
				t.Errorf("scratch left behind: %v", left)
			}
		})
	}
	if treeHash(t, archive) != before {
		t.Error("the WAL archive changed during the drills")
	}
}
