package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/integration/harness"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/drill"
	_ "github.com/firedrill/firedrill/restore/drill/builtin" // the mongodb engine drill
	mongodrill "github.com/firedrill/firedrill/restore/drill/engines/mongodb"
	"github.com/firedrill/firedrill/restore/snapshot/local"
	"github.com/firedrill/firedrill/restore/snapshot/take"
	"github.com/firedrill/firedrill/restore/source/files"
)

// TestDrillMongoDB drills a real mongod's local fsyncLock snapshot: validate({full: true}) on
// every collection, document counts held to a minimum, a count assertion; a minimum above the
// data fails. No MongoDB server can be installed from this machine's package sources: the test
// needs a mongod binary on PATH and skips, saying so, without one.
func TestDrillMongoDB(t *testing.T) {
	harness.Integration(t)
	mongod, err := exec.LookPath("mongod")
	if err != nil {
		t.Skip("MongoDB: no mongod on PATH (no server can be installed from this machine's package sources); install MongoDB's server to run this test")
	}
	dir := harness.TempDir(t)
	dbPath := filepath.Join(dir, "db")
	if err := os.MkdirAll(dbPath, 0o700); err != nil {
		t.Fatal(err)
	}
	port := harness.FreePort(t)
	cmd := exec.Command(mongod, "--dbpath", dbPath, "--port", fmt.Sprint(port), "--bind_ip", "127.0.0.1", "--nounixsocket")
	log, err := os.Create(filepath.Join(dir, "mongod.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	dsn := fmt.Sprintf("mongodb://127.0.0.1:%d/?directConnection=true", port)
	cl, err := mongo.Connect(options.Client().ApplyURI(dsn))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Disconnect(context.Background())
	ctx := t.Context()
	deadline := time.Now().Add(30 * time.Second)
	for cl.Ping(ctx, nil) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("mongod did not answer on port %d", port)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var docs []any
	for i := range 2000 {
		docs = append(docs, bson.D{{Key: "n", Value: i}, {Key: "status", Value: []string{"open", "paid"}[i%2]}})
	}
	if _, err := cl.Database("shop").Collection("orders").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	repo := local.New(filepath.Join(dir, "repo"), 2)
	if _, err := take.Take(ctx, take.Options{Target: "catalog", Engine: "mongodb", Mode: "online", DSN: dsn, DataDir: dbPath, Repository: repo, MaxFreeze: 30 * time.Second}); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	for _, tc := range []struct {
		name string
		min  int64
		want reports.Status
	}{{"drills clean", 2000, reports.StatusPass}, {"a minimum above the data fails", 2001, reports.StatusFail}} {
		t.Run(tc.name, func(t *testing.T) {
			scratch := harness.TempDir(t)
			off := false
			res, err := (&drill.Drill{Source: drill.Repository(repo)}).Run(ctx, drill.Options{Target: "catalog", Engine: "mongodb", Driver: "local",
				RTO: 10 * time.Minute, RPO: time.Hour,
				Checks: checks.Config{Amcheck: checks.AmcheckOn(false), Checksums: &off, Parallel: 2,
					RowCounts: &checks.RowCountConfig{Min: map[string]int64{"shop.orders": tc.min}},
					Mongo:     []checks.MongoAssertion{{Name: "paid", Database: "shop", Collection: "orders", Filter: `{"status": "paid"}`, Expect: checks.Expect{Equals: ptr("1000")}}}},
				Runtime: drill.RuntimeOptions{ScratchDir: scratch, IsolateNetwork: true, StartTimeout: 2 * time.Minute}})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range res.Checks {
				t.Logf("%-16s %-5s %s", f.Check, f.Status, f.Message)
			}
			if res.Status != tc.want {
				t.Fatalf("status %s (%s), want %s", res.Status, res.Error, tc.want)
			}
			if f := findingOf(res, checks.ValidateName); f == nil || f.Status != checks.Pass {
				t.Errorf("validate %+v, want pass", f)
			}
			assertNoLeftovers(t, scratch)
		})
	}

	// A mongodump archive of the same database (kind mongodump): loaded into an empty
	// throwaway with mongorestore, then the same checks; an archive cut short fails the load.
	t.Run("mongodump archive", func(t *testing.T) {
		mongodump, err := exec.LookPath("mongodump")
		if err != nil {
			t.Skip("MongoDB: no mongodump/mongorestore on PATH (MongoDB Database Tools); install them to run this test")
		}
		if _, err := exec.LookPath("mongorestore"); err != nil {
			t.Skip("MongoDB: no mongorestore on PATH (MongoDB Database Tools); install them to run this test")
		}
		backups := filepath.Join(dir, "dumps")
		if err := os.MkdirAll(backups, 0o755); err != nil {
			t.Fatal(err)
		}
		archive := filepath.Join(backups, "shop.archive")
		if out, err := exec.Command(mongodump, "--uri", dsn, "--db", "shop", "--archive="+archive).CombinedOutput(); err != nil {
			t.Fatalf("mongodump: %v\n%s", err, out)
		}
		src := &files.Source{Target: "catalog", Engine: "mongodb", Kind: files.KindMongoDump, Dir: backups}
		drillArchive := func(t *testing.T) *reports.DrillResult {
			off := false
			scratch := harness.TempDir(t)
			res, err := (&drill.Drill{Source: src}).Run(ctx, drill.Options{Target: "catalog", Engine: "mongodb", Driver: files.Driver,
				RTO: 10 * time.Minute, RPO: 24 * time.Hour,
				Checks: checks.Config{Amcheck: checks.AmcheckOn(false), Checksums: &off, Parallel: 2,
					RowCounts: &checks.RowCountConfig{Min: map[string]int64{"shop.orders": 2000}}},
				Runtime: drill.RuntimeOptions{ScratchDir: scratch, IsolateNetwork: true, StartTimeout: 2 * time.Minute, ProductionPaths: []string{dbPath, backups}}})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range res.Checks {
				t.Logf("%-16s %-5s %s", f.Check, f.Status, f.Message)
			}
			assertNoLeftovers(t, scratch)
			return res
		}
		res := drillArchive(t)
		if f := findingOf(res, mongodrill.LoadName); res.Status != reports.StatusPass || f == nil || f.Status != checks.Pass {
			t.Fatalf("status %s (%s), load %+v: want pass", res.Status, res.Error, f)
		}
		fi, err := os.Stat(archive)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(archive, fi.Size()*2/3); err != nil {
			t.Fatal(err)
		}
		res = drillArchive(t)
		if f := findingOf(res, mongodrill.LoadName); res.Status != reports.StatusFail || f == nil || f.Status != checks.Fail {
			t.Errorf("an archive cut short: status %s, load %+v; want a failed load", res.Status, f)
		}
	})
}
