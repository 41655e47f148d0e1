package integration

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	goredis "github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/firedrill/firedrill/integration/harness"
	"github.com/firedrill/firedrill/restore/engine/postgres"
)

const (
	redisPVC  = "sessions-data"
	redisKeys = 2000
)

// kubeRedis is a Kubernetes drill environment for a Redis target: a real API server, a real
// Redis whose real BGSAVE the CSI snapshot holds, the fake snapshot controller and kubelet
// (which runs redis-check-rdb and redis-server from the host as the pods' containers).
type kubeRedis struct {
	k       *harness.Kube
	r       *harness.Redis
	cluster *fakeCluster
	base    string

	mu sync.Mutex
	// rdb is the RDB as the snapshot cut it: what a scratch PVC restored from it holds.
	rdb  []byte
	pods []*corev1.Pod
}

func startKubeRedis(t *testing.T) *kubeRedis {
	t.Helper()
	harness.Integration(t)
	k := harness.StartKube(t)
	r := harness.StartRedis(t)
	ctx := t.Context()
	d := &kubeRedis{k: k, r: r, base: harness.TempDir(t)}

	c := goredis.NewClient(&goredis.Options{Addr: r.Addr})
	defer c.Close()
	p := c.Pipeline()
	for i := range redisKeys {
		p.Set(ctx, fmt.Sprintf("session:%d", i), strings.Repeat("x", 64), 0)
	}
	p.Set(ctx, "last-write", time.Now().Unix(), 0)
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}

	engineEstate(t, k, redisPVC, func(vs *snapshotv1.VolumeSnapshot) {
		rdb, err := os.ReadFile(filepath.Join(r.Dir, "dump.rdb"))
		if err != nil {
			t.Errorf("the cut finds no RDB: %v", err)
			return
		}
		d.mu.Lock()
		d.rdb = rdb
		d.mu.Unlock()
	})
	cs, snaps := k.Clientset, k.Snapshots

	runAs, err := postgres.ResolveRunAs("")
	if err != nil {
		t.Fatal(err)
	}
	cl := newFakeCluster(t, cs, snaps, kubeScratchNS)
	cl.clone = func(_ context.Context, dir string) (string, error) {
		d.mu.Lock()
		rdb := d.rdb
		d.mu.Unlock()
		root := filepath.Join(dir, "volume")
		if err := os.MkdirAll(root, 0o755); err != nil {
			return "", err
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(root, "dump.rdb"), rdb, 0o600); err != nil {
			return "", err
		}
		return root, runAs.ChownTree(root)
	}
	cl.apiServer = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(k.Config.Host, "https://"), "http://"), "/")
	cl.runAs = runAs
	cl.onPod = func(p *corev1.Pod) {
		d.mu.Lock()
		d.pods = append(d.pods, p)
		d.mu.Unlock()
	}
	d.cluster = cl
	cl.start(t)
	return d
}

