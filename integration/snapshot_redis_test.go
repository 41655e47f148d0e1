package integration

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	goredis "github.com/redis/go-redis/v9"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/firedrill/firedrill/integration/harness"
	enginered "github.com/firedrill/firedrill/restore/engine/redis"
	"github.com/firedrill/firedrill/restore/snapshot/csi"
	"github.com/firedrill/firedrill/restore/snapshot/local"
	"github.com/firedrill/firedrill/restore/snapshot/take"
)

// The snapshot's RDB holds a key written just before the freeze: a second server started on
// the snapshot's copy serves it.
func TestRedisSnapshotHoldsKeyWrittenBeforeFreeze(t *testing.T) {
	harness.Integration(t)
	r := harness.StartRedis(t)
	ctx := t.Context()
	c := goredis.NewClient(&goredis.Options{Addr: r.Addr})
	t.Cleanup(func() { c.Close() })
	repo := local.New(filepath.Join(t.TempDir(), "repo"), 2)
	o := take.Options{Target: "sessions", Engine: "redis", Mode: "online", DSN: "redis://" + r.Addr + "/0", DataDir: r.Dir, Repository: repo, MaxFreeze: 10 * time.Second}
	for i := range 3 {
		// A first save makes LASTSAVE recent: the next one must still be told apart.
		key, val := "session:"+time.Now().Format(time.RFC3339Nano), "snapshot "+string(rune('a'+i))
		if err := c.Set(ctx, key, val, 0).Err(); err != nil {
			t.Fatal(err)
		}
		meta, err := take.Take(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		if meta.Files != 1 || meta.Attributes[enginered.AttrLastSave] == "" {
			t.Errorf("meta: %d files, attributes %v", meta.Files, meta.Attributes)
		}
		t.Logf("snapshot %s: %d bytes, BGSAVE %ss", meta.ID, meta.SizeBytes, meta.Attributes[enginered.AttrBGSaveSeconds])
		copyDir := filepath.Join(repo.Path(meta.ID), "data")
		if _, err := os.Stat(filepath.Join(copyDir, "dump.rdb")); err != nil {
			t.Fatal(err)
		}
		restored := harness.StartRedis(t, harness.WithRedisArgs("--dir", copyDir))
		rc := goredis.NewClient(&goredis.Options{Addr: restored.Addr})
		got, err := rc.Get(ctx, key).Result()
		rc.Close()
		if err != nil || got != val {
			t.Errorf("restored %s = %q, %v; want %q", key, got, err, val)
		}
	}
}

// A failed BGSAVE fails the snapshot: the server's directory vanished under it.
func TestRedisFailedSaveFailsSnapshot(t *testing.T) {
	harness.Integration(t)
	// CONFIG SET dir is a protected config since Redis 7.
	r := harness.StartRedis(t, harness.WithRedisArgs("--enable-protected-configs", "yes"))
	ctx := t.Context()
	c := goredis.NewClient(&goredis.Options{Addr: r.Addr})
	t.Cleanup(func() { c.Close() })
	gone := filepath.Join(t.TempDir(), "gone")
	if err := os.Mkdir(gone, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := c.ConfigSet(ctx, "dir", gone).Err(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.ConfigSet(ctx, "dir", r.Dir).Err() })
	// The csi driver (over a fake API): the local one would refuse the missing directory first.
	cs := fake.NewSimpleClientset()
	startController(t, &fakeCSIController{client: cs, namespace: "cache", cutDelay: 5 * time.Millisecond})
	_, err := take.Take(ctx, take.Options{Target: "sessions", Engine: "redis", Mode: "online", DSN: "redis://" + r.Addr, MaxFreeze: 10 * time.Second,
		CSI:     &csi.Driver{API: cs.SnapshotV1(), Namespace: "cache", ClassName: "fast"},
		Volumes: []csi.PVC{{Role: csi.RoleData, Name: "redis-data"}}})
	if !errors.Is(err, enginered.ErrSaveFailed) {
		t.Fatalf("err = %v, want ErrSaveFailed", err)
	}
	t.Logf("reported: %v", err)
	if l, _ := cs.SnapshotV1().VolumeSnapshots("cache").List(ctx, metav1.ListOptions{}); len(l.Items) != 0 {
		t.Errorf("%d VolumeSnapshots after a failed save", len(l.Items))
	}
}
