package integration

import (
	"context"
	"crypto/sha256"
	"database/sql"
	endian "encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/integration/harness"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/drill"
	_ "github.com/firedrill/firedrill/restore/drill/builtin" // the mariadb engine drill
	"github.com/firedrill/firedrill/restore/engine/mariadb"
	"github.com/firedrill/firedrill/restore/runtime/docker"
	rtlocal "github.com/firedrill/firedrill/restore/runtime/local"
	"github.com/firedrill/firedrill/restore/snapshot/local"
	"github.com/firedrill/firedrill/restore/snapshot/take"
)

// mariadbAccounts is the balance all accounts hold together: transfers keep it.
const mariadbAccounts, mariadbTotal = 100, 100000

// mariadbShop fills m with orders (rows enough for several InnoDB pages) and accounts whose
// balances add up to mariadbTotal, over root's socket session.
func mariadbShop(t *testing.T, m *harness.MariaDB) *sql.DB {
	t.Helper()
	db := rootDB(t, m) // creates orders
	ctx := t.Context()
	for _, q := range []string{
		"ALTER TABLE orders ADD COLUMN at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)",
		"CREATE TABLE accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB",
		"INSERT INTO accounts SELECT seq, 1000 FROM seq_1_to_100",
		"INSERT INTO orders (note) SELECT CONCAT('order-', seq, '-', REPEAT('x', 40)) FROM seq_1_to_3000",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return db
}

// writeLoad transfers between accounts and inserts orders until stop is closed.
func writeLoad(ctx context.Context, db *sql.DB, stop <-chan struct{}, done *atomic.Int64) error {
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		a, b, amt := rand.IntN(mariadbAccounts)+1, rand.IntN(mariadbAccounts)+1, rand.IntN(50)-25
		// Rows are locked in id order, so two writers never deadlock.
		a, b = min(a, b), max(a, b)
		_, err1 := tx.ExecContext(ctx, "UPDATE accounts SET balance = balance - ? WHERE id = ?", amt, a)
		_, err2 := tx.ExecContext(ctx, "UPDATE accounts SET balance = balance + ? WHERE id = ?", amt, b)
		_, err3 := tx.ExecContext(ctx, "INSERT INTO orders (note) VALUES ('under load')")
		if err := firstErr(err1, err2, err3); err != nil {
			_ = tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		done.Add(1)
	}
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func mariadbDrillOptions(t *testing.T, c checks.Config) drill.Options {
	c.Parallel = 2
	if c.CheckTable == nil {
		c.CheckTable = ptr(true) // as the policy's defaults for a MariaDB target
	}
	return drill.Options{Target: "shop", Engine: "mariadb", RTO: 10 * time.Minute, RPO: time.Hour, Checks: c,
		Runtime: drill.RuntimeOptions{ScratchDir: harness.TempDir(t), Listen: "socket", IsolateNetwork: true, StartTimeout: 2 * time.Minute}}
}

func logFindings(t *testing.T, res *reports.DrillResult) {
	t.Helper()
	for _, f := range res.Checks {
		t.Logf("%-16s %-5s %s", f.Check, f.Status, f.Message)
	}
	for _, n := range res.Notes {
		t.Logf("note: %s", n)
	}
	if res.Error != "" {
		t.Logf("error: %s", res.Error)
	}
}

func finding(res *reports.DrillResult, name string) *checks.Finding {
	for i := range res.Checks {
		if res.Checks[i].Check == name {
			return &res.Checks[i]
		}
	}
	return nil
}

// A local snapshot of MariaDB is mariadb-backup --backup into the repository, taken while
// transactions commit; its drill prepares the copy, starts mariadbd on it in the sandbox, and
// every check passes (CHECK TABLE, exact row counts, the balance invariant, freshness). A
// page damaged in the repository (manifest fixed to match) fails the drill; a row count
// minimum above the real count fails it; a cancelled drill leaves no scratch directory and
// no mariadbd behind.
func TestDrillMariaDB(t *testing.T) {
	harness.Integration(t)
	if _, err := mariadb.FindBackupTool(); err != nil {
		harness.Missing(t, "mariadb-backup", err.Error(), "run 'make setup' as root, or apt-get install -y --no-install-recommends mariadb-backup")
	}
	m := harness.StartMariaDB(t)
	db := mariadbShop(t, m)
	repo := local.New(harness.TempDir(t)+"/repo", 2)
	ctx := t.Context()

	// (a) under write load.
	stop := make(chan struct{})
	var commits atomic.Int64
	var wg sync.WaitGroup
	loadErr := make(chan error, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := writeLoad(ctx, db, stop, &commits); err != nil {
				loadErr <- err
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	before := commits.Load()
	meta, err := take.Take(ctx, take.Options{Target: "shop", Engine: "mariadb", Mode: "online",
		DSN: m.DSN, DataDir: m.DataDir, Repository: repo, MaxFreeze: 10 * time.Second})
	during := commits.Load() - before
	close(stop)
	wg.Wait()
	close(loadErr)
	for err := range loadErr {
		t.Fatalf("write load: %v", err)
	}
	if err != nil {
		t.Fatalf("while taking a local snapshot of MariaDB: %v", err)
	}
	t.Logf("snapshot %s: %d files, %d bytes, %.2fs; %d transactions committed while it was taken", meta.ID, meta.Files, meta.SizeBytes, meta.FrozenSeconds, during)
	if during == 0 {
		t.Errorf("no transaction committed while the snapshot was taken: it blocked writes")
	}
	if meta.Attributes[mariadb.AttrBinlogFile] == "" || meta.Attributes[mariadb.AttrBinlogPosition] == "" || meta.Attributes[mariadb.AttrGTIDBinlogPos] == "" {
		t.Errorf("binlog position not recorded: %v", meta.Attributes)
	}
	if _, err := os.Stat(filepath.Join(repo.Path(meta.ID), "data", "xtrabackup_checkpoints")); err != nil {
		t.Errorf("the snapshot is not mariadb-backup's: %v", err)
	}

	d := &drill.Drill{Source: drill.Repository(repo)}
	full := checks.Config{
		RowCounts: &checks.RowCountConfig{Min: map[string]int64{"firedrill.orders": 3000, "firedrill.accounts": mariadbAccounts}},
		SQL: []checks.SQLAssertion{{Name: "balances", Database: "firedrill", Query: "SELECT SUM(balance) FROM accounts",
			Expect: checks.Expect{Equals: ptr(fmt.Sprint(mariadbTotal))}}},
		Freshness: &checks.FreshnessConfig{Query: "SELECT MAX(at) FROM orders", Database: "firedrill"},
	}
	t.Run("under load drills clean", func(t *testing.T) {
		res, err := d.Run(ctx, mariadbDrillOptions(t, full))
		if err != nil {
			t.Fatal(err)
		}
		logFindings(t, res)
		if res.Status != reports.StatusPass {
			t.Fatalf("status %s, want pass", res.Status)
		}
		for _, name := range []string{"prepare", drill.RecoveryName, rtlocal.IsolationName, checks.CheckTableName, checks.RowCountsName, "sql:balances", checks.FreshnessName} {
			if f := finding(res, name); f == nil || f.Status != checks.Pass {
				t.Errorf("finding %s: %+v, want pass", name, f)
			}
		}
		rec := finding(res, drill.RecoveryName)
		want := meta.Attributes[mariadb.AttrBinlogFile] + ":" + meta.Attributes[mariadb.AttrBinlogPosition]
		if rec == nil || rec.Evidence["snapshotBinlogPosition"] != want || !strings.Contains(rec.Message, want) {
			t.Errorf("recovery finding does not name the snapshot's binlog position %s: %+v", want, rec)
		}
		if f := finding(res, checks.FreshnessName); f != nil {
			if _, ok := f.Evidence[checks.EvidenceRecoveryPoint].(time.Time); !ok {
				t.Errorf("freshness recovery point %T, want time.Time", f.Evidence[checks.EvidenceRecoveryPoint])
			}
		}
	})

	t.Run("row count below the minimum fails", func(t *testing.T) {
		res, err := d.Run(ctx, mariadbDrillOptions(t, checks.Config{RowCounts: &checks.RowCountConfig{Min: map[string]int64{"firedrill.accounts": mariadbAccounts + 1}}}))
		if err != nil {
			t.Fatal(err)
		}
		logFindings(t, res)
		f := finding(res, checks.RowCountsName)
		if res.Status != reports.StatusFail || f == nil || f.Status != checks.Fail || !strings.Contains(f.Message, "firedrill.accounts: 100 rows, expected at least 101") {
			t.Fatalf("status %s, row counts %+v; want fail on firedrill.accounts", res.Status, f)
		}
	})

	t.Run("cancelled drill leaves nothing", func(t *testing.T) {
		o := mariadbDrillOptions(t, checks.Config{})
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		p := &cancelOn{match: "waiting for mariadbd", cancel: cancel}
		res, err := (&drill.Drill{Source: drill.Repository(repo), Progress: p}).Run(cctx, o)
		if err != nil {
			t.Fatal(err)
		}
		if !p.fired.Load() {
			t.Fatalf("the drill never waited for mariadbd (status %s: %s)", res.Status, res.Error)
		}
		if !res.Interrupted || res.Status != reports.StatusError {
			t.Errorf("status %s interrupted %v, want an interrupted error", res.Status, res.Interrupted)
		}
		left, _ := filepath.Glob(filepath.Join(o.Runtime.ScratchDir, "*", "*"))
		var dirs []string
		for _, l := range left {
			if fi, err := os.Stat(l); err == nil && fi.IsDir() {
				dirs = append(dirs, l)
			}
		}
		if len(dirs) > 0 {
			t.Errorf("scratch directories left: %v", dirs)
		}
		if pids := processesUnder(o.Runtime.ScratchDir); len(pids) > 0 {
			t.Errorf("processes left running on the scratch directory: %v", pids)
		}
	})

	t.Run("damaged redo log fails prepare", func(t *testing.T) {
		id := takeMariaDB(t, m, repo)
		// The log's header and first checkpoint block: --prepare cannot find where to start.
		damageFile(t, repo.Path(id), "data/ib_logfile0", 0, 8192)
		o := mariadbDrillOptions(t, checks.Config{})
		o.SnapshotID = id
		res, err := d.Run(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		logFindings(t, res)
		f := finding(res, "prepare")
		if res.Status != reports.StatusFail || f == nil || f.Status != checks.Fail || f.Evidence["output"] == nil {
			t.Fatalf("status %s, prepare %+v; want a failed prepare with the tool's output", res.Status, f)
		}
		if finding(res, drill.RecoveryName) != nil {
			t.Errorf("a server was started on a copy that could not be prepared")
		}
	})

	t.Run("damaged page fails", func(t *testing.T) {
		// Pages InnoDB has not written since its last checkpoint travel in the redo log, not
		// in the copied file: checkpoint first, so the table's pages are in its file.
		checkpoint(t, db)
		id := takeMariaDB(t, m, repo)
		// mariadb-backup stores a tablespace rebuilt since the server started (ALTER TABLE) as
		// .new, which --prepare renames.
		rel := "data/firedrill/orders.ibd"
		if _, err := os.Stat(filepath.Join(repo.Path(id), "data", "firedrill", "orders.new")); err == nil {
			rel = "data/firedrill/orders.new"
		}
		damageIbd(t, repo.Path(id), rel)
		o := mariadbDrillOptions(t, checks.Config{})
		o.SnapshotID = id
		res, err := d.Run(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		logFindings(t, res)
		if res.Status != reports.StatusFail {
			t.Fatalf("status %s, want fail", res.Status)
		}
		if f := finding(res, drill.SnapshotIntegrityName); f != nil && f.Status == checks.Fail {
			t.Errorf("the manifest was fixed, yet the snapshot's integrity failed: %s", f.Message)
		}
		failed := false
		for _, name := range []string{"prepare", drill.RecoveryName, checks.CheckTableName, checks.RowCountsName} {
			if f := finding(res, name); f != nil && f.Status == checks.Fail {
				failed = true
			}
		}
		if !failed {
			t.Errorf("neither prepare, recovery, check-table nor row-counts failed")
		}
	})
}

// damageFile overwrites size bytes at off in rel of a snapshot and fixes the manifest.
func damageFile(t *testing.T, snap, rel string, off, size int) {
	t.Helper()
	path := filepath.Join(snap, filepath.FromSlash(rel))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < off+size {
		t.Fatalf("%s has %d bytes, fewer than %d", rel, len(b), off+size)
	}
	for i := off; i < off+size; i++ {
		b[i] ^= 0xa5
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	fixManifest(t, snap, rel, b)
}

// TestDrillMariaDBDocker drills a local MariaDB snapshot with mariadb-backup --prepare and the
// throwaway mariadbd in containers of the engines image (Debian's mariadb-server and
// mariadb-backup): the same checks pass, and no container is left.
func TestDrillMariaDBDocker(t *testing.T) {
	harness.Integration(t)
	if _, err := mariadb.FindBackupTool(); err != nil {
		harness.Missing(t, "mariadb-backup", err.Error(), "run 'make setup' as root, or apt-get install -y --no-install-recommends mariadb-backup")
	}
	harness.RequireDocker(t, harness.EnginesImage)
	m := harness.StartMariaDB(t)
	mariadbShop(t, m)
	repo := local.New(harness.TempDir(t)+"/repo", 2)
	takeMariaDB(t, m, repo)
	o := mariadbDrillOptions(t, checks.Config{
		RowCounts: &checks.RowCountConfig{Min: map[string]int64{"firedrill.orders": 3000}},
		SQL: []checks.SQLAssertion{{Name: "balances", Database: "firedrill", Query: "SELECT SUM(balance) FROM accounts",
			Expect: checks.Expect{Equals: ptr(fmt.Sprint(mariadbTotal))}}},
	})
	o.Runtime.Kind = docker.Name
	o.Runtime.Docker.Image = harness.EnginesImage
	o.Runtime.ProductionPaths = []string{m.DataDir}
	d := &drill.Drill{Source: drill.Repository(repo), Runtimes: map[string]drill.RuntimeFactory{docker.Name: docker.Factory}}
	res, err := d.Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	logFindings(t, res)
	if res.Status != reports.StatusPass {
		t.Fatalf("status %s (%s), want pass", res.Status, res.Error)
	}
	for _, name := range []string{"prepare", drill.RecoveryName, rtlocal.IsolationName, checks.CheckTableName, checks.RowCountsName, "sql:balances"} {
		if f := finding(res, name); f == nil || f.Status != checks.Pass {
			t.Errorf("finding %s: %+v, want pass", name, f)
		}
	}
	if res.Runtime == nil || res.Runtime.Kind != docker.Name {
		t.Errorf("runtime %+v, want docker", res.Runtime)
	}
	if left := drillContainers(t, t.Context(), dockerClient(t), o.Runtime.ScratchDir); len(left) > 0 {
		t.Errorf("containers left: %v", left)
	}
}

// takeMariaDB takes a local snapshot (mariadb-backup into the repository) of m.
func takeMariaDB(t *testing.T, m *harness.MariaDB, repo *local.Repository) string {
	t.Helper()
	meta, err := take.Take(t.Context(), take.Options{Target: "shop", Engine: "mariadb", Mode: "online",
		DSN: m.DSN, DataDir: m.DataDir, Repository: repo, MaxFreeze: 10 * time.Second})
	if err != nil {
		t.Fatalf("while taking a local snapshot of MariaDB: %v", err)
	}
	return meta.ID
}

// damageIbd overwrites bytes in the middle of an InnoDB page of rel in a snapshot and fixes the
// manifest and the metadata's manifest checksum: damage the manifest cannot see, as a disk
// that returns wrong data under a correct checksum file would.
func damageIbd(t *testing.T, snap, rel string) {
	t.Helper()
	path := filepath.Join(snap, filepath.FromSlash(rel))
	b, err := os.ReadFile(path)
	if err != nil {
		entries, _ := os.ReadDir(filepath.Dir(path))
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("%v (the directory holds %v)", err, names)
	}
	// A leaf page of the clustered index (FIL_PAGE_INDEX, PAGE_LEVEL 0) in the middle of the
	// table: a page every full scan reads.
	const page = 16384
	var leaves []int
	for p := 3; (p+1)*page <= len(b); p++ {
		pg := b[p*page : (p+1)*page]
		if endian.BigEndian.Uint16(pg[24:]) == 17855 && endian.BigEndian.Uint16(pg[38+26:]) == 0 && endian.BigEndian.Uint16(pg[38+16:]) > 10 {
			leaves = append(leaves, p)
		}
	}
	if len(leaves) < 3 {
		types := map[uint16]int{}
		for p := 0; (p+1)*page <= len(b); p++ {
			types[endian.BigEndian.Uint16(b[p*page+24:])]++
		}
		t.Fatalf("%s (%d bytes) has %d leaf pages, too few to damage one in the middle (page types %v)", rel, len(b), len(leaves), types)
	}
	p := leaves[len(leaves)/2]
	for i := p*page + 4000; i < p*page+4400; i++ {
		b[i] ^= 0x5a
	}
	t.Logf("damaged page %d of %s (of %d leaf pages)", p, rel, len(leaves))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	fixManifest(t, snap, rel, b)
}

// fixManifest records b as rel's content in the snapshot's manifest, and the manifest's new
// checksum in its metadata: damage the manifest cannot see.
func fixManifest(t *testing.T, snap, rel string, b []byte) {
	t.Helper()
	sum := sha256.Sum256(b)
	mpath := filepath.Join(snap, "manifest.sha256")
	mb, err := os.ReadFile(mpath)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimRight(string(mb), "\n"), "\n") {
		if strings.HasSuffix(l, "  "+rel) {
			l = hex.EncodeToString(sum[:]) + "  " + rel
		}
		out = append(out, l)
	}
	manifest := strings.Join(out, "\n") + "\n"
	if err := os.WriteFile(mpath, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	msum := sha256.Sum256([]byte(manifest))
	metaPath := filepath.Join(snap, "meta.json")
	var meta map[string]any
	jb, err := os.ReadFile(metaPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(jb, &meta); err != nil {
		t.Fatal(err)
	}
	meta["manifestSha256"] = hex.EncodeToString(msum[:])
	jb, _ = json.MarshalIndent(meta, "", "  ")
	if err := os.WriteFile(metaPath, jb, 0o600); err != nil {
		t.Fatal(err)
	}
}

// cancelOn cancels the drill when a status message contains match.
type cancelOn struct {
	match  string
	cancel context.CancelFunc
	fired  atomic.Bool
}

func (c *cancelOn) Phase(string) {}

func (c *cancelOn) Status(msg string) {
	if strings.Contains(msg, c.match) && c.fired.CompareAndSwap(false, true) {
		c.cancel()
	}
}

// checkpoint makes InnoDB write every dirty page and checkpoint, and waits until it has.
func checkpoint(t *testing.T, db *sql.DB) {
	t.Helper()
	ctx := t.Context()
	for _, q := range []string{"SET GLOBAL innodb_max_dirty_pages_pct_lwm = 0", "SET GLOBAL innodb_max_dirty_pages_pct = 0"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	status := func() (lsn, ckpt uint64) {
		var typ, name, st string
		if err := db.QueryRowContext(ctx, "SHOW ENGINE INNODB STATUS").Scan(&typ, &name, &st); err != nil {
			t.Fatal(err)
		}
		fmt.Sscan(statusField(st, "Log sequence number"), &lsn)
		fmt.Sscan(statusField(st, "Last checkpoint at"), &ckpt)
		return lsn, ckpt
	}
	// Every page dirty at target is written by the time a checkpoint passes it.
	target, _ := status()
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, ckpt := status()
		if ckpt >= target {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("InnoDB did not checkpoint past LSN %d within 60s (checkpoint %d)", target, ckpt)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func statusField(status, name string) string {
	for _, l := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(l, name); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
