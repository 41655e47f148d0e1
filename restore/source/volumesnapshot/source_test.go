package volumesnapshot

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapfake "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/snapshot/csi"
)

const (
	scratchNS = "firedrill-scratch"
	drillID   = "d1"
	ebs       = "ebs.csi.aws.com"
	handle    = "snap-0abc"
)

// cluster is a fake cluster holding one production backup (data and WAL volumes) with the
// storage classes a drill may pick.
type cluster struct {
	core  *kubefake.Clientset
	snaps *snapfake.Clientset
}

func prodContent(name string, handle string) *snapshotv1.VolumeSnapshotContent {
	rs := int64(5 << 30)
	return &snapshotv1.VolumeSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: snapshotv1.VolumeSnapshotContentSpec{DeletionPolicy: snapshotv1.VolumeSnapshotContentDelete, Driver: ebs,
			VolumeSnapshotClassName: new("ebs-snap"),
			VolumeSnapshotRef:       corev1.ObjectReference{Kind: "VolumeSnapshot", Namespace: prodNS, Name: strings.TrimPrefix(name, "snapcontent-")}},
		Status: &snapshotv1.VolumeSnapshotContentStatus{SnapshotHandle: &handle, ReadyToUse: new(true), RestoreSize: &rs},
	}
}

func storageClass(name, provisioner string, mode storagev1.VolumeBindingMode) *storagev1.StorageClass {
	return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: provisioner, VolumeBindingMode: &mode}
}

func newCluster(extra ...runtime.Object) *cluster {
	snaps := []runtime.Object{
		newVS("bk-data", 1).label(CNPGBackupName, "bk").obj(), prodContent("snapcontent-bk-data", handle),
		newVS("bk-wal", 1).pvc("pg-1-wal").label(CNPGBackupName, "bk").label(CNPGPVCRole, "PG_WAL").obj(), prodContent("snapcontent-bk-wal", handle+"-wal"),
	}
	core := []runtime.Object{
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "pg-1", Namespace: prodNS}, Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: new("gp3")}},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "pg-1-wal", Namespace: prodNS}, Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: new("gp3")}},
		storageClass("gp3", ebs, storagev1.VolumeBindingWaitForFirstConsumer),
		storageClass("fast", ebs, storagev1.VolumeBindingImmediate),
		storageClass("nfs", "nfs.csi.k8s.io", storagev1.VolumeBindingImmediate),
	}
	for _, o := range extra {
		switch o.(type) {
		case *snapshotv1.VolumeSnapshot, *snapshotv1.VolumeSnapshotContent:
			snaps = append(snaps, o)
		default:
			core = append(core, o)
		}
	}
	return &cluster{core: kubefake.NewSimpleClientset(core...), snaps: snapfake.NewSimpleClientset(snaps...)}
}

// snapshotController plays the snapshot controller: a VolumeSnapshot created in the scratch
// namespace on a pre-provisioned content is bound and ready at once (or fails with errMsg).
func (c *cluster) snapshotController(errMsg string) {
	c.snaps.PrependReactor("create", "volumesnapshots", func(a k8stesting.Action) (bool, runtime.Object, error) {
		vs := a.(k8stesting.CreateAction).GetObject().(*snapshotv1.VolumeSnapshot)
		if vs.Namespace != scratchNS {
			return false, nil, nil
		}
		if errMsg != "" {
			vs.Status = &snapshotv1.VolumeSnapshotStatus{Error: &snapshotv1.VolumeSnapshotError{Message: &errMsg}}
			return false, nil, nil
		}
		vs.Status = &snapshotv1.VolumeSnapshotStatus{ReadyToUse: new(true), BoundVolumeSnapshotContentName: vs.Spec.Source.VolumeSnapshotContentName}
		return false, nil, nil
	})
}

// provisioner plays the external provisioner: a PVC is Bound on creation.
func (c *cluster) provisioner() {
	c.core.PrependReactor("create", "persistentvolumeclaims", func(a k8stesting.Action) (bool, runtime.Object, error) {
		a.(k8stesting.CreateAction).GetObject().(*corev1.PersistentVolumeClaim).Status.Phase = corev1.ClaimBound
		return false, nil, nil
	})
}

