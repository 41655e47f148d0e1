package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/integration/harness"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/drill"
	_ "github.com/firedrill/firedrill/restore/drill/builtin" // the redis and mariadb engine drills
	mariadbdrill "github.com/firedrill/firedrill/restore/drill/engines/mariadb"
	"github.com/firedrill/firedrill/restore/engine/mariadb"
	"github.com/firedrill/firedrill/restore/source/files"
)

// redisBGSave has the fixture's server write its RDB file and waits until it has.
func redisBGSave(t *testing.T, f *redisFixture) []byte {
	t.Helper()
	ctx := t.Context()
	if err := f.c.Set(ctx, "last-write", time.Now().UnixMilli(), 0).Err(); err != nil {
		t.Fatal(err)
	}
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
	b, err := os.ReadFile(filepath.Join(f.r.Dir, "dump.rdb"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestDrillFilesS3 drills backups another tool put in S3 (versitygw): a Redis RDB object and a
// gzipped mariadb-dump object are downloaded into scratch, compared with the store's SHA-256
// claims (sha256 metadata, a .sha256 sidecar object) and drilled clean; a mariadb-backup
// directory uploaded as objects under <prefix>full-1/ with its full-1.sha256 sidecar object is
// downloaded, held to the sidecar, prepared and drilled clean; a claim that disagrees fails
// the drill before anything starts; nothing is left in scratch.
func TestDrillFilesS3(t *testing.T) {
	harness.Integration(t)
	gw := harness.StartS3(t)
	gw.CreateBucket(t, "backups", harness.BucketOptions{})
	c := gw.Client(t)
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	put := func(t *testing.T, key string, body []byte, meta map[string]string) {
		t.Helper()
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("backups"), Key: aws.String(key), Body: bytes.NewReader(body), Metadata: meta}); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	loc := func(prefix string) *files.S3Location {
		return &files.S3Location{Bucket: "backups", Prefix: prefix, Where: "s3://backups/" + prefix + " at " + gw.Endpoint,
			Client: func(context.Context) (files.S3API, error) { return c, nil }}
	}

	t.Run("rdb with its sidecar object drills clean", func(t *testing.T) {
		f := startRedisFixture(t)
		rdb := redisBGSave(t, f)
		put(t, "redis/old/dump-1.rdb", []byte("not an rdb"), nil)
		gw.SetModTime(t, "backups", "redis/old/dump-1.rdb", time.Now().Add(-time.Hour))
		put(t, "redis/dump-2.rdb", rdb, nil)
		put(t, "redis/dump-2.rdb.sha256", []byte(sha256Hex(rdb)+"  dump-2.rdb\n"), nil)
		src := &files.Source{Target: "sessions", Engine: "redis", Kind: files.KindRDB, S3: loc("redis/"), Pattern: "dump-*.rdb"}
		list, err := src.List(ctx)
		if err != nil || len(list) != 2 || list[0].ID != "dump-2.rdb" || list[1].ID != "old/dump-1.rdb" {
			t.Fatalf("List = %+v, %v: want dump-2.rdb, old/dump-1.rdb", list, err)
		}
		scratch := harness.TempDir(t)
		o := redisDrillOptions(t, scratch, redisChecks())
		o.Runtime.ProductionPaths = []string{f.r.Dir}
		res, err := (&drill.Drill{Source: src}).Run(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		logRedisResult(t, res)
		if res.Status != reports.StatusPass || res.Snapshot == nil || res.Snapshot.ID != "dump-2.rdb" {
			t.Fatalf("status %s (%s) of %+v, want pass of dump-2.rdb", res.Status, res.Error, res.Snapshot)
		}
		for _, n := range []string{drill.SnapshotIntegrityName, "redis-check-rdb", drill.RecoveryName, checks.KeysName} {
			if fd := findingOf(res, n); fd == nil || fd.Status != checks.Pass {
				t.Errorf("finding %s = %+v, want pass", n, fd)
			}
		}
		if fd := findingOf(res, drill.SnapshotIntegrityName); fd == nil || !strings.Contains(fd.Message, "matches the sidecar object dump-2.rdb.sha256") {
			t.Errorf("integrity %+v: want the sidecar object compared", fd)
		}
		assertNoLeftovers(t, scratch)
	})

	t.Run("mariadb-dump", func(t *testing.T) {
		for _, bin := range []string{"mariadb-install-db", "mariadb"} {
			if _, err := exec.LookPath(bin); err != nil {
				harness.Missing(t, bin, err.Error(), "apt-get install -y --no-install-recommends mariadb-server mariadb-client")
			}
		}
		m := harness.StartMariaDB(t)
		mariadbShop(t, m)
		gz := gzipOf(mariadbDump(t, m, "--databases", "firedrill"))
		put(t, "mariadb/shop-1.sql.gz", gz, map[string]string{"sha256": sha256Hex(gz)})
		src := &files.Source{Target: "shop", Engine: "mariadb", Kind: files.KindMariaDBDump, S3: loc("mariadb/")}

		t.Run("gzipped with its sha256 metadata drills clean", func(t *testing.T) {
			o := mariadbDrillOptions(t, mariadbShopChecks())
			o.Runtime.ProductionPaths = []string{m.DataDir}
			res, err := (&drill.Drill{Source: src}).Run(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			logFindings(t, res)
			if res.Status != reports.StatusPass {
				t.Fatalf("status %s (%s), want pass", res.Status, res.Error)
			}
			for _, n := range []string{drill.SnapshotIntegrityName, files.DumpFormatName, mariadbdrill.LoadName, checks.CheckTableName, checks.RowCountsName, "sql:balances"} {
				if f := finding(res, n); f == nil || f.Status != checks.Pass {
					t.Errorf("finding %s: %+v, want pass", n, f)
				}
			}
			if f := finding(res, drill.SnapshotIntegrityName); f == nil || !strings.Contains(f.Message, "matches the object's sha256 metadata") {
				t.Errorf("integrity %+v: want the metadata compared", f)
			}
			assertNoLeftovers(t, o.Runtime.ScratchDir)
		})
		// The same through the CLI and its configuration: kind mariadb-dump read from a
		// location of kind s3; exit 0 for a clean drill, 1 once the sidecar object disagrees.
		t.Setenv("FD_TEST_S3_AK", gw.AccessKey)
		t.Setenv("FD_TEST_S3_SK", gw.SecretKey)
		base := harness.TempDir(t)
		scratch := filepath.Join(base, "scratch")
		if err := os.Mkdir(scratch, 0o755); err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(base, "firedrill.yaml")
		if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`locations:
  - name: backups-s3
    kind: s3
    s3:
      endpoint: %s
      region: us-east-1
      bucket: backups
      prefix: mariadb/
      pathStyle: true
      maxAttempts: 1
      credentials: {accessKeyIdEnv: FD_TEST_S3_AK, secretAccessKeyEnv: FD_TEST_S3_SK}
targets:
  - name: shop
    engine: mariadb
    connection: {dsn: %q}
    restore:
      source: {kind: mariadb-dump, location: backups-s3, pattern: "shop-*.sql.gz"}
      local: {scratchDir: %s}
    objectives: {rto: 10m, rpo: 1h}
    checks:
      rowCounts:
        min: {firedrill.orders: 3000}
    audit:
      skip: [copies-3-2-1]
history: {dir: %s}
`, gw.Endpoint, m.DSN, scratch, filepath.Join(base, "history"))), 0o600); err != nil {
			t.Fatal(err)
		}
		cliDrill := func(t *testing.T, want int) {
			t.Helper()
			r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json")
			d := parseDrill(t, r)
			if r.code != want {
				t.Fatalf("drill: exit %d (%s), want %d\nchecks: %+v\n%s", r.code, d.Error, want, d.Checks, r.stderr)
			}
			if strings.Contains(r.stdout+r.stderr, gw.SecretKey) {
				t.Errorf("the output holds the secret key")
			}
			if left := leftovers(t, scratch); len(left) != 0 {
				t.Errorf("scratch left behind: %v", left)
			}
		}
		t.Run("through the CLI: exit 0", func(t *testing.T) {
			snaps := runCLI(t, ctx, "snapshots", "--config", cfg)
			if snaps.code != 0 || !strings.Contains(snaps.stdout, "shop-1.sql.gz") {
				t.Errorf("snapshots: exit %d\n%s%s", snaps.code, snaps.stdout, snaps.stderr)
			}
			cliDrill(t, 0)
			a := runCLI(t, ctx, "audit", "--config", cfg, "--output", "json")
			if !strings.Contains(a.stdout, `"backup-age"`) || a.code != 0 {
				t.Errorf("audit: exit %d, want 0 with a backup-age of the dumps in S3\n%s%s", a.code, a.stdout, a.stderr)
			}
		})

		t.Run("a sidecar object that disagrees fails and loads nothing", func(t *testing.T) {
			put(t, "mariadb/shop-1.sql.gz.sha256", []byte(strings.Repeat("ab", 32)+"  shop-1.sql.gz\n"), nil)
			o := mariadbDrillOptions(t, mariadbShopChecks())
			res, err := (&drill.Drill{Source: src}).Run(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			logFindings(t, res)
			if f := finding(res, drill.SnapshotIntegrityName); res.Status != reports.StatusFail || f == nil || f.Status != checks.Fail || !strings.Contains(f.Message, "sidecar object shop-1.sql.gz.sha256 says") {
				t.Errorf("status %s, integrity %+v: want a fail naming the sidecar object", res.Status, f)
			}
			if f := finding(res, mariadbdrill.LoadName); f != nil {
				t.Errorf("loaded after a checksum mismatch: %+v", f)
			}
			assertNoLeftovers(t, o.Runtime.ScratchDir)
			cliDrill(t, 1)
		})
	})

	t.Run("mariadb-backup directory of objects", func(t *testing.T) {
		tool, err := mariadb.FindBackupTool()
		if err != nil {
			harness.Missing(t, "mariadb-backup", err.Error(), "apt-get install -y --no-install-recommends mariadb-backup")
		}
		m := harness.StartMariaDB(t)
		mariadbShop(t, m)
		cnf := filepath.Join(harness.TempDir(t), "backup.cnf")
		if err := os.WriteFile(cnf, []byte(fmt.Sprintf("[client]\nuser=%s\npassword=%s\nhost=127.0.0.1\nport=%d\n", m.User, m.Password, m.Port)), 0o600); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(harness.TempDir(t), "full-1")
		if out, err := exec.CommandContext(ctx, tool, "--defaults-file="+cnf, "--backup", "--target-dir="+dir, "--datadir="+m.DataDir).CombinedOutput(); err != nil {
			t.Fatalf("mariadb-backup --backup: %v\n%s", err, tailOf(string(out), 15))
		}
		// Uploaded as a backup script would: every file under <prefix>full-1/, and sha256sum's
		// output for them (run inside the directory) as full-1.sha256.
		var sums strings.Builder
		err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			put(t, "mb/full-1/"+filepath.ToSlash(rel), b, nil)
			fmt.Fprintf(&sums, "%s  ./%s\n", sha256Hex(b), filepath.ToSlash(rel))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		put(t, "mb/full-1.sha256", []byte(sums.String()), nil)
		put(t, "mb/inc-2/xtrabackup_checkpoints", []byte("backup_type = incremental\nfrom_lsn = 1\nto_lsn = 2\n"), nil)
		src := &files.Source{Target: "shop", Engine: "mariadb", Kind: files.KindMariaDBBackup, S3: loc("mb/")}
		list, err := src.List(ctx)
		if err != nil || len(list) != 1 || list[0].ID != "full-1" || list[0].EngineVersion == "" {
			t.Fatalf("List = %+v, %v: want full-1 only, with its server version", list, err)
		}
		o := mariadbDrillOptions(t, mariadbShopChecks())
		o.Runtime.ProductionPaths = []string{m.DataDir}
		res, err := (&drill.Drill{Source: src}).Run(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		logFindings(t, res)
		if res.Status != reports.StatusPass {
			t.Fatalf("status %s (%s), want pass", res.Status, res.Error)
		}
		for _, n := range []string{drill.SnapshotIntegrityName, mariadbdrill.PrepareName, drill.RecoveryName, checks.CheckTableName, checks.RowCountsName, "sql:balances"} {
			if f := finding(res, n); f == nil || f.Status != checks.Pass {
				t.Errorf("finding %s: %+v, want pass", n, f)
			}
		}
		if f := finding(res, drill.SnapshotIntegrityName); f == nil || !strings.Contains(f.Message, "match the backup's checksum sidecar") {
			t.Errorf("integrity %+v: want the sidecar object compared", f)
		}
		assertNoLeftovers(t, o.Runtime.ScratchDir)

		t.Run("an object changed after the sidecar fails before prepare", func(t *testing.T) {
			put(t, "mb/full-1/backup-my.cnf", []byte("# edited\n"), nil)
			o := mariadbDrillOptions(t, mariadbShopChecks())
			res, err := (&drill.Drill{Source: src}).Run(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			logFindings(t, res)
			f := finding(res, drill.SnapshotIntegrityName)
			if res.Status != reports.StatusFail || f == nil || f.Status != checks.Fail || !strings.Contains(fmt.Sprint(f.Evidence["mismatches"]), "backup-my.cnf") {
				t.Errorf("status %s, integrity %+v: want a fail naming backup-my.cnf", res.Status, f)
			}
			if p := finding(res, mariadbdrill.PrepareName); p != nil {
				t.Errorf("prepare ran on a copy that does not match its sidecar: %+v", p)
			}
			assertNoLeftovers(t, o.Runtime.ScratchDir)
		})
	})
}
