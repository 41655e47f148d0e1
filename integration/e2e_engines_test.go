//go:build e2e

package integration

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/firedrill/firedrill/integration/harness"
)

const (
	e2eRedisUID  = 999 // the throwaway's default runAsUser: production runs as it too
	e2eRedisKeys = 3000
)

// e2eRedisDrill: a Redis pod of the engines image on a CSI PVC in the real cluster,
// 'firedrill snapshot' (a real BGSAVE, then a real CSI VolumeSnapshot of the volume), then
// 'firedrill drill' with restore.runtime kubernetes: the snapshot is restored into a scratch
// PVC, redis-check-rdb runs in a pod on it, redis-server in the throwaway pod is reached by
// port-forward, every check passes, and the scratch namespace is left empty.
func e2eRedisDrill(t *testing.T, e *e2e) {
	if e.c.Images["engines"] == "" {
		harness.Missing(t, "engines image", harness.EnginesImage+" is not built", "run 'make setup' as root")
	}
	ctx := t.Context()
	cs := e.c.Clientset
	sc := harness.ClusterStorageClass
	if _, err := cs.CoreV1().PersistentVolumeClaims(e2eDBNS).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "sessions-data"},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: &sc, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	uid := int64(e2eRedisUID)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "sessions-0", Labels: map[string]string{"app": "sessions"}},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{RunAsUser: &uid, RunAsGroup: &uid, FSGroup: &uid},
			Containers: []corev1.Container{{
				Name: "redis", Image: harness.EnginesImage, ImagePullPolicy: corev1.PullNever,
				Command:      []string{"redis-server", "--bind", "0.0.0.0", "--port", "6379", "--dir", "/data", "--protected-mode", "no", "--save", ""},
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
			}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "sessions-data"}}}},
		},
	}
	if _, err := cs.CoreV1().Pods(e2eDBNS).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	var addr string
	deadline := time.Now().Add(3 * time.Minute)
	for {
		p, err := cs.CoreV1().Pods(e2eDBNS).Get(ctx, "sessions-0", metav1.GetOptions{})
		if err == nil && p.Status.PodIP != "" && p.Status.Phase == corev1.PodRunning {
			addr = p.Status.PodIP + ":6379"
			c := goredis.NewClient(&goredis.Options{Addr: addr})
			err = c.Ping(ctx).Err()
			c.Close()
			if err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the production Redis pod did not start within 3m (phase %v, %v)\nkubelet:\n%s", podPhase(p), err, e.c.Logs("kubelet", 30))
		}
		time.Sleep(time.Second)
	}
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	defer c.Close()
	p := c.Pipeline()
	for i := range e2eRedisKeys {
		p.HSet(ctx, fmt.Sprintf("session:%d", i), "user", i, "seen", time.Now().Unix())
	}
	p.Set(ctx, "last-write", time.Now().Unix(), 0)
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	e.timing["6: production redis"] = time.Since(began)

	cfg := e.redisConfig(t, "redis://"+addr+"/0")
	began = time.Now()
	r := runCLI(t, ctx, "snapshot", "--config", cfg, "--output", "json")
	if r.code != 0 {
		t.Fatalf("firedrill snapshot: exit %d\nstdout: %s\nstderr: %s\ncsi-snapshotter:\n%s", r.code, r.stdout, r.stderr, e.c.Logs("csi-snapshotter", 20))
	}
	e.timing["6: firedrill snapshot (redis)"] = time.Since(began)

	began = time.Now()
	res, r := e.drill(t, cfg)
	e.timing["6: firedrill drill (redis)"] = time.Since(began)
	if r.code != 0 || res.Status != "pass" {
		t.Fatalf("drill: exit %d status %s error %q\nchecks: %+v\nstderr: %s\nkubelet:\n%s", r.code, res.Status, res.Error, res.Checks, r.stderr, e.c.Logs("kubelet", 40))
	}
	for _, check := range []string{"snapshot-integrity", "redis-check-rdb", "recovery", "keys", "freshness", "rto"} {
		if st, msg := res.check(check); st != "pass" {
			t.Errorf("check %s = %s %q, want pass", check, st, msg)
		}
	}
	// The recovery finding's evidence is the server's own log line, read from the real kubelet.
	if _, msg := res.check("recovery"); !strings.Contains(msg, "loaded the copy") {
		t.Errorf("recovery: %q", msg)
	}
	if res.Runtime.Kind != "kubernetes" || res.Runtime.Namespace != e2eScratchNS || res.Runtime.Pod == "" {
		t.Errorf("runtime %+v", res.Runtime)
	}
	e.waitScratchEmpty(t)
	nps, err := cs.NetworkingV1().NetworkPolicies(e2eScratchNS).List(ctx, metav1.ListOptions{})
	if err != nil || len(nps.Items) != 0 {
		t.Errorf("NetworkPolicies left in the scratch namespace: %d (%v)", len(nps.Items), err)
	}
	cms, err := cs.CoreV1().ConfigMaps(e2eScratchNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=firedrill"})
	if err != nil || len(cms.Items) != 0 {
		t.Errorf("ConfigMaps left in the scratch namespace: %d (%v)", len(cms.Items), err)
	}
}