func (c *cluster) source(class string) *Source {
	return &Source{Snapshots: c.snaps.SnapshotV1(), Core: c.core, Target: "orders", Engine: "postgres", SnapshotNamespace: prodNS,
		Selector: "app=db", ScratchNamespace: scratchNS, StorageClass: class, BindTimeout: 5 * time.Second,
		Now: func() time.Time { return t0 }}
}

func (c *cluster) snapshot(t *testing.T, s *Source, id string) *snapshot.Metadata {
	t.Helper()
	m, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func request(m *snapshot.Metadata) drill.MaterializeRequest {
	return drill.MaterializeRequest{Snapshot: m, DrillID: drillID, Target: "orders", Status: func(string) {}}
}

var drillSelector = metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + ManagedByValue + "," + LabelDrillID + "=" + drillID}

// leftovers lists what of the drill is still in the cluster.
func (c *cluster) leftovers(t *testing.T) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	pvcs, err := c.core.CoreV1().PersistentVolumeClaims(scratchNS).List(ctx, drillSelector)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pvcs.Items {
		out = append(out, "PVC "+p.Name)
	}
	vss, err := c.snaps.SnapshotV1().VolumeSnapshots(scratchNS).List(ctx, drillSelector)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vss.Items {
		out = append(out, "VolumeSnapshot "+v.Name)
	}
	cs, err := c.snaps.SnapshotV1().VolumeSnapshotContents().List(ctx, drillSelector)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range cs.Items {
		out = append(out, "VolumeSnapshotContent "+v.Name)
	}
	return out
}

// productionIntact fails the test if a production object is gone (listed, not read: a test's
// reactor may fail reads).
func (c *cluster) productionIntact(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	have := map[string]bool{}
	cs, err := c.snaps.SnapshotV1().VolumeSnapshotContents().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range cs.Items {
		have["VolumeSnapshotContent "+o.Name] = true
	}
	vss, err := c.snaps.SnapshotV1().VolumeSnapshots(prodNS).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range vss.Items {
		have["VolumeSnapshot "+o.Name] = true
	}
	for _, n := range []string{"VolumeSnapshotContent snapcontent-bk-data", "VolumeSnapshotContent snapcontent-bk-wal", "VolumeSnapshot bk-data", "VolumeSnapshot bk-wal"} {
		if !have[n] {
			t.Errorf("production %s is gone", n)
		}
	}
}

