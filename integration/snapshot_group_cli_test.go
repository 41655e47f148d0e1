package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	groupv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumegroupsnapshot/v1"
	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/firedrill/firedrill/integration/harness"
	"github.com/firedrill/firedrill/restore/snapshot/csi/csitest"
)

// `firedrill snapshot --group` through the CLI: members on the csi driver are cut by one
// VolumeGroupSnapshot, as a ServiceAccount holding only the shipped RBAC; with
// volumeGroupSnapshot: disabled the same group uses freeze-all ordering.
func TestCLIGroupSnapshotUsesVolumeGroupSnapshot(t *testing.T) {
	harness.Integration(t)
	k := harness.StartKube(t)
	m := harness.StartMariaDB(t)
	pg := harness.StartPostgres(t, harness.PostgresOptions{Archive: true})
	ctx := t.Context()
	class := &groupv1.VolumeGroupSnapshotClass{ObjectMeta: metav1.ObjectMeta{Name: "group-fast"}, Driver: groupTestDriver, DeletionPolicy: snapshotv1.VolumeSnapshotContentDelete}
	if _, err := k.Snapshots.GroupsnapshotV1().VolumeGroupSnapshotClasses().Create(ctx, class, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	role, cr := shippedGroupRBAC(t)
	// Namespace db plays a cluster with group snapshots; db2 one where the group is disabled and
	// each volume gets its own VolumeSnapshot (a controller for each kind).
	kubeconfigs := map[string]string{}
	groupVolumes(t, k, "db", []string{"pg-data", "mariadb-data"})
	kubeconfigs["db"] = writeKubeconfig(t, k.ClientAs(t, "db", "firedrill", shippedRole(t), role, cr))
	// Freeze-all ordering needs only the single-snapshot Role.
	groupVolumes(t, k, "db2", []string{"pg-data", "mariadb-data"})
	kubeconfigs["db2"] = writeKubeconfig(t, k.ClientAs(t, "db2", "firedrill", shippedRole(t)))
	runGroupController(t, &csitest.GroupController{Snapshots: k.Snapshots, Kube: k.Clientset, Namespace: "db",
		CutDelay: 200 * time.Millisecond, ReadyDelay: 100 * time.Millisecond, Logf: t.Logf})
	startController(t, &fakeCSIController{client: k.Snapshots, namespace: "db2", cutDelay: 200 * time.Millisecond, readyDelay: 100 * time.Millisecond})

	config := func(ns, mode string) string {
		kubeconfig := kubeconfigs[ns]
		p := filepath.Join(harness.TempDir(t), "firedrill.yaml")
		cfg := fmt.Sprintf(`targets:
  - name: orders
    engine: postgres
    connection: {dsn: %q}
    snapshot:
      driver: csi
      mode: crash-consistent
      csi: {namespace: %s, pvc: pg-data, className: fast, kubeconfig: %s, readyTimeout: 30s}
  - name: shop
    engine: mariadb
    connection: {dsn: %q}
    snapshot:
      driver: csi
      csi: {namespace: %s, pvc: mariadb-data, className: fast, kubeconfig: %s, readyTimeout: 30s}
groups:
  - name: shop
    targets: [orders, shop]
    csi: {volumeGroupSnapshot: %s}
`, pg.DSN("postgres"), ns, kubeconfig, m.DSN, ns, kubeconfig, mode)
		if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	type groupJSON struct {
		BatchID             string `json:"batchId"`
		Method              string `json:"method"`
		VolumeGroupSnapshot string `json:"volumeGroupSnapshot"`
		Fallback            string `json:"fallback"`
		Snapshots           []struct {
			Target  string `json:"target"`
			BatchID string `json:"batchId"`
		} `json:"snapshots"`
	}
	for _, tc := range []struct{ ns, mode, method string }{{"db", "required", "volume-group-snapshot"}, {"db2", "disabled", "freeze-all"}} {
		t.Run(tc.mode, func(t *testing.T) {
			r := runCLI(t, ctx, "snapshot", "--config", config(tc.ns, tc.mode), "--group", "shop", "--output", "json")
			if r.code != 0 {
				t.Fatalf("snapshot --group: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			var res groupJSON
			if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
				t.Fatalf("%v: %s", err, r.stdout)
			}
			if !strings.EqualFold(res.Method, tc.method) || len(res.Snapshots) != 2 {
				t.Fatalf("method %q (want %q), %d snapshots: %+v", res.Method, tc.method, len(res.Snapshots), res)
			}
			if tc.mode == "required" && res.VolumeGroupSnapshot == "" {
				t.Errorf("no VolumeGroupSnapshot named in %+v", res)
			}
			for _, s := range res.Snapshots {
				if s.BatchID != res.BatchID {
					t.Errorf("member %s has batch %s, group %s", s.Target, s.BatchID, res.BatchID)
				}
			}
		})
	}
}
