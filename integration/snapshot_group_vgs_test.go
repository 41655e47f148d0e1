package integration

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	groupv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumegroupsnapshot/v1"
	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapshotclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/firedrill/firedrill/integration/harness"
	"github.com/firedrill/firedrill/restore/snapshot/csi"
	"github.com/firedrill/firedrill/restore/snapshot/csi/csitest"
	"github.com/firedrill/firedrill/restore/snapshot/take"
)

const groupTestDriver = "test.csi.firedrill.io"

// shippedGroupRBAC reads the Role and ClusterRole the project ships for group snapshots.
func shippedGroupRBAC(t *testing.T) (*rbacv1.Role, *rbacv1.ClusterRole) {
	t.Helper()
	read := func(name string, into any) {
		b, err := os.ReadFile(filepath.Join("..", "deploy", "rbac", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.UnmarshalStrict(b, into); err != nil {
			t.Fatalf("deploy/rbac/%s: %v", name, err)
		}
	}
	role, cr := &rbacv1.Role{}, &rbacv1.ClusterRole{}
	read("snapshot-group-csi-role.yaml", role)
	read("snapshot-group-csi-clusterrole.yaml", cr)
	return role, cr
}

// groupVolumes creates, as an admin would, bound PVCs on CSI volumes of groupTestDriver in ns:
// labelled for group "shop" unless named in unlabelled.
func groupVolumes(t *testing.T, k *harness.Kube, ns string, pvcs []string, unlabelled ...string) {
	t.Helper()
	ctx := t.Context()
	if _, err := k.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for _, name := range pvcs {
		pv := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: "pv-" + ns + "-" + name},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("8Gi")},
				AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
				ClaimRef:                      &corev1.ObjectReference{Namespace: ns, Name: name},
				PersistentVolumeSource:        corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: groupTestDriver, VolumeHandle: ns + "/" + name}},
			},
		}
		if _, err := k.Clientset.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		labels := map[string]string{csi.LabelGroup: "shop"}
		for _, u := range unlabelled {
			if u == name {
				labels = nil
			}
		}
		pvc := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("8Gi")}},
				VolumeName:  pv.Name,
			},
		}
		if _, err := k.Clientset.CoreV1().PersistentVolumeClaims(ns).Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// saClients builds the clients firedrill would build from the ServiceAccount's kubeconfig.
func saClients(t *testing.T, cfg *rest.Config) (snapshotclient.Interface, kubernetes.Interface) {
	t.Helper()
	sc, err := snapshotclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sc, kc
}