func TestMaterialize(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		class     string
		immediate bool
		wantClass *string
	}{
		{"storage class from the source PVC (WaitForFirstConsumer: no wait for binding)", "", false, new("gp3")},
		{"storage class from config, Immediate: the PVC bound", "fast", true, new("fast")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster()
			c.snapshotController("")
			if tt.immediate {
				c.provisioner()
			}
			s := c.source(tt.class)
			m := c.snapshot(t, s, "bk")
			var said []string
			req := request(m)
			req.Status = func(msg string) { said = append(said, msg) }
			cp, err := s.Materialize(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			for _, role := range []string{"data", "wal"} {
				name := ScratchName(drillID, role)
				prod := "snapcontent-bk-" + role
				wantHandle := handle
				if role == "wal" {
					wantHandle += "-wal"
				}
				content, err := c.snaps.SnapshotV1().VolumeSnapshotContents().Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					t.Fatalf("the Retain copy of %s: %v", prod, err)
				}
				if h := content.Spec.Source.SnapshotHandle; h == nil || *h != wantHandle {
					t.Errorf("%s: spec.source.snapshotHandle %v, want %s (the production content's status.snapshotHandle)", name, h, wantHandle)
				}
				if content.Spec.Source.VolumeHandle != nil {
					t.Errorf("%s: a pre-provisioned copy must not name a volume", name)
				}
				if content.Spec.DeletionPolicy != snapshotv1.VolumeSnapshotContentRetain {
					t.Errorf("%s: deletionPolicy %s, want Retain", name, content.Spec.DeletionPolicy)
				}
				if content.Spec.Driver != ebs {
					t.Errorf("%s: driver %q", name, content.Spec.Driver)
				}
				if ref := content.Spec.VolumeSnapshotRef; ref.Namespace != scratchNS || ref.Name != name {
					t.Errorf("%s: volumeSnapshotRef %s/%s, want %s/%s", name, ref.Namespace, ref.Name, scratchNS, name)
				}
				if content.Annotations["firedrill.io/copy-of"] != prod {
					t.Errorf("%s: annotations %v", name, content.Annotations)
				}
				vs, err := c.snaps.SnapshotV1().VolumeSnapshots(scratchNS).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if n := vs.Spec.Source.VolumeSnapshotContentName; n == nil || *n != name || vs.Spec.Source.PersistentVolumeClaimName != nil {
					t.Errorf("scratch VolumeSnapshot source %+v, want content %s", vs.Spec.Source, name)
				}
				pvc, err := c.core.CoreV1().PersistentVolumeClaims(scratchNS).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				ds := pvc.Spec.DataSource
				if ds == nil || ds.APIGroup == nil || *ds.APIGroup != "snapshot.storage.k8s.io" || ds.Kind != "VolumeSnapshot" || ds.Name != name {
					t.Errorf("PVC %s dataSource %+v, want VolumeSnapshot %s of snapshot.storage.k8s.io", name, ds, name)
				}
				if got := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; got.Cmp(resource.MustParse("10Gi")) < 0 {
					t.Errorf("PVC %s requests %s, less than the restoreSize 10Gi", name, got.String())
				}
				if sc := pvc.Spec.StorageClassName; sc == nil || *sc != *tt.wantClass {
					t.Errorf("PVC %s storage class %v, want %s", name, sc, *tt.wantClass)
				}
				for _, meta := range []metav1.ObjectMeta{content.ObjectMeta, vs.ObjectMeta, pvc.ObjectMeta} {
					if meta.Labels[LabelManagedBy] != ManagedByValue || meta.Labels[LabelDrillID] != drillID || meta.Labels[LabelRole] != RoleScratch ||
						meta.Labels[LabelTarget] != "orders" {
						t.Errorf("%s: labels %v lack firedrill's ownership labels", meta.Name, meta.Labels)
					}
				}
			}
			if len(cp.Volumes) != 2 || cp.Volumes[0] != (drill.Volume{Role: "data", Namespace: scratchNS, Claim: ScratchName(drillID, "data"), Snapshot: ScratchName(drillID, "data")}) {
				t.Errorf("copy volumes %+v", cp.Volumes)
			}
			if len(cp.Findings) != 1 || cp.Findings[0].Status != checks.Pass || cp.Findings[0].Check != drill.SnapshotIntegrityName {
				t.Errorf("findings %+v", cp.Findings)
			}
			if len(cp.Notes) != 1 || !strings.Contains(cp.Notes[0], "crash-consistent") {
				t.Errorf("notes %q: a snapshot without backup label must be said to be crash-consistent", cp.Notes)
			}
			if len(cp.Milestones) == 0 || !cp.Milestones[0].At.Equal(t0) {
				t.Errorf("milestones %+v", cp.Milestones)
			}
			if len(said) == 0 {
				t.Error("Materialize said nothing of what it waits for")
			}
			if err := cp.Release(ctx); err != nil {
				t.Fatal(err)
			}
			if l := c.leftovers(t); len(l) > 0 {
				t.Errorf("Release left %v", l)
			}
			c.productionIntact(t)
		})
	}
}

func TestMaterializeFiles(t *testing.T) {
	c := newCluster(newVS("ol-data", 5).label(csi.LabelSnapshotID, "ol").ann(csi.AnnBackupLabel, b64("START WAL LOCATION: 0/9\n")).obj(),
		prodContent("snapcontent-ol-data", "snap-ol"))
	c.snapshotController("")
	s := c.source("")
	cp, err := s.Materialize(context.Background(), request(c.snapshot(t, s, "ol")))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Release(context.Background())
	if string(cp.Files[postgres.BackupLabelFile]) != "START WAL LOCATION: 0/9\n" || len(cp.Notes) != 0 {
		t.Errorf("files %v notes %q", cp.Files, cp.Notes)
	}
}

