package integration

import (
	"bytes"
	"context"
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
	_ "github.com/firedrill/firedrill/restore/drill/builtin" // the mariadb engine drill
	mariadbdrill "github.com/firedrill/firedrill/restore/drill/engines/mariadb"
	"github.com/firedrill/firedrill/restore/runtime/docker"
	"github.com/firedrill/firedrill/restore/source/files"
)

// mariadbDump runs mariadb-dump of the shop database on m (credentials in an option file,
// never on the command line) and returns the SQL.
func mariadbDump(t *testing.T, m *harness.MariaDB, args ...string) []byte {
	t.Helper()
	tool, err := exec.LookPath("mariadb-dump")
	if err != nil {
		harness.Missing(t, "mariadb-dump", err.Error(), "apt-get install -y --no-install-recommends mariadb-client")
	}
	cnf := filepath.Join(harness.TempDir(t), "dump.cnf")
	opts := fmt.Sprintf("[client]\nuser=%s\npassword=%s\nhost=127.0.0.1\nport=%d\n", m.User, m.Password, m.Port)
	if err := os.WriteFile(cnf, []byte(opts), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), tool, append([]string{"--defaults-file=" + cnf, "--single-transaction"}, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mariadb-dump: %v\n%s", err, stderr.String())
	}
	return out
}

// mariadbShopChecks are the checks a drill of the shop database passes: CHECK TABLE, the row
// counts of its tables and the balance invariant.
func mariadbShopChecks() checks.Config {
	return checks.Config{
		RowCounts: &checks.RowCountConfig{Min: map[string]int64{"firedrill.orders": 3000, "firedrill.accounts": mariadbAccounts}},
		SQL: []checks.SQLAssertion{{Name: "balances", Database: "firedrill", Query: "SELECT SUM(balance) FROM accounts",
			Expect: checks.Expect{Equals: ptr(fmt.Sprint(mariadbTotal))}}},
	}
}