// A group of PostgreSQL (data + WAL volumes, online) and MariaDB (online) cut by one
// VolumeGroupSnapshot against a real kube-apiserver, as a ServiceAccount bound to exactly the
// shipped Roles and ClusterRole; the test plays snapshot-controller v8.7.0 (status through the
// status subresource, member VolumeSnapshots owned by the group). Then: status.error verbatim
// with every member thawed and nothing left; freeze-all fallback when the class cannot be
// detected; an explicit class needing no ClusterRole; retention releasing the group; and verbs
// the shipped RBAC does not grant refused.
func TestGroupVolumeGroupSnapshotWithShippedRBAC(t *testing.T) {
	harness.Integration(t)
	k := harness.StartKube(t)
	m := harness.StartMariaDB(t)
	pg := harness.StartPostgres(t, harness.PostgresOptions{Archive: true})
	ctx := t.Context()
	root := rootDB(t, m)
	baseRole := shippedRole(t)
	groupRole, detectRole := shippedGroupRBAC(t)

	class := &groupv1.VolumeGroupSnapshotClass{ObjectMeta: metav1.ObjectMeta{Name: "group-fast"}, Driver: groupTestDriver, DeletionPolicy: snapshotv1.VolumeSnapshotContentDelete}
	if _, err := k.Snapshots.GroupsnapshotV1().VolumeGroupSnapshotClasses().Create(ctx, class, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pvcs := []string{"pg-data", "pg-wal", "mariadb-data", "unrelated"}
	groupVolumes(t, k, "db", pvcs, "unrelated")
	sc, kc := saClients(t, k.ClientAs(t, "db", "firedrill", baseRole, groupRole, detectRole))

	members := func(ns string, sc snapshotclient.Interface) []take.Options {
		d := func() *csi.Driver {
			return &csi.Driver{API: sc.SnapshotV1(), Groups: sc.GroupsnapshotV1(), Namespace: ns, ClassName: "fast", ReadyTimeout: 10 * time.Second}
		}
		return []take.Options{
			{Target: "orders", Engine: "postgres", Mode: "online", DSN: pg.DSN("postgres"), MaxFreeze: 30 * time.Second, Fast: true,
				CSI: d(), Volumes: []csi.PVC{{Role: csi.RoleData, Name: "pg-data"}, {Role: csi.RoleWAL, Name: "pg-wal"}}},
			{Target: "shop", Engine: "mariadb", Mode: "online", DSN: m.DSN, MaxFreeze: 30 * time.Second,
				CSI: d(), Volumes: []csi.PVC{{Role: csi.RoleData, Name: "mariadb-data"}}},
		}
	}
	groupDriver := func(ns string, sc snapshotclient.Interface, kc kubernetes.Interface, className string) *csi.GroupDriver {
		return &csi.GroupDriver{API: sc.GroupsnapshotV1(), Snapshots: sc.SnapshotV1(), Discovery: sc.Discovery(), Volumes: kc.CoreV1(),
			Namespace: ns, ClassName: className, Selector: map[string]string{csi.LabelGroup: "shop"}, ReadyTimeout: 10 * time.Second}
	}

	// While the storage cuts, MariaDB must hold its lock: an INSERT from another connection
	// blocks until the thaw.
	var insertDone atomic.Int64
	insertErr := make(chan error, 1)
	ctrl := &csitest.GroupController{Snapshots: k.Snapshots, Kube: k.Clientset, Namespace: "db", CutDelay: 500 * time.Millisecond, ReadyDelay: 200 * time.Millisecond, Logf: t.Logf,
		OnCut: func(*groupv1.VolumeGroupSnapshot) {
			go func() {
				_, err := root.ExecContext(ctx, "INSERT INTO orders (note) VALUES ('during')")
				insertDone.Store(time.Now().UnixNano())
				insertErr <- err
			}()
			time.Sleep(150 * time.Millisecond)
			if insertDone.Load() != 0 {
				t.Error("an INSERT completed while MariaDB should be frozen for the group cut")
			}
		}}
	runGroupController(t, ctrl)

	res, err := take.TakeGroupWith(ctx, take.GroupOptions{Name: "shop", Members: members("db", sc), MaxFreeze: 30 * time.Second, VolumeGroup: groupDriver("db", sc, kc, "")})
	if err != nil {
		t.Fatalf("group snapshot as the ServiceAccount with the shipped RBAC: %v", err)
	}
	if err := <-insertErr; err != nil {
		t.Fatal(err)
	}
	if res.Method != take.MethodVolumeGroupSnapshot || res.Fallback != "" || len(res.Snapshots) != 2 {
		t.Fatalf("result %+v", res)
	}
	cut := ctrl.CutAt(res.VolumeGroupSnapshot)
	if done := time.Unix(0, insertDone.Load()); done.Before(cut) {
		t.Errorf("the INSERT completed %s before the group cut", cut.Sub(done))
	}
	vgs, err := k.Snapshots.GroupsnapshotV1().VolumeGroupSnapshots("db").Get(ctx, res.VolumeGroupSnapshot, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *vgs.Spec.VolumeGroupSnapshotClassName != "group-fast" || vgs.Spec.Source.Selector.MatchLabels[csi.LabelGroup] != "shop" || vgs.Labels[csi.LabelBatchID] != res.BatchID {
		t.Errorf("VolumeGroupSnapshot %+v %+v", vgs.Labels, vgs.Spec)
	}
	for _, s := range res.Snapshots {
		if s.BatchID != res.BatchID || s.Attributes["volumeGroupSnapshot"] != res.VolumeGroupSnapshot {
			t.Errorf("%s: batch %s, group snapshot %q", s.Target, s.BatchID, s.Attributes["volumeGroupSnapshot"])
		}
		for _, v := range s.Volumes {
			vs, err := k.Snapshots.SnapshotV1().VolumeSnapshots("db").Get(ctx, v.VolumeSnapshot, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			owned := len(vs.OwnerReferences) == 1 && vs.OwnerReferences[0].UID == vgs.UID
			if !owned || *vs.Spec.Source.PersistentVolumeClaimName != v.PVC || vs.Labels[csi.LabelTarget] != s.Target || vs.Labels[csi.LabelSnapshotID] != s.ID || vs.Labels[csi.LabelVolume] != v.Role || vs.Annotations[csi.AnnFrozenSeconds] == "" {
				t.Errorf("member %s of %s: owned %v, labels %v, annotations %v", vs.Name, v.PVC, owned, vs.Labels, vs.Annotations)
			}
			thawed, _ := time.Parse(time.RFC3339Nano, vs.Annotations[csi.AnnThawedAt])
			if thawed.Before(cut) {
				t.Errorf("%s thawed at %s, before the cut at %s", s.Target, thawed, cut)
			}
		}
		if s.Engine == "postgres" && (len(s.EngineFiles["backup_label"]) == 0 || s.StopLSN == "") {
			t.Errorf("postgres member lacks backup_label or stop LSN: %+v", s)
		}
		got, err := (&csi.Driver{API: sc.SnapshotV1(), Namespace: "db"}).List(ctx, s.Target)
		if err != nil || len(got) != 1 || got[0].ID != s.ID {
			t.Errorf("List(%s) as the ServiceAccount = %+v, %v", s.Target, got, err)
		}
	}
	t.Logf("one VolumeGroupSnapshot for 3 volumes of 2 databases: group frozen %.3fs (cut after %s); postgres in backup mode %.3fs, mariadb locked %.3fs",
		res.FrozenSeconds, ctrl.CutDelay, res.Snapshots[0].FrozenSeconds, res.Snapshots[1].FrozenSeconds)

	t.Run("retention releases the group snapshot with its last member", func(t *testing.T) {
		d := &csi.Driver{API: sc.SnapshotV1(), Groups: sc.GroupsnapshotV1(), Namespace: "db"}
		if err := d.Delete(ctx, res.Snapshots[0].ID); err != nil {
			t.Fatal(err)
		}
		if _, err := k.Snapshots.GroupsnapshotV1().VolumeGroupSnapshots("db").Get(ctx, res.VolumeGroupSnapshot, metav1.GetOptions{}); err != nil {
			t.Errorf("the group snapshot went with its first member: %v", err)
		}
		if err := d.Delete(ctx, res.Snapshots[1].ID); err != nil {
			t.Fatal(err)
		}
		if _, err := k.Snapshots.GroupsnapshotV1().VolumeGroupSnapshots("db").Get(ctx, res.VolumeGroupSnapshot, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the group snapshot outlived its last member: %v", err)
		}
	})

	t.Run("verbs the shipped RBAC does not grant are refused", func(t *testing.T) {
		vgs := &groupv1.VolumeGroupSnapshot{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: "db"},
			Spec: groupv1.VolumeGroupSnapshotSpec{Source: groupv1.VolumeGroupSnapshotSource{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}}}}}
		created, err := sc.GroupsnapshotV1().VolumeGroupSnapshots("db").Create(ctx, vgs, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer sc.GroupsnapshotV1().VolumeGroupSnapshots("db").Delete(context.WithoutCancel(ctx), "probe", metav1.DeleteOptions{})
		merge := []byte(`{"metadata":{"labels":{"x":"y"}}}`)
		checks := map[string]error{}
		_, checks["update volumegroupsnapshot status"] = sc.GroupsnapshotV1().VolumeGroupSnapshots("db").UpdateStatus(ctx, created, metav1.UpdateOptions{})
		_, checks["update volumegroupsnapshot"] = sc.GroupsnapshotV1().VolumeGroupSnapshots("db").Update(ctx, created, metav1.UpdateOptions{})
		_, checks["patch volumegroupsnapshot"] = sc.GroupsnapshotV1().VolumeGroupSnapshots("db").Patch(ctx, "probe", types.MergePatchType, merge, metav1.PatchOptions{})
		_, checks["list volumegroupsnapshots"] = sc.GroupsnapshotV1().VolumeGroupSnapshots("db").List(ctx, metav1.ListOptions{})
		_, checks["watch volumegroupsnapshots"] = sc.GroupsnapshotV1().VolumeGroupSnapshots("db").Watch(ctx, metav1.ListOptions{})
		_, checks["create volumegroupsnapshot in another namespace"] = sc.GroupsnapshotV1().VolumeGroupSnapshots("default").Create(ctx, vgs, metav1.CreateOptions{})
		_, checks["list volumegroupsnapshotcontents"] = sc.GroupsnapshotV1().VolumeGroupSnapshotContents().List(ctx, metav1.ListOptions{})
		_, checks["get volumegroupsnapshotclass"] = sc.GroupsnapshotV1().VolumeGroupSnapshotClasses().Get(ctx, "group-fast", metav1.GetOptions{})
		checks["delete volumegroupsnapshotclass"] = sc.GroupsnapshotV1().VolumeGroupSnapshotClasses().Delete(ctx, "group-fast", metav1.DeleteOptions{})
		_, checks["patch (label) a PVC"] = kc.CoreV1().PersistentVolumeClaims("db").Patch(ctx, "pg-data", types.MergePatchType, merge, metav1.PatchOptions{})
		_, checks["list PVCs"] = kc.CoreV1().PersistentVolumeClaims("db").List(ctx, metav1.ListOptions{})
		_, checks["list PVs"] = kc.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
		_, checks["patch a PV"] = kc.CoreV1().PersistentVolumes().Patch(ctx, "pv-db-pg-data", types.MergePatchType, merge, metav1.PatchOptions{})
		for what, err := range checks {
			if !apierrors.IsForbidden(err) {
				t.Errorf("%s: err = %v, want Forbidden", what, err)
			}
		}
	})

	t.Run("status.error is reported verbatim; every member thawed, nothing left", func(t *testing.T) {
		groupVolumes(t, k, "db-err", pvcs[:3])
		sc, kc := saClients(t, k.ClientAs(t, "db-err", "firedrill", baseRole, groupRole))
		msg := "Failed to create group snapshot content with error rpc error: code = FailedPrecondition desc = volumes pg-data, mariadb-data are not in one consistency group"
		runGroupController(t, &csitest.GroupController{Snapshots: k.Snapshots, Kube: k.Clientset, Namespace: "db-err", CutDelay: 100 * time.Millisecond, ErrMsg: msg, Logf: t.Logf})
		res, err := take.TakeGroupWith(ctx, take.GroupOptions{Name: "shop", Members: members("db-err", sc), MaxFreeze: 30 * time.Second,
			VolumeGroup: groupDriver("db-err", sc, kc, "group-fast"), VolumeGroupSnapshot: take.VolumeGroupRequired})
		if !errors.Is(err, take.ErrGroupFailed) || !errors.Is(err, csi.ErrSnapshotFailed) || !strings.Contains(err.Error(), msg) || res == nil || res.Method != take.MethodVolumeGroupSnapshot {
			t.Fatalf("err = %v", err)
		}
		if err := writeWithin(ctx, root, time.Second); err != nil {
			t.Errorf("MariaDB does not accept writes within 1 s: %v", err)
		}
		assertOutOfBackup(t, pg.DSN("postgres"))
		if l, _ := k.Snapshots.GroupsnapshotV1().VolumeGroupSnapshots("db-err").List(ctx, metav1.ListOptions{}); len(l.Items) != 0 {
			t.Errorf("%d VolumeGroupSnapshots left", len(l.Items))
		}
		if l, _ := k.Snapshots.SnapshotV1().VolumeSnapshots("db-err").List(ctx, metav1.ListOptions{}); len(l.Items) != 0 {
			t.Errorf("%d VolumeSnapshots left", len(l.Items))
		}
	})

	t.Run("without the ClusterRole: freeze-all, or an explicit class", func(t *testing.T) {
		groupVolumes(t, k, "db-nocr", pvcs[:3])
		sc, kc := saClients(t, k.ClientAs(t, "db-nocr", "firedrill", baseRole, groupRole))
		startController(t, &fakeCSIController{client: k.Snapshots, namespace: "db-nocr", cutDelay: 50 * time.Millisecond, readyDelay: 50 * time.Millisecond})
		runGroupController(t, &csitest.GroupController{Snapshots: k.Snapshots, Kube: k.Clientset, Namespace: "db-nocr", CutDelay: 50 * time.Millisecond, ReadyDelay: 50 * time.Millisecond, Logf: t.Logf})

		res, err := take.TakeGroupWith(ctx, take.GroupOptions{Name: "shop", Members: members("db-nocr", sc), MaxFreeze: 30 * time.Second, VolumeGroup: groupDriver("db-nocr", sc, kc, "")})
		if err != nil {
			t.Fatal(err)
		}
		if res.Method != take.MethodFreezeAll || !strings.Contains(res.Fallback, "snapshot-group-csi-clusterrole.yaml") || len(res.Snapshots) != 2 {
			t.Errorf("method %s, fallback %q, %d snapshots", res.Method, res.Fallback, len(res.Snapshots))
		}
		t.Logf("fallback: %s", res.Fallback)

		res, err = take.TakeGroupWith(ctx, take.GroupOptions{Name: "shop", Members: members("db-nocr", sc), MaxFreeze: 30 * time.Second, VolumeGroup: groupDriver("db-nocr", sc, kc, "group-fast")})
		if err != nil {
			t.Fatal(err)
		}
		if res.Method != take.MethodVolumeGroupSnapshot || len(res.Snapshots) != 2 {
			t.Errorf("with groupSnapshotClassName: method %s, %d snapshots", res.Method, len(res.Snapshots))
		}
	})
}

// assertOutOfBackup checks that no firedrill session (and so no backup it started) is left.
func assertOutOfBackup(t *testing.T, dsn string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var n int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'firedrill-snapshot'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d firedrill-snapshot sessions left (a backup may still be in progress)", n)
	}
}

// runGroupController plays the group snapshot controller until the test ends.
func runGroupController(t *testing.T, c *csitest.GroupController) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}