func TestMaterializeNoSourceClass(t *testing.T) {
	// The source PVC is gone and no class is configured: the cluster default decides.
	c := newCluster()
	if err := c.core.CoreV1().PersistentVolumeClaims(prodNS).Delete(context.Background(), "pg-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	c.snapshotController("")
	s := c.source("")
	m := c.snapshot(t, s, "bk")
	m.Volumes = m.Volumes[:1]
	cp, err := s.Materialize(context.Background(), request(m))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Release(context.Background())
	pvc, err := c.core.CoreV1().PersistentVolumeClaims(scratchNS).Get(context.Background(), ScratchName(drillID, "data"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pvc.Spec.StorageClassName != nil {
		t.Errorf("storage class %q, want none (the cluster default)", *pvc.Spec.StorageClassName)
	}
}

var (
	grContents = schema.GroupResource{Group: "snapshot.storage.k8s.io", Resource: "volumesnapshotcontents"}
	grSnaps    = schema.GroupResource{Group: "snapshot.storage.k8s.io", Resource: "volumesnapshots"}
	grPVCs     = schema.GroupResource{Resource: "persistentvolumeclaims"}
	grClasses  = schema.GroupResource{Group: "storage.k8s.io", Resource: "storageclasses"}
)

// failOn makes verb on resource fail with err for objects whose name has suffix (any: "").
func failOn(f interface {
	PrependReactor(verb, resource string, fn k8stesting.ReactionFunc)
}, verb, res, suffix string, err error) {
	f.PrependReactor(verb, res, func(a k8stesting.Action) (bool, runtime.Object, error) {
		name := ""
		switch a := a.(type) {
		case k8stesting.CreateAction:
			if o, ok := a.GetObject().(metav1.Object); ok {
				name = o.GetName()
			}
		case k8stesting.GetAction:
			name = a.GetName()
		case k8stesting.DeleteAction:
			name = a.GetName()
		}
		if !strings.HasSuffix(name, suffix) {
			return false, nil, nil
		}
		return true, nil, err
	})
}

func TestMaterializeFailures(t *testing.T) {
	data, wal := ScratchName(drillID, "data"), ScratchName(drillID, "wal")
	tests := []struct {
		name       string
		class      string
		controller bool
		copyErr    string
		setup      func(c *cluster)
		want       []string
		is         func(error) bool
	}{
		{
			name: "content create forbidden", controller: true,
			setup: func(c *cluster) {
				failOn(c.snaps, "create", "volumesnapshotcontents", "", apierrors.NewForbidden(grContents, data, errors.New("RBAC")))
			},
			want: []string{"VolumeSnapshotContent " + data, "snapcontent-bk-data"}, is: apierrors.IsForbidden,
		},
		{
			name: "content create already exists", controller: true,
			setup: func(c *cluster) {
				failOn(c.snaps, "create", "volumesnapshotcontents", "", apierrors.NewAlreadyExists(grContents, data))
			},
			want: []string{"VolumeSnapshotContent " + data}, is: apierrors.IsAlreadyExists,
		},
		{
			name: "snapshot create conflict", controller: true,
			setup: func(c *cluster) {
				failOn(c.snaps, "create", "volumesnapshots", "", apierrors.NewConflict(grSnaps, data, errors.New("changed")))
			},
			want: []string{"VolumeSnapshot " + scratchNS + "/" + data}, is: apierrors.IsConflict,
		},
		{
			name: "snapshot create forbidden", controller: true,
			setup: func(c *cluster) {
				failOn(c.snaps, "create", "volumesnapshots", "", apierrors.NewForbidden(grSnaps, data, errors.New("RBAC")))
			},
			want: []string{"VolumeSnapshot " + scratchNS + "/" + data}, is: apierrors.IsForbidden,
		},
		{
			name: "PVC create server timeout", controller: true,
			setup: func(c *cluster) {
				failOn(c.core, "create", "persistentvolumeclaims", "", apierrors.NewServerTimeout(grPVCs, "create", 2))
			},
			want: []string{"scratch PVC " + scratchNS + "/" + data}, is: apierrors.IsServerTimeout,
		},
		{
			name: "second volume's PVC create forbidden: the first volume's objects go too", controller: true,
			setup: func(c *cluster) {
				failOn(c.core, "create", "persistentvolumeclaims", "-wal", apierrors.NewForbidden(grPVCs, wal, errors.New("quota")))
			},
			want: []string{"scratch PVC " + scratchNS + "/" + wal}, is: apierrors.IsForbidden,
		},
		{
			name: "second volume's content create conflict", controller: true,
			setup: func(c *cluster) {
				failOn(c.snaps, "create", "volumesnapshotcontents", "-wal", apierrors.NewConflict(grContents, wal, errors.New("changed")))
			},
			want: []string{"VolumeSnapshotContent " + wal}, is: apierrors.IsConflict,
		},
		{
			name: "production content unreadable", controller: true,
			setup: func(c *cluster) {
				failOn(c.snaps, "get", "volumesnapshotcontents", "bk-data", apierrors.NewForbidden(grContents, "snapcontent-bk-data", errors.New("RBAC")))
			},
			want: []string{"VolumeSnapshotContent snapcontent-bk-data"}, is: apierrors.IsForbidden,
		},
		{
			name: "storage class unreadable", class: "fast", controller: true,
			setup: func(c *cluster) {
				failOn(c.core, "get", "storageclasses", "", apierrors.NewForbidden(grClasses, "fast", errors.New("RBAC")))
			},
			want: []string{"StorageClass fast", "restore.kubernetes.storageClass"}, is: apierrors.IsForbidden,
		},
		{
			name: "source PVC unreadable", controller: true,
			setup: func(c *cluster) {
				failOn(c.core, "get", "persistentvolumeclaims", "pg-1", apierrors.NewForbidden(grPVCs, "pg-1", errors.New("RBAC")))
			},
			want: []string{"source PVC " + prodNS + "/pg-1", "restore.kubernetes.storageClass"}, is: apierrors.IsForbidden,
		},
		{
			name: "storage class of another driver", class: "nfs", controller: true,
			want: []string{"StorageClass nfs", "nfs.csi.k8s.io", ebs, "restore.kubernetes.storageClass"},
		},
		{
			name: "source PVC's class of another driver", controller: true,
			setup: func(c *cluster) {
				if err := c.core.StorageV1().StorageClasses().Delete(context.Background(), "gp3", metav1.DeleteOptions{}); err != nil {
					panic(err)
				}
				if _, err := c.core.StorageV1().StorageClasses().Create(context.Background(), storageClass("gp3", "disk.csi.azure.com", storagev1.VolumeBindingImmediate), metav1.CreateOptions{}); err != nil {
					panic(err)
				}
			},
			want: []string{"StorageClass gp3", "the source PVC " + prodNS + "/pg-1", "disk.csi.azure.com", ebs},
		},
		{
			name: "the copy never becomes ready", controller: false,
			want: []string{scratchNS + "/" + data, "was not ready", "restore.kubernetes.timeouts.bind"},
		},
		{
			name: "the copy fails", controller: true, copyErr: "snapshot handle not found",
			want: []string{scratchNS + "/" + data, "snapshot handle not found"},
		},
		{
			name: "an Immediate PVC never binds: the provisioner's event is said", class: "fast", controller: true,
			setup: func(c *cluster) {
				_, _ = c.core.CoreV1().Events(scratchNS).Create(context.Background(), &corev1.Event{
					ObjectMeta:     metav1.ObjectMeta{Name: "ev1", Namespace: scratchNS},
					InvolvedObject: corev1.ObjectReference{Kind: "PersistentVolumeClaim", Name: data, Namespace: scratchNS},
					Reason:         "ProvisioningFailed", Message: "rpc error: snapshot snap-0abc not found\n", LastTimestamp: metav1.NewTime(t0),
				}, metav1.CreateOptions{})
			},
			want: []string{"PVC " + scratchNS + "/" + data + " still Pending", "ProvisioningFailed: rpc error: snapshot snap-0abc not found", "restore.kubernetes.timeouts.bind"},
		},
		{
			name: "reading the copy fails", controller: true,
			setup: func(c *cluster) {
				failOn(c.snaps, "get", "volumesnapshots", data, apierrors.NewServerTimeout(grSnaps, "get", 1))
			},
			want: []string{"while reading VolumeSnapshot " + scratchNS + "/" + data}, is: apierrors.IsServerTimeout,
		},
		{
			name: "the production content has no snapshot handle", controller: true,
			setup: func(c *cluster) {
				pc := prodContent("snapcontent-bk-data", handle)
				pc.Status.SnapshotHandle = nil
				if _, err := c.snaps.SnapshotV1().VolumeSnapshotContents().Update(context.Background(), pc, metav1.UpdateOptions{}); err != nil {
					panic(err)
				}
			},
			want: []string{"snapcontent-bk-data", "status.snapshotHandle"},
		},
		{
			name: "the production snapshot is no longer ready", controller: true,
			setup: func(c *cluster) {
				vs := newVS("bk-data", 1).label(CNPGBackupName, "bk").failed("lost").obj()
				if _, err := c.snaps.SnapshotV1().VolumeSnapshots(prodNS).Update(context.Background(), vs, metav1.UpdateOptions{}); err != nil {
					panic(err)
				}
			},
			want: []string{prodNS + "/bk-data cannot be restored", "lost"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster()
			s := c.source(tt.class)
			s.BindTimeout = 300 * time.Millisecond
			m := c.snapshot(t, s, "bk")
			if tt.controller {
				c.snapshotController(tt.copyErr)
			}
			if tt.setup != nil {
				tt.setup(c)
			}
			cp, err := s.Materialize(context.Background(), request(m))
			if err == nil {
				t.Fatal("Materialize succeeded")
			}
			if cp != nil {
				t.Error("a failed Materialize returned a copy")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tt.is != nil && !tt.is(err) {
				t.Errorf("error %v does not wrap the API error", err)
			}
			if l := c.leftovers(t); len(l) > 0 {
				t.Errorf("a failed Materialize left %v", l)
			}
			c.productionIntact(t)
		})
	}
}

func TestMaterializeNoVolumes(t *testing.T) {
	c := newCluster()
	_, err := c.source("").Materialize(context.Background(), request(&snapshot.Metadata{ID: "empty"}))
	if err == nil || !strings.Contains(err.Error(), "names no VolumeSnapshot") {
		t.Fatalf("error %v", err)
	}
}

// An object of the same name that firedrill did not label is not firedrill's to delete.
func TestMaterializeAlreadyExistsLeavesOthersAlone(t *testing.T) {
	data := ScratchName(drillID, "data")
	foreign := &snapshotv1.VolumeSnapshot{ObjectMeta: metav1.ObjectMeta{Name: data, Namespace: scratchNS}}
	c := newCluster(foreign)
	c.snapshotController("")
	s := c.source("")
	_, err := s.Materialize(context.Background(), request(c.snapshot(t, s, "bk")))
	if !apierrors.IsAlreadyExists(err) {
		t.Fatalf("error %v, want AlreadyExists", err)
	}
	if _, err := c.snaps.SnapshotV1().VolumeSnapshots(scratchNS).Get(context.Background(), data, metav1.GetOptions{}); err != nil {
		t.Errorf("the unlabelled VolumeSnapshot %s was deleted: %v", data, err)
	}
	if l := c.leftovers(t); len(l) > 0 {
		t.Errorf("left %v", l)
	}
}

func TestReleaseNeverDeletesADeleteContent(t *testing.T) {
	ctx := context.Background()
	// A content carrying the drill's labels but deletionPolicy Delete: deleting it would delete
	// the storage snapshot.
	trap := prodContent("looks-like-a-copy", "snap-trap")
	trap.Labels = map[string]string{LabelManagedBy: ManagedByValue, LabelDrillID: drillID, LabelRole: RoleScratch}
	c := newCluster(trap)
	c.snapshotController("")
	s := c.source("")
	m := c.snapshot(t, s, "bk")
	cp, err := s.Materialize(ctx, request(m))
	if err != nil {
		t.Fatal(err)
	}
	err = cp.Release(ctx)
	if err == nil || !strings.Contains(err.Error(), "looks-like-a-copy") || !strings.Contains(err.Error(), "deletionPolicy Delete") {
		t.Errorf("Release error %v, want one naming the Delete content", err)
	}
	if _, err := c.snaps.SnapshotV1().VolumeSnapshotContents().Get(ctx, "looks-like-a-copy", metav1.GetOptions{}); err != nil {
		t.Errorf("a Delete content was deleted: %v", err)
	}
	for _, n := range []string{ScratchName(drillID, "data"), ScratchName(drillID, "wal")} {
		if _, err := c.snaps.SnapshotV1().VolumeSnapshotContents().Get(ctx, n, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the Retain copy %s is still there: %v", n, err)
		}
	}
	c.productionIntact(t)
}

func TestDeleteScratch(t *testing.T) {
	ctx := context.Background()
	lbl := map[string]string{LabelManagedBy: ManagedByValue, LabelDrillID: "old", LabelRole: RoleScratch}
	objs := func() (*kubefake.Clientset, *snapfake.Clientset) {
		core := kubefake.NewSimpleClientset(&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: scratchNS, Labels: lbl}})
		retain := prodContent("c-retain", "h")
		retain.Labels, retain.Spec.DeletionPolicy = lbl, snapshotv1.VolumeSnapshotContentRetain
		snaps := snapfake.NewSimpleClientset(&snapshotv1.VolumeSnapshot{ObjectMeta: metav1.ObjectMeta{Name: "v", Namespace: scratchNS, Labels: lbl}}, retain)
		return core, snaps
	}
	sel := metav1.ListOptions{LabelSelector: LabelDrillID + "=old"}
	want := "PersistentVolumeClaim " + scratchNS + "/p,VolumeSnapshot " + scratchNS + "/v,VolumeSnapshotContent c-retain"
	tests := []struct {
		name    string
		dryRun  bool
		setup   func(core *kubefake.Clientset, snaps *snapfake.Clientset)
		done    string
		errWant string
		remain  int
	}{
		{name: "deletes", done: want},
		{name: "dry run lists only", dryRun: true, done: want, remain: 3},
		{name: "a delete forbidden is reported, the rest deleted",
			setup: func(core *kubefake.Clientset, _ *snapfake.Clientset) {
				failOn(core, "delete", "persistentvolumeclaims", "", apierrors.NewForbidden(grPVCs, "p", errors.New("RBAC")))
			},
			done: "VolumeSnapshot " + scratchNS + "/v,VolumeSnapshotContent c-retain", errWant: "while deleting PersistentVolumeClaim " + scratchNS + "/p", remain: 1},
		{name: "a list that fails is reported",
			setup: func(_ *kubefake.Clientset, snaps *snapfake.Clientset) {
				snaps.PrependReactor("list", "volumesnapshotcontents", func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewForbidden(grContents, "", errors.New("RBAC"))
				})
			},
			done: "PersistentVolumeClaim " + scratchNS + "/p,VolumeSnapshot " + scratchNS + "/v", errWant: "while listing scratch VolumeSnapshotContents", remain: 0 /* the content stays, but cannot be listed */},
		{name: "gone in between is not an error",
			setup: func(core *kubefake.Clientset, _ *snapfake.Clientset) {
				failOn(core, "delete", "persistentvolumeclaims", "", apierrors.NewNotFound(grPVCs, "p"))
			},
			done: want, remain: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core, snaps := objs()
			if tt.setup != nil {
				tt.setup(core, snaps)
			}
			done, err := DeleteScratch(ctx, core, snaps.SnapshotV1(), scratchNS, sel, tt.dryRun)
			if got := strings.Join(done, ","); got != tt.done {
				t.Errorf("done %q, want %q", got, tt.done)
			}
			if tt.errWant == "" && err != nil || tt.errWant != "" && (err == nil || !strings.Contains(err.Error(), tt.errWant)) {
				t.Errorf("error %v, want %q", err, tt.errWant)
			}
			remain := 0
			if l, _ := core.CoreV1().PersistentVolumeClaims(scratchNS).List(ctx, sel); l != nil {
				remain += len(l.Items)
			}
			if l, _ := snaps.SnapshotV1().VolumeSnapshots(scratchNS).List(ctx, sel); l != nil {
				remain += len(l.Items)
			}
			if l, _ := snaps.SnapshotV1().VolumeSnapshotContents().List(ctx, sel); l != nil {
				remain += len(l.Items)
			}
			if remain != tt.remain {
				t.Errorf("%d objects remain, want %d", remain, tt.remain)
			}
		})
	}
}