// TestDrillMariaDBDump drills mariadb-dump files firedrill did not take: the newest (gzipped,
// with its sha256sum sidecar) is decompressed into scratch, loaded into an empty mariadbd
// made by mariadb-install-db and started as a backup copy's is, and every check passes with
// the real row counts. A sidecar mismatch, a dump cut short, and a dump whose SQL does not
// load each fail the drill (exit 1), the first two before anything starts; nothing is left
// behind.
func TestDrillMariaDBDump(t *testing.T) {
	harness.Integration(t)
	for _, bin := range []string{"mariadb-install-db", "mariadb"} {
		if _, err := exec.LookPath(bin); err != nil {
			harness.Missing(t, bin, err.Error(), "apt-get install -y --no-install-recommends mariadb-server mariadb-client")
		}
	}
	m := harness.StartMariaDB(t)
	mariadbShop(t, m)
	sqlDump := mariadbDump(t, m, "firedrill") // one database, no --databases: no CREATE DATABASE in it
	backups := harness.TempDir(t)
	old := filepath.Join(backups, "shop-1.sql")
	if err := os.WriteFile(old, sqlDump, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(old, time.Now().Add(-time.Hour), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	newest := filepath.Join(backups, "shop-2.sql.gz")
	if err := os.WriteFile(newest, gzipOf(sqlDump), 0o600); err != nil {
		t.Fatal(err)
	}
	writeSidecar(t, newest, false)
	if err := os.WriteFile(filepath.Join(backups, "notes.txt"), []byte("not a dump"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := &files.Source{Target: "shop", Engine: "mariadb", Kind: files.KindMariaDBDump, Dir: backups}
	list, err := src.List(t.Context())
	if err != nil || len(list) != 2 || list[0].ID != "shop-2.sql.gz" || list[1].ID != "shop-1.sql" {
		t.Fatalf("List = %+v, %v: want shop-2.sql.gz, shop-1.sql", list, err)
	}
	if !strings.HasPrefix(list[0].EngineVersion, strings.SplitN(m.Version, "-", 2)[0]) || list[0].Mode != "logical" {
		t.Errorf("listed %+v: want the dumped server's version %s read from the header, mode logical", list[0], m.Version)
	}

	drillOne := func(t *testing.T, id string) *reports.DrillResult {
		t.Helper()
		o := mariadbDrillOptions(t, mariadbShopChecks())
		o.SnapshotID = id
		o.Runtime.ProductionPaths = []string{m.DataDir, backups}
		res, err := (&drill.Drill{Source: src}).Run(t.Context(), o)
		if err != nil {
			t.Fatal(err)
		}
		logFindings(t, res)
		assertNoLeftovers(t, o.Runtime.ScratchDir)
		return res
	}

	t.Run("newest, gzipped with its sidecar, drills clean", func(t *testing.T) {
		res := drillOne(t, "")
		if res.Status != reports.StatusPass || res.Snapshot == nil || res.Snapshot.ID != "shop-2.sql.gz" {
			t.Fatalf("status %s (%s) of %+v, want pass of shop-2.sql.gz", res.Status, res.Error, res.Snapshot)
		}
		for _, name := range []string{drill.SnapshotIntegrityName, files.DumpFormatName, mariadbdrill.LoadName, drill.RecoveryName,
			checks.CheckTableName, checks.RowCountsName, "sql:balances"} {
			if f := finding(res, name); f == nil || f.Status != checks.Pass {
				t.Errorf("finding %s: %+v, want pass", name, f)
			}
		}
		if f := finding(res, drill.SnapshotIntegrityName); f == nil || !strings.Contains(f.Message, "matches its sidecar") {
			t.Errorf("integrity %+v: want the sidecar compared", f)
		}
		if f := finding(res, checks.RowCountsName); f == nil || !strings.Contains(fmt.Sprint(f.Evidence), "firedrill.orders") {
			t.Errorf("row counts %+v: want the dumped tables counted", f)
		}
	})

	t.Run("on the docker runtime", func(t *testing.T) {
		harness.RequireDocker(t, harness.EnginesImage)
		o := mariadbDrillOptions(t, mariadbShopChecks())
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
			t.Fatalf("status %s (%s) on %+v, want pass on docker; load %+v", res.Status, res.Error, res.Runtime, finding(res, mariadbdrill.LoadName))
		}
		if f := finding(res, mariadbdrill.LoadName); f == nil || f.Status != checks.Pass {
			t.Errorf("load %+v, want pass", f)
		}
		assertNoLeftovers(t, o.Runtime.ScratchDir)
		if left := drillContainers(t, t.Context(), dockerClient(t), o.Runtime.ScratchDir); len(left) > 0 {
			t.Errorf("containers left: %v", left)
		}
	})

	t.Run("interrupted while loading leaves nothing", func(t *testing.T) {
		o := mariadbDrillOptions(t, mariadbShopChecks())
		cctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		p := &cancelOn{match: "with the mariadb client", cancel: cancel}
		res, err := (&drill.Drill{Source: src, Progress: p}).Run(cctx, o)
		if err != nil {
			t.Fatal(err)
		}
		if !p.fired.Load() {
			t.Fatalf("the drill never loaded the dump (status %s: %s)", res.Status, res.Error)
		}
		if !res.Interrupted || res.Status != reports.StatusError {
			t.Errorf("status %s interrupted %v, want an interrupted error", res.Status, res.Interrupted)
		}
		assertNoLeftovers(t, o.Runtime.ScratchDir)
		if pids := processesUnder(o.Runtime.ScratchDir); len(pids) > 0 {
			t.Errorf("processes left running on the scratch directory: %v", pids)
		}
	})

	t.Run("plain SQL of every database drills clean", func(t *testing.T) {
		all := filepath.Join(backups, "all-1.sql")
		if err := os.WriteFile(all, mariadbDump(t, m, "--all-databases"), 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(all)
		res := drillOne(t, "all-1.sql")
		if res.Status != reports.StatusPass {
			t.Fatalf("status %s (%s), want pass", res.Status, res.Error)
		}
	})

	t.Run("sidecar mismatch fails and starts nothing", func(t *testing.T) {
		writeSidecar(t, newest, true)
		defer writeSidecar(t, newest, false)
		res := drillOne(t, "shop-2.sql.gz")
		if f := finding(res, drill.SnapshotIntegrityName); res.Status != reports.StatusFail || f == nil || f.Status != checks.Fail || !strings.Contains(f.Message, "sidecar says") {
			t.Errorf("status %s, integrity %+v: want a failed sidecar comparison", res.Status, f)
		}
		if f := finding(res, mariadbdrill.LoadName); f != nil {
			t.Errorf("the dump was loaded after its sidecar disagreed: %+v", f)
		}
	})

	t.Run("a dump cut short fails before anything starts", func(t *testing.T) {
		cut := filepath.Join(backups, "cut-1.sql")
		if err := os.WriteFile(cut, sqlDump[:len(sqlDump)*2/3], 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(cut)
		res := drillOne(t, "cut-1.sql")
		if f := finding(res, files.DumpFormatName); res.Status != reports.StatusFail || f == nil || f.Status != checks.Fail || !strings.Contains(f.Message, "truncated") {
			t.Errorf("status %s, dump-format %+v: want a fail saying it is truncated", res.Status, f)
		}
		if f := finding(res, mariadbdrill.LoadName); f != nil {
			t.Errorf("a truncated dump was loaded: %+v", f)
		}
	})

	t.Run("a dump whose SQL does not load fails the load", func(t *testing.T) {
		i := bytes.LastIndex(sqlDump, []byte("INSERT INTO `orders`"))
		if i < 0 {
			t.Fatal("no INSERT INTO `orders` in the dump")
		}
		broken := append(append(append([]byte{}, sqlDump[:i]...), "INSERT INTOO"...), sqlDump[i+len("INSERT INTO"):]...)
		bad := filepath.Join(backups, "bad-1.sql.gz")
		if err := os.WriteFile(bad, gzipOf(broken), 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(bad)
		res := drillOne(t, "bad-1.sql.gz")
		f := finding(res, mariadbdrill.LoadName)
		if res.Status != reports.StatusFail || f == nil || f.Status != checks.Fail || !strings.Contains(f.Message, "ERROR 1064") {
			t.Errorf("status %s, load %+v: want a fail with the client's ERROR 1064 line", res.Status, f)
		}
		if f := finding(res, checks.RowCountsName); f != nil {
			t.Errorf("checks ran on a dump that did not load: %+v", f)
		}
	})
}