// redisConfig is the Redis target's configuration: CSI snapshots of sessions-data, drilled in
// the engines image on the kubernetes runtime.
func (e *e2e) redisConfig(t *testing.T, dsn string) string {
	t.Helper()
	cfg := fmt.Sprintf(`targets:
  - name: sessions
    engine: redis
    connection:
      dsn: %q
    snapshot:
      driver: csi
      mode: online
      csi:
        kubeconfig: %s
        namespace: %s
        pvc: sessions-data
        className: %s
        readyTimeout: 2m
    restore:
      runtime: kubernetes
      kubernetes:
        kubeconfig: %s
        namespace: %s
        image: %s
        runAsUser: %d
        fsGroup: %d
        port: 6379
        connect: portForward
        timeouts:
          bind: 2m
          schedule: 1m
          start: 2m
          ready: 3m
    objectives:
      rto: 10m
      rpo: 1000h
    checks:
      keys:
        min:
          "0": %d
      freshness:
        key: last-write
history:
  dir: %s
`, dsn, e.admin, e2eDBNS, harness.ClusterSnapshotClass, e.admin, e2eScratchNS, harness.EnginesImage, e2eRedisUID, e2eRedisUID,
		e2eRedisKeys, filepath.Join(e.dir, "history-redis"))
	p := filepath.Join(harness.TempDir(t), "firedrill-redis.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// e2eMariaDBDrill: a MariaDB pod of the engines image on a CSI PVC (its data directory under
// db/), 'firedrill snapshot' (FLUSH TABLES WITH READ LOCK around a real CSI VolumeSnapshot),
// then 'firedrill drill' on the kubernetes runtime: mariadbd recovers the scratch PVC in the
// throwaway pod (its init file a ConfigMap of the password's hash), reached by port-forward;
// recovery, check-table and row counts pass, and the scratch namespace is left empty.
func e2eMariaDBDrill(t *testing.T, e *e2e) {
	if e.c.Images["engines"] == "" {
		harness.Missing(t, "engines image", harness.EnginesImage+" is not built", "run 'make setup' as root")
	}
	ctx := t.Context()
	cs := e.c.Clientset
	sc := harness.ClusterStorageClass
	if _, err := cs.CoreV1().PersistentVolumeClaims(e2eDBNS).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "shop-data"},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: &sc, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	uid := int64(e2eRedisUID)
	// The account firedrill snapshots with (FLUSH TABLES WITH READ LOCK, binary log position).
	script := `set -e
if [ ! -d /data/db/mysql ]; then mariadb-install-db --no-defaults --datadir=/data/db --auth-root-authentication-method=socket --skip-test-db >/dev/null; fi
cat > /tmp/init.sql <<'SQL'
CREATE USER IF NOT EXISTS 'firedrill'@'%' IDENTIFIED BY '` + e2ePassword + `';
GRANT ALL PRIVILEGES ON *.* TO 'firedrill'@'%';
CREATE DATABASE IF NOT EXISTS shop;
SQL
exec mariadbd --no-defaults --datadir=/data/db --socket=/tmp/mysqld.sock --pid-file=/tmp/mysqld.pid --tmpdir=/tmp --bind-address=0.0.0.0 --port=3306 --log-bin=binlog --server-id=1 --init-file=/tmp/init.sql`
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "shop-0", Labels: map[string]string{"app": "shop"}},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{RunAsUser: &uid, RunAsGroup: &uid, FSGroup: &uid},
			Containers: []corev1.Container{{
				Name: "mariadb", Image: harness.EnginesImage, ImagePullPolicy: corev1.PullNever,
				Command:      []string{"sh", "-c", script},
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "tmp", MountPath: "/tmp"}},
			}},
			Volumes: []corev1.Volume{
				{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "shop-data"}}},
				{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			},
		},
	}
	if _, err := cs.CoreV1().Pods(e2eDBNS).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	var dsn string
	var db *sql.DB
	deadline := time.Now().Add(3 * time.Minute)
	for {
		p, err := cs.CoreV1().Pods(e2eDBNS).Get(ctx, "shop-0", metav1.GetOptions{})
		if err == nil && p.Status.PodIP != "" && p.Status.Phase == corev1.PodRunning {
			dsn = fmt.Sprintf("firedrill:%s@tcp(%s:3306)/shop", e2ePassword, p.Status.PodIP)
			if db, err = sql.Open("mysql", dsn); err == nil {
				if err = db.PingContext(ctx); err == nil {
					break
				}
				db.Close()
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the production MariaDB pod did not start within 3m (phase %v, %v)\nkubelet:\n%s", podPhase(p), err, e.c.Logs("kubelet", 30))
		}
		time.Sleep(time.Second)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(64)) ENGINE=InnoDB"); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if _, err := db.ExecContext(ctx, "INSERT INTO orders (note) VALUES ('a'),('b'),('c'),('d'),('e'),('f'),('g'),('h'),('i'),('j')"); err != nil {
			t.Fatal(err)
		}
	}
	e.timing["7: production mariadb"] = time.Since(began)

	cfg := fmt.Sprintf(`targets:
  - name: shop
    engine: mariadb
    connection:
      dsn: %q
    snapshot:
      driver: csi
      mode: online
      csi:
        kubeconfig: %s
        namespace: %s
        pvc: shop-data
        className: %s
        readyTimeout: 2m
    restore:
      runtime: kubernetes
      kubernetes:
        kubeconfig: %s
        namespace: %s
        image: %s
        subPath: db
        runAsUser: %d
        fsGroup: %d
        port: 3306
        connect: portForward
        timeouts:
          bind: 2m
          schedule: 1m
          start: 2m
          ready: 3m
    objectives:
      rto: 10m
      rpo: 1000h
    checks:
      rowCounts:
        min:
          shop.orders: 200
history:
  dir: %s
`, dsn, e.admin, e2eDBNS, harness.ClusterSnapshotClass, e.admin, e2eScratchNS, harness.EnginesImage, e2eRedisUID, e2eRedisUID, filepath.Join(e.dir, "history-mariadb"))
	cfgPath := filepath.Join(harness.TempDir(t), "firedrill-mariadb.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	began = time.Now()
	r := runCLI(t, ctx, "snapshot", "--config", cfgPath, "--output", "json")
	if r.code != 0 {
		t.Fatalf("firedrill snapshot: exit %d\nstdout: %s\nstderr: %s\ncsi-snapshotter:\n%s", r.code, r.stdout, r.stderr, e.c.Logs("csi-snapshotter", 20))
	}
	e.timing["7: firedrill snapshot (mariadb)"] = time.Since(began)
	began = time.Now()
	res, r := e.drill(t, cfgPath)
	e.timing["7: firedrill drill (mariadb)"] = time.Since(began)
	if r.code != 0 || res.Status != "pass" {
		t.Fatalf("drill: exit %d status %s error %q\nchecks: %+v\nstderr: %s\nkubelet:\n%s", r.code, res.Status, res.Error, res.Checks, r.stderr, e.c.Logs("kubelet", 40))
	}
	for _, check := range []string{"snapshot-integrity", "recovery", "check-table", "row-counts", "rto"} {
		if st, msg := res.check(check); st != "pass" {
			t.Errorf("check %s = %s %q, want pass", check, st, msg)
		}
	}
	_, msg := res.check("recovery")
	t.Logf("recovery: %s", msg)
	e.waitScratchEmpty(t)
	nps, err := cs.NetworkingV1().NetworkPolicies(e2eScratchNS).List(ctx, metav1.ListOptions{})
	if err != nil || len(nps.Items) != 0 {
		t.Errorf("NetworkPolicies left in the scratch namespace: %d (%v)", len(nps.Items), err)
	}
}
