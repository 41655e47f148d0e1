package integration

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/firedrill/firedrill/integration/harness"
	"github.com/firedrill/firedrill/restore/snapshot/csi"
	"github.com/firedrill/firedrill/restore/snapshot/take"
)

// MongoDB cannot be installed on firedrill's build machines (no Debian package, no server in
// the module proxy): this test runs only where FIREDRILL_TEST_MONGODB_URI names a disposable
// mongod. It checks that writes block under fsyncLock until the cut, and that every path
// unlocks (the lock outlives connections, so a leak would lock the server for good).
func TestMongoDBFsyncLockSnapshot(t *testing.T) {
	harness.Integration(t)
	uri := os.Getenv("FIREDRILL_TEST_MONGODB_URI")
	if uri == "" {
		// Not harness.Missing: no MongoDB can exist here, so CI must not fail for its absence.
		t.Skip("MongoDB: FIREDRILL_TEST_MONGODB_URI is not set (no server can be installed here); point it at a disposable mongod, e.g. mongodb://127.0.0.1:27017")
	}
	ctx := t.Context()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	coll := client.Database("firedrill_test").Collection("orders")
	writeWithin := func(d time.Duration) error {
		wctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		_, err := coll.InsertOne(wctx, bson.D{{Key: "at", Value: time.Now()}})
		return err
	}
	if err := writeWithin(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	cs := fake.NewSimpleClientset()
	startController(t, &fakeCSIController{client: cs, namespace: "db", cutDelay: 300 * time.Millisecond, readyDelay: 10 * time.Millisecond})
	o := take.Options{Target: "catalog", Engine: "mongodb", Mode: "online", DSN: uri, MaxFreeze: 10 * time.Second,
		CSI:     &csi.Driver{API: cs.SnapshotV1(), Namespace: "db", ClassName: "fast"},
		Volumes: []csi.PVC{{Role: csi.RoleData, Name: "mongo-data"}}}
	meta, err := take.Take(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("frozen %.3fs", meta.FrozenSeconds)
	if err := writeWithin(time.Second); err != nil {
		t.Fatalf("after the snapshot the server does not accept writes: %v", err)
	}
	// A freeze bound reached: unlocked anyway.
	o.MaxFreeze = 100 * time.Millisecond
	cs2 := fake.NewSimpleClientset()
	o.CSI = &csi.Driver{API: cs2.SnapshotV1(), Namespace: "db", ClassName: "fast"}
	if _, err := take.Take(ctx, o); err == nil {
		t.Fatal("a snapshot whose cut never came succeeded")
	}
	if err := writeWithin(time.Second); err != nil {
		t.Fatalf("after a timed-out freeze the server does not accept writes: %v", err)
	}
}
