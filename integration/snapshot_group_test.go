package integration

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/firedrill/firedrill/integration/harness"
	"github.com/firedrill/firedrill/restore/snapshot/local"
	"github.com/firedrill/firedrill/restore/snapshot/take"
)

// A group of PostgreSQL (local), Redis (local) and MariaDB (csi) under one batch id; then the
// same group with MariaDB's snapshot refused: every member is thawed and the batch deleted.
func TestGroupSnapshotRealMembers(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{PgbenchScale: 1})
	r := harness.StartRedis(t)
	m := harness.StartMariaDB(t)
	ctx := t.Context()
	root := rootDB(t, m)
	pgRepo := local.New(harness.TempDir(t)+"/pg", 4)
	redisRepo := local.New(filepath.Join(t.TempDir(), "redis"), 2)
	members := func(cs *fake.Clientset) []take.Options {
		md := mariadbOptions(m, cs)
		return []take.Options{
			{Target: "orders", Engine: "postgres", Mode: "online", DSN: pg.DSN("postgres"), DataDir: pg.DataDir, Repository: pgRepo, Fast: true},
			{Target: "sessions", Engine: "redis", Mode: "online", DSN: "redis://" + r.Addr, DataDir: r.Dir, Repository: redisRepo, MaxFreeze: 10 * time.Second},
			md,
		}
	}

	cs := fake.NewSimpleClientset()
	startController(t, &fakeCSIController{client: cs, namespace: "db", cutDelay: 50 * time.Millisecond, readyDelay: 10 * time.Millisecond})
	res, err := take.TakeGroup(ctx, "shop", members(cs), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Snapshots) != 3 {
		t.Fatalf("%d snapshots", len(res.Snapshots))
	}
	for _, s := range res.Snapshots {
		if s.BatchID != res.BatchID {
			t.Errorf("%s: batch %q, want %q", s.Target, s.BatchID, res.BatchID)
		}
		t.Logf("%-8s %-5s %s frozen %.3fs", s.Target, s.Driver, s.ID, s.FrozenSeconds)
	}
	t.Logf("group frozen %.3fs in all (max %.0fs)", res.FrozenSeconds, res.MaxFreezeSeconds)

	boom := errors.New("admission webhook denied the request")
	for i := range 5 {
		cs := fake.NewSimpleClientset()
		startController(t, &fakeCSIController{client: cs, namespace: "db", cutDelay: 20 * time.Millisecond})
		cs.PrependReactor("create", "volumesnapshots", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, boom })
		_, err := take.TakeGroup(ctx, "shop", members(cs), 30*time.Second)
		if !errors.Is(err, take.ErrGroupFailed) || !errors.Is(err, boom) {
			t.Fatalf("run %d: err = %v", i, err)
		}
		if err := writeWithin(ctx, root, time.Second); err != nil {
			t.Fatalf("run %d: MariaDB does not accept writes within 1 s: %v", i, err)
		}
		for name, repo := range map[string]*local.Repository{"orders": pgRepo, "sessions": redisRepo} {
			snaps, _ := repo.List(ctx)
			for _, s := range snaps {
				if s.BatchID != res.BatchID {
					t.Errorf("run %d: %s kept %s of the failed batch %s", i, name, s.ID, s.BatchID)
				}
			}
		}
		if l, _ := cs.SnapshotV1().VolumeSnapshots("db").List(ctx, metav1.ListOptions{}); len(l.Items) != 0 {
			t.Errorf("run %d: %d VolumeSnapshots left", i, len(l.Items))
		}
	}
}
