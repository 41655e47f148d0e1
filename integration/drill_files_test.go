package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/integration/harness"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/drill"
	_ "github.com/firedrill/firedrill/restore/drill/builtin" // the redis and mariadb engine drills
	"github.com/firedrill/firedrill/restore/engine/mariadb"
	"github.com/firedrill/firedrill/restore/runtime/docker"
	"github.com/firedrill/firedrill/restore/source/files"
)

// writeSidecar writes sha256sum's line for path next to it (path.sha256), or a wrong one.
func writeSidecar(t *testing.T, path string, wrong bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if wrong {
		sum = sha256.Sum256(append(b, 0))
	}
	line := hex.EncodeToString(sum[:]) + "  " + filepath.Base(path) + "\n"
	if err := os.WriteFile(path+".sha256", []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
}

// copyFile copies a file another tool would have archived, keeping it private.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDrillFilesRedis drills RDB files firedrill did not take: a real server's BGSAVE output
// copied into a backups directory (as a cron job would) with its sha256sum sidecar drills
// clean, the newest chosen; a sidecar that disagrees fails the drill before anything starts.
func TestDrillFilesRedis(t *testing.T) {
	f := startRedisFixture(t)
	ctx := t.Context()
	if err := f.c.Set(ctx, "last-write", time.Now().UnixMilli(), 0).Err(); err != nil {
		t.Fatal(err)
	}
	// BGSAVE marks the save in progress before it answers: "not in progress" afterwards is done.
	if err := f.c.BgSave(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		info, err := f.c.Info(ctx, "persistence").Result()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(info, "rdb_bgsave_in_progress:0") {
			if !strings.Contains(info, "rdb_last_bgsave_status:ok") {
				t.Fatalf("BGSAVE failed:\n%s", info)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("BGSAVE did not finish within a minute:\n%s", info)
		}
	}
	backups := harness.TempDir(t)
	// An older, broken RDB the drill must pass over for the newest.
	old := filepath.Join(backups, "dump-20260101T000000.rdb")
	if err := os.WriteFile(old, []byte("not an rdb"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(old, time.Now().Add(-time.Hour), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	name := "dump-" + time.Now().UTC().Format("20060102T150405") + ".rdb"
	rdb := filepath.Join(backups, name)
	copyFile(t, filepath.Join(f.r.Dir, "dump.rdb"), rdb)
	writeSidecar(t, rdb, false)
	src := &files.Source{Target: "sessions", Engine: "redis", Kind: files.KindRDB, Dir: backups, Pattern: "dump-*.rdb"}

	list, err := src.List(ctx)
	if err != nil || len(list) != 2 || list[0].ID != name {
		t.Fatalf("List = %+v, %v: want %s first", list, err, name)
	}

	t.Run("newest with its sidecar drills clean", func(t *testing.T) {
		scratch := harness.TempDir(t)
		o := redisDrillOptions(t, scratch, redisChecks())
		o.Runtime.ProductionPaths = []string{f.r.Dir}
		res, err := (&drill.Drill{Source: src}).Run(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		logRedisResult(t, res)
		if res.Status != reports.StatusPass {
			t.Fatalf("drill status %s (%s), want pass", res.Status, res.Error)
		}
		if res.Snapshot == nil || res.Snapshot.ID != name || res.Snapshot.Driver != files.Driver {
			t.Errorf("drilled %+v, want %s from the files source", res.Snapshot, name)
		}
		for _, n := range []string{drill.SnapshotIntegrityName, "redis-check-rdb", drill.RecoveryName, checks.KeysName, "redis:other-db", checks.FreshnessName} {
			if fd := findingOf(res, n); fd == nil || fd.Status != checks.Pass {
				t.Errorf("finding %s = %+v, want pass", n, fd)
			}
		}
		if fd := findingOf(res, drill.SnapshotIntegrityName); fd == nil || !strings.Contains(fd.Message, "matches its sidecar") {
			t.Errorf("integrity finding %+v: want the sidecar compared", fd)
		}
		assertNoLeftovers(t, scratch)
	})

	t.Run("on the docker runtime", func(t *testing.T) {
		harness.RequireDocker(t, harness.EnginesImage)
		scratch := harness.TempDir(t)
		o := redisDrillOptions(t, scratch, redisChecks())
		o.Runtime.Kind = docker.Name
		o.Runtime.Docker.Image = harness.EnginesImage
		d := &drill.Drill{Source: src, Runtimes: map[string]drill.RuntimeFactory{docker.Name: docker.Factory}}
		res, err := d.Run(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		logRedisResult(t, res)
		if res.Status != reports.StatusPass || res.Runtime == nil || res.Runtime.Kind != docker.Name {
			t.Fatalf("drill status %s (%s) on %+v, want pass on docker", res.Status, res.Error, res.Runtime)
		}
		assertNoLeftovers(t, scratch)
		if left := drillContainers(t, ctx, dockerClient(t), scratch); len(left) > 0 {
			t.Errorf("containers left: %v", left)
		}
	})

	t.Run("sidecar mismatch fails and starts nothing", func(t *testing.T) {
		writeSidecar(t, rdb, true)
		defer writeSidecar(t, rdb, false)
		scratch := harness.TempDir(t)
		res, err := (&drill.Drill{Source: src}).Run(ctx, redisDrillOptions(t, scratch, redisChecks()))
		if err != nil {
			t.Fatal(err)
		}
		logRedisResult(t, res)
		if res.Status != reports.StatusFail {
			t.Fatalf("drill status %s, want fail", res.Status)
		}
		if fd := findingOf(res, drill.SnapshotIntegrityName); fd == nil || fd.Status != checks.Fail || !strings.Contains(fd.Message, "sidecar says") {
			t.Errorf("integrity finding %+v, want a sidecar mismatch", fd)
		}
		for _, n := range []string{"redis-check-rdb", drill.RecoveryName} {
			if fd := findingOf(res, n); fd != nil {
				t.Errorf("finding %s present (%s): the damaged copy was started", n, fd.Message)
			}
		}
		assertNoLeftovers(t, scratch)
	})
}

// TestDrillFilesMariaDB drills a mariadb-backup full backup firedrill did not take: the tool
// run by hand into a backups directory (credentials in an option file, never on the command
// line), then drilled from the files source: prepared, started, checked.
func TestDrillFilesMariaDB(t *testing.T) {
	harness.Integration(t)
	tool, err := mariadb.FindBackupTool()
	if err != nil {
		harness.Missing(t, "mariadb-backup", err.Error(), "run 'make setup' as root, or apt-get install -y --no-install-recommends mariadb-backup")
	}
	m := harness.StartMariaDB(t)
	mariadbShop(t, m)
	backups := harness.TempDir(t)
	cnfDir := harness.TempDir(t)
	cnf := filepath.Join(cnfDir, "backup.cnf")
	opts := fmt.Sprintf("[client]\nuser=%s\npassword=%s\nhost=127.0.0.1\nport=%d\n", m.User, m.Password, m.Port)
	if err := os.WriteFile(cnf, []byte(opts), 0o600); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(backups, "full-1")
	start := time.Now()
	cmd := exec.CommandContext(t.Context(), tool, "--defaults-file="+cnf, "--backup", "--target-dir="+target, "--datadir="+m.DataDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mariadb-backup --backup: %v\n%s", err, tailOf(string(out), 15))
	}
	t.Logf("mariadb-backup --backup took %s", time.Since(start).Round(time.Millisecond))
	// An incremental backup beside it is passed over, not drilled.
	inc := filepath.Join(backups, "inc-2")
	if err := os.MkdirAll(inc, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(inc, "xtrabackup_checkpoints"), []byte("backup_type = incremental\nfrom_lsn = 1\nto_lsn = 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	src := &files.Source{Target: "shop", Engine: "mariadb", Kind: files.KindMariaDBBackup, Dir: backups}
	list, err := src.List(t.Context())
	if err != nil || len(list) != 1 || list[0].ID != "full-1" {
		t.Fatalf("List = %+v, %v: want full-1 only", list, err)
	}
	t.Logf("listed %s: %d bytes, server %s, attributes %v", list[0].ID, list[0].SizeBytes, list[0].EngineVersion, list[0].Attributes)

	c := checks.Config{
		RowCounts: &checks.RowCountConfig{Min: map[string]int64{"firedrill.orders": 3000, "firedrill.accounts": mariadbAccounts}},
		SQL: []checks.SQLAssertion{{Name: "balances", Database: "firedrill", Query: "SELECT SUM(balance) FROM accounts",
			Expect: checks.Expect{Equals: ptr(fmt.Sprint(mariadbTotal))}}},
	}
	o := mariadbDrillOptions(t, c)
	res, err := (&drill.Drill{Source: src}).Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	logFindings(t, res)
	if res.Status != reports.StatusPass {
		t.Fatalf("status %s (%s), want pass", res.Status, res.Error)
	}
	for _, name := range []string{drill.SnapshotIntegrityName, "prepare", drill.RecoveryName, checks.CheckTableName, checks.RowCountsName, "sql:balances"} {
		if f := finding(res, name); f == nil || f.Status != checks.Pass {
			t.Errorf("finding %s: %+v, want pass", name, f)
		}
	}
	if f := finding(res, drill.SnapshotIntegrityName); f == nil || !strings.Contains(f.Message, "no checksum sidecar") {
		t.Errorf("integrity finding %+v: want size and readability only", f)
	}
	if typ := strings.TrimSpace(checkpointsType(t, target)); typ != "full-backuped" {
		t.Errorf("the backup in the directory was changed (backup_type %q): the drill must prepare its own copy", typ)
	}
	assertNoLeftovers(t, o.Runtime.ScratchDir)

	t.Run("on the docker runtime", func(t *testing.T) {
		harness.RequireDocker(t, harness.EnginesImage)
		o := mariadbDrillOptions(t, c)
		o.Runtime.Kind = docker.Name
		o.Runtime.Docker.Image = harness.EnginesImage
		o.Runtime.ProductionPaths = []string{m.DataDir, backups}
		d := &drill.Drill{Source: src, Runtimes: map[string]drill.RuntimeFactory{docker.Name: docker.Factory}}
		res, err := d.Run(t.Context(), o)
		if err != nil {
			t.Fatal(err)
		}
		logFindings(t, res)
		if res.Status != reports.StatusPass || res.Runtime == nil || res.Runtime.Kind != docker.Name {
			t.Fatalf("status %s (%s) on %+v, want pass on docker", res.Status, res.Error, res.Runtime)
		}
		if f := finding(res, "prepare"); f == nil || f.Status != checks.Pass {
			t.Errorf("prepare finding %+v, want pass", f)
		}
		assertNoLeftovers(t, o.Runtime.ScratchDir)
		if left := drillContainers(t, t.Context(), dockerClient(t), o.Runtime.ScratchDir); len(left) > 0 {
			t.Errorf("containers left: %v", left)
		}
	})

	// sha256sum's own output for the backup's files, as a backup script would write it.
	sums := exec.CommandContext(t.Context(), "sh", "-c", "cd \"$1\" && find . -type f -exec sha256sum {} + > \"$1.sha256\"", "sh", target)
	if out, err := sums.CombinedOutput(); err != nil {
		t.Fatalf("sha256sum: %v: %s", err, out)
	}
	t.Run("directory sidecar verified", func(t *testing.T) {
		o := mariadbDrillOptions(t, c)
		res, err := (&drill.Drill{Source: src}).Run(t.Context(), o)
		if err != nil {
			t.Fatal(err)
		}
		logFindings(t, res)
		if f := finding(res, drill.SnapshotIntegrityName); res.Status != reports.StatusPass || f == nil || !strings.Contains(f.Message, "match the backup's checksum sidecar") {
			t.Errorf("status %s, integrity %+v: want pass with the sidecar compared", res.Status, f)
		}
		assertNoLeftovers(t, o.Runtime.ScratchDir)
	})
	t.Run("a file changed after the sidecar fails before prepare", func(t *testing.T) {
		cnfFile := filepath.Join(target, "backup-my.cnf")
		b, err := os.ReadFile(cnfFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cnfFile, append(b, "# edited\n"...), 0o600); err != nil {
			t.Fatal(err)
		}
		o := mariadbDrillOptions(t, c)
		res, err := (&drill.Drill{Source: src}).Run(t.Context(), o)
		if err != nil {
			t.Fatal(err)
		}
		logFindings(t, res)
		f := finding(res, drill.SnapshotIntegrityName)
		if res.Status != reports.StatusFail || f == nil || f.Status != checks.Fail || !strings.Contains(fmt.Sprint(f.Evidence["mismatches"]), "backup-my.cnf") {
			t.Errorf("status %s, integrity %+v: want a fail naming backup-my.cnf", res.Status, f)
		}
		if p := finding(res, "prepare"); p != nil {
			t.Errorf("prepare ran on a copy that does not match its sidecar: %+v", p)
		}
		assertNoLeftovers(t, o.Runtime.ScratchDir)
	})
}

func checkpointsType(t *testing.T, dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "xtrabackup_checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && strings.TrimSpace(k) == "backup_type" {
			return v
		}
	}
	return ""
}

func tailOf(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
