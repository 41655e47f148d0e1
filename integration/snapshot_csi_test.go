package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapshotclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/firedrill/firedrill/integration/harness"
	"github.com/firedrill/firedrill/restore/engine/mariadb"
	"github.com/firedrill/firedrill/restore/snapshot/csi"
	"github.com/firedrill/firedrill/restore/snapshot/take"
)

// shippedRole reads the Role the project ships for `firedrill snapshot` with driver csi.
func shippedRole(t *testing.T) *rbacv1.Role {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "deploy", "rbac", "snapshot-csi-role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.Role{}
	if err := yaml.UnmarshalStrict(b, role); err != nil {
		t.Fatalf("deploy/rbac/snapshot-csi-role.yaml: %v", err)
	}
	return role
}

// writeKubeconfig writes a kubeconfig for cfg (a bearer token), as an operator would.
func writeKubeconfig(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	ca := cfg.CAData
	if len(ca) == 0 && cfg.CAFile != "" {
		var err error
		if ca, err = os.ReadFile(cfg.CAFile); err != nil {
			t.Fatal(err)
		}
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: ca}
	kc.AuthInfos["firedrill"] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "firedrill"}
	kc.CurrentContext = "test"
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// CSI snapshots against a real kube-apiserver with the snapshot CRDs, as the ServiceAccount
// bound to exactly the shipped Role: objects are accepted (valid) and labelled, MariaDB stays
// frozen until the controller sets status.creationTime and is thawed right after, status.error
// is reported verbatim, the CLI works with that Role alone, and verbs it does not grant are
// refused.
func TestCSISnapshotWithShippedRBAC(t *testing.T) {
	harness.Integration(t)
	k := harness.StartKube(t)
	m := harness.StartMariaDB(t)
	ctx := t.Context()
	root := rootDB(t, m)
	role := shippedRole(t)

	class := &snapshotv1.VolumeSnapshotClass{ObjectMeta: metav1.ObjectMeta{Name: "fast"}, Driver: "test.csi.firedrill.io", DeletionPolicy: snapshotv1.VolumeSnapshotContentDelete}
	if _, err := k.Snapshots.SnapshotV1().VolumeSnapshotClasses().Create(ctx, class, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	saConfig := k.ClientAs(t, "db", "firedrill", role)
	sa, err := snapshotclient.NewForConfig(saConfig)
	if err != nil {
		t.Fatal(err)
	}

	var insertDone atomic.Int64
	insertErr := make(chan error, 1)
	var binlogUnderLock string
	ctrl := &fakeCSIController{client: k.Snapshots, namespace: "db", cutDelay: 500 * time.Millisecond, readyDelay: 200 * time.Millisecond,
		onCut: func(vs *snapshotv1.VolumeSnapshot) {
			if vs.Labels[csi.LabelTarget] != "shop" || insertDone.Load() != 0 {
				return
			}
			go func() {
				_, err := root.ExecContext(ctx, "INSERT INTO orders (note) VALUES ('during')")
				insertDone.Store(time.Now().UnixNano())
				insertErr <- err
			}()
			time.Sleep(150 * time.Millisecond)
			if insertDone.Load() != 0 {
				t.Error("an INSERT completed while the lock should be held")
			}
			f, p, _, err := mariadb.ShowMasterStatus(ctx, root)
			if err != nil {
				t.Error(err)
			}
			binlogUnderLock = f + ":" + strconv.FormatUint(p, 10)
		}}
	startController(t, ctrl)

	o := take.Options{Target: "shop", Engine: "mariadb", Mode: "online", DSN: m.DSN, MaxFreeze: 20 * time.Second,
		CSI:     &csi.Driver{API: sa.SnapshotV1(), Namespace: "db", ClassName: "fast", ReadyTimeout: 10 * time.Second},
		Volumes: []csi.PVC{{Role: csi.RoleData, Name: "mariadb-data"}, {Role: csi.RoleWAL, Name: "mariadb-binlog"}}}
	meta, err := take.Take(ctx, o)
	if err != nil {
		t.Fatalf("snapshot as the ServiceAccount with the shipped Role: %v", err)
	}
	if err := <-insertErr; err != nil {
		t.Fatal(err)
	}
	if got := meta.Attributes[mariadb.AttrBinlogFile] + ":" + meta.Attributes[mariadb.AttrBinlogPosition]; got != binlogUnderLock {
		t.Errorf("recorded binlog %s, SHOW MASTER STATUS under the lock %s", got, binlogUnderLock)
	}
	var lastCut time.Time
	for _, v := range meta.Volumes {
		if c := ctrl.cutTime(v.VolumeSnapshot); c.After(lastCut) {
			lastCut = c
		}
	}
	done := time.Unix(0, insertDone.Load())
	if done.Before(lastCut) {
		t.Errorf("the INSERT completed %s before the last cut", lastCut.Sub(done))
	}
	t.Logf("frozen %.3fs for a 0.5 s cut of 2 volumes; INSERT completed %s after the last cut", meta.FrozenSeconds, done.Sub(lastCut).Round(time.Millisecond))
	if meta.SizeBytes != 16<<30 {
		t.Errorf("size %d, want 2 x 8Gi restoreSize", meta.SizeBytes)
	}
	for _, v := range meta.Volumes {
		vs, err := k.Snapshots.SnapshotV1().VolumeSnapshots("db").Get(ctx, v.VolumeSnapshot, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for key, want := range map[string]string{csi.LabelManagedBy: "firedrill", csi.LabelTarget: "shop", csi.LabelEngine: "mariadb",
			csi.LabelMode: "online", csi.LabelSnapshotID: meta.ID, csi.LabelBatchID: meta.ID, csi.LabelVolume: v.Role} {
			if vs.Labels[key] != want {
				t.Errorf("%s: label %s = %q, want %q", vs.Name, key, vs.Labels[key], want)
			}
		}
		if !strings.HasPrefix(vs.Labels[csi.LabelEngineVersion], "10.") {
			t.Errorf("%s: engine-version label %q", vs.Name, vs.Labels[csi.LabelEngineVersion])
		}
		thawed, _ := time.Parse(time.RFC3339Nano, vs.Annotations[csi.AnnThawedAt])
		if thawed.Before(vs.Status.CreationTime.Time.Truncate(time.Second)) {
			t.Errorf("%s: thawed at %s, before creationTime %s", vs.Name, thawed, vs.Status.CreationTime)
		}
		if vs.Annotations[csi.AnnBinlogFile] == "" || vs.Annotations[csi.AnnFrozenSeconds] == "" {
			t.Errorf("%s: annotations %v", vs.Name, vs.Annotations)
		}
	}

	t.Run("status.error is reported verbatim", func(t *testing.T) {
		saErr, err := snapshotclient.NewForConfig(k.ClientAs(t, "db-err", "firedrill", role))
		if err != nil {
			t.Fatal(err)
		}
		msg := "Failed to check and update snapshot content: rpc error: code = Internal desc = snapshot of volume pvc-1 failed: no space left"
		startController(t, &fakeCSIController{client: k.Snapshots, namespace: "db-err", cutDelay: 100 * time.Millisecond, errMsg: msg})
		o := o
		o.CSI = &csi.Driver{API: saErr.SnapshotV1(), Namespace: "db-err", ClassName: "fast", ReadyTimeout: 5 * time.Second}
		_, err = take.Take(ctx, o)
		if !errors.Is(err, csi.ErrSnapshotFailed) || !strings.Contains(err.Error(), msg) {
			t.Fatalf("err = %v", err)
		}
		if err := writeWithin(ctx, root, time.Second); err != nil {
			t.Errorf("after status.error the database does not accept writes: %v", err)
		}
		if l, _ := k.Snapshots.SnapshotV1().VolumeSnapshots("db-err").List(ctx, metav1.ListOptions{}); len(l.Items) != 0 {
			t.Errorf("%d VolumeSnapshots left after status.error", len(l.Items))
		}
	})

	t.Run("verbs the Role does not grant are refused", func(t *testing.T) {
		vs, err := sa.SnapshotV1().VolumeSnapshots("db").Get(ctx, meta.Volumes[0].VolumeSnapshot, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checks := map[string]error{}
		_, checks["update status"] = sa.SnapshotV1().VolumeSnapshots("db").UpdateStatus(ctx, vs, metav1.UpdateOptions{})
		_, checks["update"] = sa.SnapshotV1().VolumeSnapshots("db").Update(ctx, vs, metav1.UpdateOptions{})
		_, checks["watch"] = sa.SnapshotV1().VolumeSnapshots("db").Watch(ctx, metav1.ListOptions{})
		_, checks["list in another namespace"] = sa.SnapshotV1().VolumeSnapshots("default").List(ctx, metav1.ListOptions{})
		_, checks["list VolumeSnapshotContents"] = sa.SnapshotV1().VolumeSnapshotContents().List(ctx, metav1.ListOptions{})
		_, checks["get VolumeSnapshotClass"] = sa.SnapshotV1().VolumeSnapshotClasses().Get(ctx, "fast", metav1.GetOptions{})
		for what, err := range checks {
			if !apierrors.IsForbidden(err) {
				t.Errorf("%s: err = %v, want Forbidden", what, err)
			}
		}
	})

	t.Run("CLI with the shipped Role", func(t *testing.T) {
		kubeconfig := writeKubeconfig(t, saConfig)
		cfgPath := filepath.Join(t.TempDir(), "firedrill.yaml")
		cfg := fmt.Sprintf(`targets:
  - name: shop
    engine: mariadb
    connection:
      dsn: %q
    snapshot:
      driver: csi
      mode: online
      maxFreeze: 30s
      csi:
        namespace: db
        pvc: mariadb-data
        className: fast
        readyTimeout: 30s
        kubeconfig: %s
    retention:
      keepLast: 2
history:
  dir: %s
`, m.DSN, kubeconfig, t.TempDir())
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		var ids []string
		for range 2 {
			r := runCLI(t, cctx, "snapshot", "--config", cfgPath, "--target", "shop", "--output", "json")
			var got struct {
				ID     string `json:"id"`
				Driver string `json:"driver"`
			}
			if r.code != 0 || json.Unmarshal([]byte(r.stdout), &got) != nil || got.Driver != "csi" {
				t.Fatalf("snapshot: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			ids = append(ids, got.ID)
			time.Sleep(1100 * time.Millisecond) // ids and names have one-second resolution
		}
		r := runCLI(t, cctx, "snapshots", "--config", cfgPath, "--target", "shop", "--output", "json")
		var listed []struct {
			ID string `json:"id"`
		}
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &listed) != nil {
			t.Fatalf("snapshots: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		// keepLast: 2 deleted the snapshot taken by the library above.
		if len(listed) != 2 || listed[0].ID != ids[1] || listed[1].ID != ids[0] {
			t.Errorf("snapshots = %v, want [%s %s] (newest first; retention keeps 2)", listed, ids[1], ids[0])
		}
		if _, err := k.Snapshots.SnapshotV1().VolumeSnapshots("db").Get(ctx, meta.Volumes[0].VolumeSnapshot, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("retention did not delete the oldest snapshot: %v", err)
		}
	})
}
