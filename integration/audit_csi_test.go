package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sigs.k8s.io/yaml"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/firedrill/firedrill/integration/harness"
	"github.com/firedrill/firedrill/restore/engine"
	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/snapshot/csi"
)

// auditRole is all `firedrill audit` needs to read a target's VolumeSnapshots: list.
// auditRole is the Role the project ships for auditing csi targets.
func auditRole(t *testing.T) *rbacv1.Role {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "deploy", "rbac", "audit-csi-role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	r := &rbacv1.Role{}
	if err := yaml.UnmarshalStrict(b, r); err != nil {
		t.Fatalf("deploy/rbac/audit-csi-role.yaml: %v", err)
	}
	return r
}

// instantFreezer stands in for an engine: the audit reads what the driver records, and a
// crash-consistent snapshot's recovery point is the storage's cut, whatever the engine did.
type instantFreezer struct{ at time.Time }

func (instantFreezer) Freeze(context.Context) error { return nil }
func (f instantFreezer) Thaw(context.Context) (*engine.Frozen, error) {
	return &engine.Frozen{StartedAt: f.at, EndedAt: f.at}, nil
}
func (instantFreezer) Close(context.Context) error { return nil }

// takeCSIAt takes a snapshot of target with the csi driver itself against the real API server,
// while playing the snapshot controller: the storage reports the cut at `at` (status.creationTime)
// and the snapshot ready with restoreSize size. Backdating the cut is how a test gets an old
// snapshot without waiting.
func takeCSIAt(t *testing.T, ctx context.Context, k *harness.Kube, ns, target string, at time.Time, size string) *snapshot.Metadata {
	t.Helper()
	client := k.Snapshots.SnapshotV1().VolumeSnapshots(ns)
	q := resource.MustParse(size)
	// Stopped by a flag, not by cancelling: a request cancelled mid-flight makes client-go log.
	var stopped atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stopped.Load() && ctx.Err() == nil {
			l, err := client.List(ctx, metav1.ListOptions{LabelSelector: csi.LabelTarget + "=" + target})
			if err == nil {
				for i := range l.Items {
					vs := &l.Items[i]
					if vs.Status != nil {
						continue
					}
					vs.Status = &snapshotv1.VolumeSnapshotStatus{
						CreationTime: &metav1.Time{Time: at}, ReadyToUse: new(true), RestoreSize: &q,
						BoundVolumeSnapshotContentName: new("snapcontent-" + string(vs.UID)),
					}
					if _, err := client.UpdateStatus(ctx, vs, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil {
						t.Logf("controller: status of %s: %v", vs.Name, err)
					}
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	defer func() { stopped.Store(true); <-done }()
	d := &csi.Driver{API: k.Snapshots.SnapshotV1(), Namespace: ns, ClassName: "fast", ReadyTimeout: 30 * time.Second,
		Now: func() time.Time { return at }}
	meta, err := d.Create(ctx, csi.CreateRequest{Target: target, Engine: "postgres", Mode: "crash-consistent",
		Volumes: []csi.PVC{{Role: csi.RoleData, Name: target + "-data"}}, Freezer: instantFreezer{at}})
	if err != nil {
		t.Fatalf("while taking a csi snapshot of %s cut at %s: %v", target, at, err)
	}
	return meta
}

// setReady flips readyToUse of a snapshot's VolumeSnapshots, as a controller would for storage
// that lost them.
func setReady(t *testing.T, ctx context.Context, k *harness.Kube, ns string, m *snapshot.Metadata, ready bool) {
	t.Helper()
	client := k.Snapshots.SnapshotV1().VolumeSnapshots(ns)
	for _, v := range m.Volumes {
		vs, err := client.Get(ctx, v.VolumeSnapshot, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		vs.Status.ReadyToUse = new(ready)
		if _, err := client.UpdateStatus(ctx, vs, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// csiAuditTarget is a target of the audit's firedrill.yaml whose snapshots are VolumeSnapshots.
func csiAuditTarget(name, ns, kubeconfig string) string {
	return fmt.Sprintf(`  - name: %s
    engine: postgres
    connection:
      dsn: "host=/nonexistent"
    snapshot:
      driver: csi
      mode: crash-consistent
      csi:
        namespace: %s
        pvc: %s-data
        className: fast
        kubeconfig: %s
    objectives:
      rpo: 1h
    audit:
      skip: [wal-archiving, copies-3-2-1, drill-recency]
      size:
        history: 3
`, name, ns, name, kubeconfig)
}

// Backup age and size of CSI VolumeSnapshots, through `firedrill audit` against a real
// kube-apiserver, as a ServiceAccount that may only list VolumeSnapshots: fresh snapshots pass;
// a newest snapshot cut 72 h ago fails backup-age as too-old (and a newer one that is not
// readyToUse does not count); a zero restoreSize fails backup-size as zero-byte; half the median
// fails it as size-drop; a namespace the ServiceAccount may not read is exit 3, naming the
// source and the cause.
func TestAuditCSIVolumeSnapshots(t *testing.T) {
	k := harness.StartKube(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	now := time.Now().Truncate(time.Second)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }

	type snap struct {
		ago  time.Duration
		size string
	}
	scenarios := []struct {
		name  string
		snaps []snap
		// then runs after the snapshots are taken, with them oldest first.
		then                   func(t *testing.T, ms []*snapshot.Metadata)
		ageStatus, ageReason   string
		sizeStatus, sizeReason string
		newest                 func(ms []*snapshot.Metadata) string // the snapshot age is judged on
	}{
		{name: "fresh", snaps: []snap{{3 * time.Hour, "8Gi"}, {2 * time.Hour, "8Gi"}, {time.Hour + 5*time.Minute, "8Gi"}, {10 * time.Minute, "8Gi"}},
			ageStatus: "pass", sizeStatus: "pass"},
		{name: "stale", snaps: []snap{{74 * time.Hour, "8Gi"}, {73 * time.Hour, "8Gi"}, {72 * time.Hour, "8Gi"}, {5 * time.Minute, "8Gi"}},
			then:      func(t *testing.T, ms []*snapshot.Metadata) { setReady(t, ctx, k, "stale", ms[3], false) },
			ageStatus: "fail", ageReason: "too-old", sizeStatus: "pass",
			newest: func(ms []*snapshot.Metadata) string { return ms[2].ID }},
		{name: "zero", snaps: []snap{{50 * time.Minute, "8Gi"}, {40 * time.Minute, "8Gi"}, {10 * time.Minute, "0"}},
			ageStatus: "pass", sizeStatus: "fail", sizeReason: "zero-byte",
			newest: func(ms []*snapshot.Metadata) string { return ms[1].ID }},
		{name: "half", snaps: []snap{{50 * time.Minute, "8Gi"}, {40 * time.Minute, "8Gi"}, {30 * time.Minute, "8Gi"}, {10 * time.Minute, "4Gi"}},
			ageStatus: "pass", sizeStatus: "fail", sizeReason: "size-drop"},
	}

	var targets strings.Builder
	taken := map[string][]*snapshot.Metadata{}
	var freshKubeconfig string
	for _, sc := range scenarios {
		kc := writeKubeconfig(t, k.ClientAs(t, sc.name, "firedrill-audit", auditRole(t)))
		if sc.name == "fresh" {
			freshKubeconfig = kc
		}
		targets.WriteString(csiAuditTarget(sc.name, sc.name, kc))
		for _, s := range sc.snaps {
			taken[sc.name] = append(taken[sc.name], takeCSIAt(t, ctx, k, sc.name, sc.name, ago(s.ago), s.size))
		}
		if sc.then != nil {
			sc.then(t, taken[sc.name])
		}
	}
	// The fresh namespace's ServiceAccount has no grant in "locked".
	targets.WriteString(csiAuditTarget("denied", "locked", freshKubeconfig))
	cfg := filepath.Join(t.TempDir(), "firedrill.yaml")
	if err := os.WriteFile(cfg, []byte("targets:\n"+targets.String()+"history:\n  dir: "+t.TempDir()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			r := runCLI(t, ctx, "audit", "--config", cfg, "--target", sc.name, "--output", "json")
			fs := parseAuditJSON(t, r, sc.name)
			want := func(status, reason string) []string {
				if reason == "" {
					return nil
				}
				return []string{reason}
			}
			age := wantAudit(t, fs, "backup-age", sc.ageStatus, want(sc.ageStatus, sc.ageReason)...)
			size := wantAudit(t, fs, "backup-size", sc.sizeStatus, want(sc.sizeStatus, sc.sizeReason)...)
			wantCode := 0
			if sc.ageStatus == "fail" || sc.sizeStatus == "fail" {
				wantCode = 1
			}
			if r.code != wantCode {
				t.Errorf("exit %d, want %d\n%s\n%s", r.code, wantCode, r.stdout, r.stderr)
			}
			ms := taken[sc.name]
			ageRow := sourceRow(t, age)
			newest := ms[len(ms)-1].ID
			if sc.newest != nil {
				newest = sc.newest(ms)
			}
			if ageRow["newest"] != newest || ageRow["where"] != "CSI VolumeSnapshots in namespace "+sc.name {
				t.Errorf("backup-age judged %v at %v, want %s in namespace %s", ageRow["newest"], ageRow["where"], newest, sc.name)
			}
			sizeRow := sourceRow(t, size)
			switch sc.name {
			case "stale":
				if !strings.Contains(age.Message, "is 3d00h old") || !strings.Contains(age.Message, "RPO 1h") {
					t.Errorf("stale: message %q does not give the age against the RPO", age.Message)
				}
				if ageRow["count"] != 3.0 {
					t.Errorf("stale: %v snapshots listed, want 3 (the one not readyToUse is not complete)", ageRow["count"])
				}
			case "zero":
				if sizeRow["newestBytes"] != 0.0 || sizeRow["newest"] != ms[2].ID || !strings.Contains(size.Message, "zero bytes") {
					t.Errorf("zero: size evidence %v, message %q", sizeRow, size.Message)
				}
			case "half":
				if sizeRow["newestBytes"] != float64(4<<30) || sizeRow["medianBytes"] != float64(8<<30) {
					t.Errorf("half: size evidence %v, want 4Gi against a median of 8Gi", sizeRow)
				}
			}
			t.Logf("%s: backup-age %s: %s; backup-size %s: %s", sc.name, age.Status, age.Message, size.Status, size.Message)
		})
	}

	t.Run("table", func(t *testing.T) {
		r := runCLI(t, ctx, "audit", "--config", cfg, "--target", "fresh")
		if r.code != 0 || !strings.Contains(r.stdout, "backup-age") || !strings.Contains(r.stdout, "backup-size") {
			t.Errorf("table: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("not allowed to list", func(t *testing.T) {
		r := runCLI(t, ctx, "audit", "--config", cfg, "--target", "denied", "--output", "json")
		fs := parseAuditJSON(t, r, "denied")
		f := wantAudit(t, fs, "backup-age", "error", "unreadable")
		if r.code != 3 || !strings.Contains(f.Message, "could not read snapshots (CSI VolumeSnapshots in namespace locked)") || !strings.Contains(f.Message, "permissions:") {
			t.Errorf("exit %d, message %q: want 3, naming the source and the cause (permissions)", r.code, f.Message)
		}
	})

	t.Run("every target", func(t *testing.T) {
		r := runCLI(t, ctx, "audit", "--config", cfg, "--output", "json")
		if r.code != 1 {
			t.Errorf("exit %d, want 1 (a check failed, which outranks one that could not run)", r.code)
		}
		for _, sc := range scenarios {
			if fs := parseAuditJSON(t, r, sc.name); len(fs) != 2 {
				t.Errorf("%s: %d findings, want backup-age and backup-size", sc.name, len(fs))
			}
		}
	})
}

// sourceRow is the first (only) source row of an age or size finding's evidence.
func sourceRow(t *testing.T, f auditFindingJSON) map[string]any {
	t.Helper()
	rows, _ := f.Evidence["sources"].([]any)
	if len(rows) != 1 {
		t.Fatalf("%s: evidence sources = %v, want one", f.Check, f.Evidence["sources"])
	}
	row, _ := rows[0].(map[string]any)
	return row
}