func (d *kubeRedis) config(t *testing.T, kubeconfig string, port int) string {
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
        pvc: %s
        className: fast-snapshots
    restore:
      runtime: kubernetes
      local:
        scratchDir: %s
      kubernetes:
        kubeconfig: %s
        namespace: %s
        image: local/engines:bookworm
        port: %d
        connect: podIP
        timeouts:
          bind: 1m
          schedule: 1m
          start: 1m
          ready: 2m
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
`, "redis://"+d.r.Addr+"/0", kubeconfig, kubeDBNS, redisPVC, filepath.Join(d.base, "scratch"), kubeconfig, kubeScratchNS, port, redisKeys, filepath.Join(d.base, "history"))
	p := filepath.Join(harness.TempDir(t), "firedrill.yaml")
	if err := os.MkdirAll(filepath.Join(d.base, "scratch"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A Redis target's CSI snapshot, taken by 'firedrill snapshot' (a real BGSAVE), drilled with
// restore.runtime kubernetes and the shipped RBAC: redis-check-rdb runs in a pod of its own on
// the scratch PVC, redis-server in the throwaway pod, the checks pass against it, and nothing
// is left in the scratch namespace. A truncated RDB on the volume fails redis-check-rdb (exit
// 1), no server pod is made, and nothing is left either.
func TestKubernetesDrillRedis(t *testing.T) {
	d := startKubeRedis(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	// The drill's shipped Roles (the source's in the target's namespace), its diagnostics Role
	// (pods/log: the server's log is the recovery finding's evidence), and the shipped snapshot
	// Role for 'firedrill snapshot'.
	scratch, cluster, source, diag := shippedDrillRBAC(t)
	snapRole := shippedRole(t)
	snapRole.Namespace = kubeDBNS
	d2 := &kubeDrill{k: d.k}
	kc := d2.serviceAccount(t, "drill", scratch, cluster, source, diag, snapRole)
	cfg := d.config(t, kc, harness.FreePort(t))

	r := runCLI(t, ctx, "snapshot", "--config", cfg, "--target", "sessions", "--output", "json")
	if r.code != 0 {
		t.Fatalf("snapshot exited %d:\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	t.Run("clean", func(t *testing.T) {
		start := time.Now()
		r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json")
		res := parseKube(t, r)
		t.Logf("drill: exit %d in %s", r.code, time.Since(start).Round(time.Millisecond))
		if r.code != 0 || res.Status != "pass" {
			t.Fatalf("exit %d status %s error %q, want 0/pass\nchecks: %+v\nstderr: %s", r.code, res.Status, res.Error, res.Checks, r.stderr)
		}
		for _, name := range []string{"snapshot-integrity", "redis-check-rdb", "recovery", "keys", "freshness", "rto"} {
			if st, msg := res.check(name); st != "pass" {
				t.Errorf("check %s = %s %q, want pass", name, st, msg)
			}
		}
		// The fake kubelet has no network namespace: the probe reaches production, and says so.
		if st, msg := res.check("isolation"); st != "warn" || !strings.Contains(msg, "does not enforce NetworkPolicies") {
			t.Errorf("isolation = %s %q, want a warning that egress is open", st, msg)
		}
		reached := map[string]bool{}
		for _, e := range res.Runtime.Isolation.Proof.Endpoints {
			reached[e.Endpoint] = e.Reachable
		}
		if !reached[d.r.Addr] {
			t.Errorf("probed endpoints %v: want production's Redis %s among them", reached, d.r.Addr)
		}
		if res.Runtime.Kind != "kubernetes" || res.Runtime.Namespace != kubeScratchNS || res.Runtime.Pod == "" {
			t.Errorf("runtime %+v", res.Runtime)
		}
		d.mu.Lock()
		var roles []string
		for _, p := range d.pods {
			roles = append(roles, p.Labels["firedrill.io/role"]+":"+p.Spec.Containers[0].Command[0])
			s := p.Spec
			if s.AutomountServiceAccountToken == nil || *s.AutomountServiceAccountToken || s.SecurityContext == nil || s.SecurityContext.RunAsNonRoot == nil || !*s.SecurityContext.RunAsNonRoot {
				t.Errorf("%s: a ServiceAccount token or a root user", p.Name)
			}
			for _, c := range append(append([]corev1.Container{}, s.InitContainers...), s.Containers...) {
				if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 {
					t.Errorf("%s/%s: container security context %+v", p.Name, c.Name, sc)
				}
			}
		}
		d.pods = nil
		d.mu.Unlock()
		if len(roles) != 2 || roles[0] != "exec:sh" || roles[1] != "throwaway:redis-server" {
			t.Errorf("pods %v, want redis-check-rdb's exec pod then the redis-server throwaway", roles)
		}
		if left := scratchLeft(t, d.k); len(left) != 0 {
			t.Errorf("left in the cluster: %v", left)
		}
	})

	t.Run("truncated RDB", func(t *testing.T) {
		d.mu.Lock()
		d.rdb = d.rdb[:len(d.rdb)/2]
		d.mu.Unlock()
		r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json")
		res := parseKube(t, r)
		if r.code != 1 || res.Status != "fail" {
			t.Fatalf("exit %d status %s error %q, want 1/fail\nchecks: %+v\nstderr: %s", r.code, res.Status, res.Error, res.Checks, r.stderr)
		}
		if st, msg := res.check("redis-check-rdb"); st != "fail" || !strings.Contains(msg, "damaged") {
			t.Errorf("redis-check-rdb = %s %q, want fail: damaged", st, msg)
		}
		d.mu.Lock()
		for _, p := range d.pods {
			if p.Labels["firedrill.io/role"] != "exec" {
				t.Errorf("pod %s (%s) made for a copy redis-check-rdb refused", p.Name, p.Labels["firedrill.io/role"])
			}
		}
		d.mu.Unlock()
		if left := scratchLeft(t, d.k); len(left) != 0 {
			t.Errorf("left in the cluster: %v", left)
		}
	})
}

// engineEstate makes production's side for an engine's CSI drill: the namespaces, a storage
// class and a snapshot class of the test driver, the target's PVC, and the CSI snapshot
// controller and driver, whose cut calls cut (what the volume holds then is what a PVC restored
// from the snapshot holds) and makes the content a real driver would.
func engineEstate(t *testing.T, k *harness.Kube, pvc string, cut func(vs *snapshotv1.VolumeSnapshot)) {
	t.Helper()
	ctx := t.Context()
	cs, snaps := k.Clientset, k.Snapshots
	for _, ns := range []string{kubeDBNS, kubeScratchNS} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	immediate := storagev1.VolumeBindingImmediate
	if _, err := cs.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fast"}, Provisioner: kubeDriver, VolumeBindingMode: &immediate}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := snaps.SnapshotV1().VolumeSnapshotClasses().Create(ctx, &snapshotv1.VolumeSnapshotClass{ObjectMeta: metav1.ObjectMeta{Name: "fast-snapshots"},
		Driver: kubeDriver, DeletionPolicy: snapshotv1.VolumeSnapshotContentDelete}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().PersistentVolumeClaims(kubeDBNS).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: pvc},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: new("fast"), AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	startController(t, &fakeCSIController{client: snaps, namespace: kubeDBNS, cutDelay: 50 * time.Millisecond, readyDelay: 50 * time.Millisecond,
		onCut: func(vs *snapshotv1.VolumeSnapshot) {
			cut(vs)
			handle := "snap-handle-" + vs.Name
			content, err := snaps.SnapshotV1().VolumeSnapshotContents().Create(ctx, &snapshotv1.VolumeSnapshotContent{
				ObjectMeta: metav1.ObjectMeta{Name: "snapcontent-" + string(vs.UID)},
				Spec: snapshotv1.VolumeSnapshotContentSpec{DeletionPolicy: snapshotv1.VolumeSnapshotContentDelete, Driver: kubeDriver,
					Source:            snapshotv1.VolumeSnapshotContentSource{SnapshotHandle: &handle},
					VolumeSnapshotRef: corev1.ObjectReference{Namespace: vs.Namespace, Name: vs.Name, UID: vs.UID}},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Errorf("fake CSI controller: content of %s: %v", vs.Name, err)
				return
			}
			size := int64(1 << 30)
			content.Status = &snapshotv1.VolumeSnapshotContentStatus{SnapshotHandle: &handle, ReadyToUse: new(true), RestoreSize: &size}
			if _, err := snaps.SnapshotV1().VolumeSnapshotContents().UpdateStatus(ctx, content, metav1.UpdateOptions{}); err != nil {
				t.Errorf("fake CSI controller: content status of %s: %v", vs.Name, err)
			}
		}})
}

// scratchLeft lists what firedrill made in the scratch namespace that is still there.
func scratchLeft(t *testing.T, k *harness.Kube) []string {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=firedrill"}
	var left []string
	deadline := time.Now().Add(20 * time.Second)
	for {
		left = left[:0]
		pods, _ := k.Clientset.CoreV1().Pods(kubeScratchNS).List(ctx, sel)
		for _, o := range pods.Items {
			left = append(left, "pod "+o.Name)
		}
		cms, _ := k.Clientset.CoreV1().ConfigMaps(kubeScratchNS).List(ctx, sel)
		for _, o := range cms.Items {
			left = append(left, "configmap "+o.Name)
		}
		nps, _ := k.Clientset.NetworkingV1().NetworkPolicies(kubeScratchNS).List(ctx, sel)
		for _, o := range nps.Items {
			left = append(left, "networkpolicy "+o.Name)
		}
		pvcs, _ := k.Clientset.CoreV1().PersistentVolumeClaims(kubeScratchNS).List(ctx, sel)
		for _, o := range pvcs.Items {
			left = append(left, "pvc "+o.Name)
		}
		vss, _ := k.Snapshots.SnapshotV1().VolumeSnapshots(kubeScratchNS).List(ctx, sel)
		for _, o := range vss.Items {
			left = append(left, "volumesnapshot "+o.Name)
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A MariaDB target's CSI snapshot, taken by 'firedrill snapshot' (FLUSH TABLES WITH READ LOCK
// around the cut; the cut copies the real data directory), drilled with restore.runtime
// kubernetes: mariadbd runs in the throwaway pod on the scratch PVC, InnoDB recovers the copy,
// the throwaway account's init file reaches the pod as a ConfigMap holding only the password's
// hash, and CHECK TABLE and row counts pass over TCP; nothing is left in the scratch namespace.
func TestKubernetesDrillMariaDB(t *testing.T) {
	harness.Integration(t)
	k := harness.StartKube(t)
	m := harness.StartMariaDB(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	base := harness.TempDir(t)
	db, err := sql.Open("mysql", m.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(64)) ENGINE=InnoDB"); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := db.ExecContext(ctx, "INSERT INTO orders (note) VALUES ('a'),('b'),('c'),('d'),('e'),('f'),('g'),('h'),('i'),('j')"); err != nil {
			t.Fatal(err)
		}
	}

	// The fake cut copies files one by one, which is not atomic as a real CSI cut is: a
	// checkpoint between copying a table and the redo log would lose rows. With no dirty page
	// left, the files on disk already hold every row.
	if _, err := db.ExecContext(ctx, "SET GLOBAL innodb_max_dirty_pages_pct = 0"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var name string
		var dirty int
		if err := db.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'").Scan(&name, &dirty); err != nil {
			t.Fatal(err)
		}
		if dirty == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("InnoDB still has %d dirty pages after 30s", dirty)
		}
	}
	cutDir := filepath.Join(base, "cut")
	engineEstate(t, k, "shop-data", func(*snapshotv1.VolumeSnapshot) {
		// Under the read lock: the data directory as the volume holds it at the cut.
		if out, err := exec.Command("cp", "-a", m.DataDir, cutDir).CombinedOutput(); err != nil {
			t.Errorf("copying the data directory at the cut: %v\n%s", err, out)
		}
	})
	runAs, err := postgres.ResolveRunAs("")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var pods []*corev1.Pod
	cl := newFakeCluster(t, k.Clientset, k.Snapshots, kubeScratchNS)
	cl.clone = func(ctx context.Context, dir string) (string, error) {
		root := filepath.Join(dir, "volume")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		if out, err := exec.CommandContext(ctx, "cp", "-a", cutDir, root).CombinedOutput(); err != nil {
			return "", fmt.Errorf("%v: %s", err, out)
		}
		return root, runAs.ChownTree(root)
	}
	cl.apiServer = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(k.Config.Host, "https://"), "http://"), "/")
	cl.runAs = runAs
	cl.onPod = func(p *corev1.Pod) {
		mu.Lock()
		pods = append(pods, p)
		mu.Unlock()
	}
	cl.start(t)

	scratch, cluster, source, diag := shippedDrillRBAC(t)
	snapRole := shippedRole(t)
	snapRole.Namespace = kubeDBNS
	kc := (&kubeDrill{k: k}).serviceAccount(t, "drill", scratch, cluster, source, diag, snapRole)
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
        className: fast-snapshots
    restore:
      runtime: kubernetes
      local:
        scratchDir: %s
      kubernetes:
        kubeconfig: %s
        namespace: %s
        image: local/engines:bookworm
        port: %d
        connect: podIP
        timeouts:
          bind: 1m
          schedule: 1m
          start: 1m
          ready: 2m
    objectives:
      rto: 10m
      rpo: 1000h
    checks:
      rowCounts:
        min:
          %s.orders: 50
history:
  dir: %s
`, m.DSN, kc, kubeDBNS, filepath.Join(base, "scratch"), kc, kubeScratchNS, harness.FreePort(t), m.Database, filepath.Join(base, "history"))
	if err := os.MkdirAll(filepath.Join(base, "scratch"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(base, "firedrill.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	r := runCLI(t, ctx, "snapshot", "--config", cfgPath, "--target", "shop", "--output", "json")
	if r.code != 0 {
		t.Fatalf("snapshot exited %d:\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	start := time.Now()
	r = runCLI(t, ctx, "drill", "--config", cfgPath, "--output", "json")
	res := parseKube(t, r)
	t.Logf("drill: exit %d in %s", r.code, time.Since(start).Round(time.Millisecond))
	if r.code != 0 || res.Status != "pass" {
		t.Fatalf("exit %d status %s error %q, want 0/pass\nchecks: %+v\nstderr: %s", r.code, res.Status, res.Error, res.Checks, r.stderr)
	}
	_, msg := res.check("recovery")
	t.Logf("recovery: %s", msg)
	for _, name := range []string{"snapshot-integrity", "recovery", "check-table", "row-counts", "rto"} {
		if st, msg := res.check(name); st != "pass" {
			t.Errorf("check %s = %s %q, want pass", name, st, msg)
		}
	}
	mu.Lock()
	for _, p := range pods {
		if p.Labels["firedrill.io/role"] == "throwaway" && p.Spec.Containers[0].Command[0] != "mariadbd" {
			t.Errorf("throwaway %s runs %v", p.Name, p.Spec.Containers[0].Command)
		}
	}
	mu.Unlock()
	if left := scratchLeft(t, k); len(left) != 0 {
		t.Errorf("left in the cluster: %v", left)
	}
}
