package csi

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	groupv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumegroupsnapshot/v1"
	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	"github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

const testDriver = "test.csi.firedrill.io"

// groupCluster is a fake cluster: the group snapshot API served (or not), PVCs labelled for
// group "shop" and bound to CSI volumes of testDriver, and VolumeGroupSnapshotClasses.
func groupCluster(t *testing.T, served bool, classes ...groupv1.VolumeGroupSnapshotClass) (*fake.Clientset, *kubefake.Clientset) {
	t.Helper()
	var objs []runtime.Object
	for i := range classes {
		objs = append(objs, &classes[i])
	}
	cs := fake.NewSimpleClientset(objs...)
	if served {
		cs.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{{
			GroupVersion: GroupSnapshotGroupVersion,
			APIResources: []metav1.APIResource{{Name: "volumegroupsnapshots", Namespaced: true, Kind: "VolumeGroupSnapshot"}},
		}}
	}
	kube := kubefake.NewSimpleClientset()
	for _, pvc := range []string{"pg-data", "pg-wal", "maria-data"} {
		pvObj := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-" + pvc},
			Spec: corev1.PersistentVolumeSpec{PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: testDriver, VolumeHandle: pvc}}}}
		pvcObj := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: pvc, Namespace: "db", Labels: map[string]string{LabelGroup: "shop"}},
			Spec: corev1.PersistentVolumeClaimSpec{VolumeName: "pv-" + pvc}}
		if _, err := kube.CoreV1().PersistentVolumes().Create(t.Context(), pvObj, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := kube.CoreV1().PersistentVolumeClaims("db").Create(t.Context(), pvcObj, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return cs, kube
}

func groupClass(name, driver string, isDefault bool) groupv1.VolumeGroupSnapshotClass {
	c := groupv1.VolumeGroupSnapshotClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Driver: driver, DeletionPolicy: snapshotv1.VolumeSnapshotContentDelete}
	if isDefault {
		c.Annotations = map[string]string{AnnDefaultGroupClass: "true"}
	}
	return c
}

func groupDriver(cs *fake.Clientset, kube *kubefake.Clientset) *GroupDriver {
	return &GroupDriver{API: cs.GroupsnapshotV1(), Snapshots: cs.SnapshotV1(), Discovery: cs.Discovery(), Volumes: kube.CoreV1(),
		Namespace: "db", Selector: map[string]string{LabelGroup: "shop"}, ReadyTimeout: 2 * time.Second, Poll: time.Millisecond, MaxPoll: 5 * time.Millisecond}
}

var pvcs = []string{"pg-data", "pg-wal", "maria-data"}

func TestGroupDetect(t *testing.T) {
	boom := errors.New("etcdserver: leader changed")
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "persistentvolumes"}, "pv-pg-data", errors.New("RBAC"))
	cases := []struct {
		name      string
		served    bool
		classes   []groupv1.VolumeGroupSnapshotClass
		className string
		react     func(*fake.Clientset, *kubefake.Clientset)
		pvcs      []string
		wantClass string
		wantWhy   string
		wantErr   error
	}{
		{name: "one class of the volumes' driver", served: true, classes: []groupv1.VolumeGroupSnapshotClass{groupClass("other", "other.csi", false), groupClass("group", testDriver, false)}, wantClass: "group"},
		{name: "several, one default", served: true, classes: []groupv1.VolumeGroupSnapshotClass{groupClass("a", testDriver, false), groupClass("b", testDriver, true)}, wantClass: "b"},
		{name: "several, none default", served: true, classes: []groupv1.VolumeGroupSnapshotClass{groupClass("a", testDriver, false), groupClass("b", testDriver, false)}, wantWhy: "set groups[].csi.groupSnapshotClassName"},
		{name: "API not served", served: false, wantWhy: "does not serve groupsnapshot.storage.k8s.io/v1"},
		{name: "no class for the driver", served: true, classes: []groupv1.VolumeGroupSnapshotClass{groupClass("other", "other.csi", false)}, wantWhy: "no VolumeGroupSnapshotClass for CSI driver " + testDriver},
		{name: "explicit class: no PV or class read", served: true, className: "mine", wantClass: "mine", react: func(cs *fake.Clientset, kube *kubefake.Clientset) {
			kube.PrependReactor("get", "persistentvolumes", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, boom })
			cs.PrependReactor("list", "volumegroupsnapshotclasses", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, boom })
		}},
		{name: "PVC without the selector's label", served: true, classes: []groupv1.VolumeGroupSnapshotClass{groupClass("group", testDriver, false)}, react: func(_ *fake.Clientset, kube *kubefake.Clientset) {
			pvc, _ := kube.CoreV1().PersistentVolumeClaims("db").Get(context.Background(), "pg-wal", metav1.GetOptions{})
			pvc.Labels = nil
			_, _ = kube.CoreV1().PersistentVolumeClaims("db").Update(context.Background(), pvc, metav1.UpdateOptions{})
		}, wantWhy: "kubectl -n db label pvc pg-wal firedrill.io/group=shop"},
		{name: "reading PVs forbidden", served: true, classes: []groupv1.VolumeGroupSnapshotClass{groupClass("group", testDriver, false)}, react: func(_ *fake.Clientset, kube *kubefake.Clientset) {
			kube.PrependReactor("get", "persistentvolumes", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, forbidden })
		}, wantWhy: "snapshot-group-csi-clusterrole.yaml"},
		{name: "two drivers", served: true, classes: []groupv1.VolumeGroupSnapshotClass{groupClass("group", testDriver, false)}, react: func(_ *fake.Clientset, kube *kubefake.Clientset) {
			pv, _ := kube.CoreV1().PersistentVolumes().Get(context.Background(), "pv-maria-data", metav1.GetOptions{})
			pv.Spec.CSI.Driver = "other.csi"
			_, _ = kube.CoreV1().PersistentVolumes().Update(context.Background(), pv, metav1.UpdateOptions{})
		}, wantWhy: "two CSI drivers"},
		{name: "PVC read fails: an error, not a fallback", served: true, react: func(_ *fake.Clientset, kube *kubefake.Clientset) {
			kube.PrependReactor("get", "persistentvolumeclaims", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, boom })
		}, wantErr: boom},
		{name: "missing PVC", served: true, pvcs: []string{"pg-data", "nope"}, wantWhy: "PVC db/nope does not exist"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cs, kube := groupCluster(t, tc.served, tc.classes...)
			if tc.react != nil {
				tc.react(cs, kube)
			}
			g := groupDriver(cs, kube)
			g.ClassName = tc.className
			p := pvcs
			if tc.pvcs != nil {
				p = tc.pvcs
			}
			sup, err := g.Detect(t.Context(), p)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sup.Supported != (tc.wantClass != "") || sup.ClassName != tc.wantClass || !strings.Contains(sup.Reason, tc.wantWhy) {
				t.Errorf("Detect = %+v, want class %q, reason containing %q", sup, tc.wantClass, tc.wantWhy)
			}
		})
	}
}

func groupRequest(fs ...*fakeFreezer) GroupRequest {
	return GroupRequest{Group: "shop", BatchID: "20260101T000000Z-abcdef", ClassName: "group", Members: []GroupMember{
		{Target: "orders", Engine: "postgres", Mode: "online", Freezer: fs[0], Volumes: []PVC{{Role: RoleData, Name: "pg-data"}, {Role: RoleWAL, Name: "pg-wal"}},
			Attributes: map[string]string{"serverVersion": "15.18"}},
		{Target: "shop", Engine: "mariadb", Mode: "online", Freezer: fs[1], Volumes: []PVC{{Role: RoleData, Name: "maria-data"}},
			Attributes: map[string]string{"serverVersion": "10.11.6-MariaDB"}},
	}}
}

func TestGroupCreateOneCutThawsAtCut(t *testing.T) {
	cs, kube := groupCluster(t, true, groupClass("group", testDriver, false))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	clk := newClock()
	// readyToUse comes 1.5 s after the cut, on the fake clock: a thaw within the 50 ms poll cap
	// of the frozen wait proves the members thaw at the cut, not at readyToUse.
	ctrl := &groupController{cutDelay: 30 * time.Millisecond, readyDelay: 1500 * time.Millisecond}
	ctrl.install(cs, kube, clk)
	a, b := &fakeFreezer{clock: clk}, &fakeFreezer{clock: clk}
	var frozenAtCreate atomic.Bool
	cs.PrependReactor("create", "volumegroupsnapshots", func(k8stesting.Action) (bool, runtime.Object, error) {
		frozenAtCreate.Store(a.isFrozen() && b.isFrozen())
		return false, nil, nil
	})
	g := groupDriver(cs, kube)
	g.Clock = clk
	res, err := g.Create(ctx, groupRequest(a, b))
	if err != nil {
		t.Fatal(err)
	}
	if !frozenAtCreate.Load() {
		t.Error("the VolumeGroupSnapshot was created before every member was frozen")
	}
	cut := ctrl.CutAt(res.VolumeGroupSnapshot)
	for _, f := range []*fakeFreezer{a, b} {
		if f.thawedAt.Before(cut) {
			t.Errorf("a member thawed at %s, before the cut at %s", f.thawedAt, cut)
		}
		if lag := f.thawedAt.Sub(cut); lag > 50*time.Millisecond {
			t.Errorf("a member thawed %s after the cut: more than the 50 ms poll cap while frozen", lag)
		}
		if got := strings.Join(f.calls, ","); got != "freeze,thaw,close" {
			t.Errorf("calls %s", got)
		}
	}
	if ready := clk.Since(cut); ready < 1500*time.Millisecond {
		t.Errorf("Create returned %s after the cut, before readyToUse (1.5 s)", ready)
	}
	vgs, err := cs.GroupsnapshotV1().VolumeGroupSnapshots("db").Get(ctx, res.VolumeGroupSnapshot, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := vgs.Spec.Source.Selector.MatchLabels; len(got) != 1 || got[LabelGroup] != "shop" || *vgs.Spec.VolumeGroupSnapshotClassName != "group" {
		t.Errorf("VolumeGroupSnapshot spec %+v", vgs.Spec)
	}
	if len(res.Snapshots) != 2 || len(res.Snapshots[0].Volumes) != 2 || len(res.Snapshots[1].Volumes) != 1 || len(res.Extra) != 0 {
		t.Fatalf("result %+v", res)
	}
	for _, m := range res.Snapshots {
		if !m.TakenAt.Equal(res.CutAt) && m.Engine != "postgres" {
			t.Errorf("%s taken at %s, want the group's cut %s", m.Target, m.TakenAt, res.CutAt)
		}
		if m.BatchID != "20260101T000000Z-abcdef" || m.SizeBytes != int64(len(m.Volumes))*8<<30 || m.Attributes["volumeGroupSnapshot"] != res.VolumeGroupSnapshot {
			t.Errorf("%s metadata %+v", m.Target, m)
		}
		for _, v := range m.Volumes {
			vs, err := cs.SnapshotV1().VolumeSnapshots("db").Get(ctx, v.VolumeSnapshot, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if *vs.Spec.Source.PersistentVolumeClaimName != v.PVC || vs.Labels[LabelTarget] != m.Target || vs.Labels[LabelSnapshotID] != m.ID ||
				vs.Labels[LabelVolume] != v.Role || vs.Labels[LabelVolumeGroupSnapshot] != res.VolumeGroupSnapshot || vs.Annotations[AnnFrozenSeconds] == "" {
				t.Errorf("member %s: labels %v annotations %v", vs.Name, vs.Labels, vs.Annotations)
			}
		}
		// Listing sees a group member's snapshot as any other.
		d := &Driver{API: cs.SnapshotV1(), Groups: cs.GroupsnapshotV1(), Namespace: "db"}
		got, err := d.List(ctx, m.Target)
		if err != nil || len(got) != 1 || got[0].ID != m.ID || string(got[0].EngineFiles["backup_label"]) == "" {
			t.Fatalf("List(%s) = %+v, %v", m.Target, got, err)
		}
	}

	// Retention deletes one target's snapshot: the group stays for the other member; when the
	// last member goes, the group goes too.
	d := &Driver{API: cs.SnapshotV1(), Groups: cs.GroupsnapshotV1(), Namespace: "db"}
	if err := d.Delete(ctx, res.Snapshots[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.GroupsnapshotV1().VolumeGroupSnapshots("db").Get(ctx, res.VolumeGroupSnapshot, metav1.GetOptions{}); err != nil {
		t.Errorf("the group snapshot went with its first member: %v", err)
	}
	if err := d.Delete(ctx, res.Snapshots[1].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.GroupsnapshotV1().VolumeGroupSnapshots("db").Get(ctx, res.VolumeGroupSnapshot, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the group snapshot outlived its last member: %v", err)
	}
}

type ctrlSpec struct {
	cut    time.Duration
	errMsg string
	never  bool
}

// Every failure thaws every member before returning and leaves no VolumeGroupSnapshot and no
// VolumeSnapshot.
func TestGroupCreateFailuresThawAllAndCleanUp(t *testing.T) {
	boom := errors.New("etcdserver: request timed out")
	refuse := func(verb, resource string) func(*fake.Clientset, *kubefake.Clientset, context.CancelFunc) {
		return func(cs *fake.Clientset, _ *kubefake.Clientset, _ context.CancelFunc) {
			cs.PrependReactor(verb, resource, func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, boom })
		}
	}
	isBoom := func(err error) bool { return errors.Is(err, boom) }
	cases := []struct {
		name  string
		react func(*fake.Clientset, *kubefake.Clientset, context.CancelFunc)
		ctrl  ctrlSpec
		fail  int // index of a member whose freeze fails
		want  func(error) bool
	}{
		{name: "create refused", react: refuse("create", "volumegroupsnapshots"), want: isBoom},
		{name: "get fails while waiting for the cut", react: refuse("get", "volumegroupsnapshots"), ctrl: ctrlSpec{cut: time.Hour}, want: isBoom},
		{name: "status.error", ctrl: ctrlSpec{cut: 5 * time.Millisecond, errMsg: "rpc error: code = FailedPrecondition desc = volumes not in one consistency group"},
			want: func(err error) bool {
				return errors.Is(err, ErrSnapshotFailed) && strings.Contains(err.Error(), "rpc error: code = FailedPrecondition desc = volumes not in one consistency group")
			}},
		{name: "never ready", ctrl: ctrlSpec{cut: 5 * time.Millisecond, never: true}, want: func(err error) bool { return errors.Is(err, ErrNotReady) }},
		{name: "labelling a member fails", react: refuse("patch", "volumesnapshots"), ctrl: ctrlSpec{cut: 5 * time.Millisecond}, want: isBoom},
		{name: "a member's freeze fails", fail: 2, want: isBoom},
		{name: "the selector misses a PVC", react: func(_ *fake.Clientset, kube *kubefake.Clientset, _ context.CancelFunc) {
			pvc, _ := kube.CoreV1().PersistentVolumeClaims("db").Get(context.Background(), "pg-wal", metav1.GetOptions{})
			pvc.Labels = nil
			_, _ = kube.CoreV1().PersistentVolumeClaims("db").Update(context.Background(), pvc, metav1.UpdateOptions{})
		}, ctrl: ctrlSpec{cut: 5 * time.Millisecond}, want: func(err error) bool {
			return errors.Is(err, ErrGroupMembers) && strings.Contains(err.Error(), "pg-wal")
		}},
		{name: "cancelled while waiting for the cut", react: func(cs *fake.Clientset, _ *kubefake.Clientset, cancel context.CancelFunc) {
			cs.PrependReactor("create", "volumegroupsnapshots", func(k8stesting.Action) (bool, runtime.Object, error) {
				cancel()
				return false, nil, nil
			})
		}, ctrl: ctrlSpec{cut: time.Hour}, want: func(err error) bool { return errors.Is(err, context.Canceled) }},
	}
	runs := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for range 5 {
				runs++
				cs, kube := groupCluster(t, true, groupClass("group", testDriver, false))
				ctx, cancel := context.WithCancel(t.Context())
				clk := newClock()
				(&groupController{cutDelay: tc.ctrl.cut, errMsg: tc.ctrl.errMsg, never: tc.ctrl.never}).install(cs, kube, clk)
				if tc.react != nil {
					tc.react(cs, kube, cancel)
				}
				fs := []*fakeFreezer{{clock: clk}, {clock: clk}}
				if tc.fail > 0 {
					fs[tc.fail-1].freezeFn = func() error { return boom }
				}
				g := groupDriver(cs, kube)
				g.Clock = clk
				g.ReadyTimeout = 100 * time.Millisecond
				_, err := g.Create(ctx, groupRequest(fs...))
				cancel()
				if err == nil || !tc.want(err) {
					t.Fatalf("err = %v", err)
				}
				for i, f := range fs {
					if f.isFrozen() || f.calls[len(f.calls)-1] != "close" {
						t.Errorf("member %d left frozen: calls %v", i, f.calls)
					}
				}
				// The tracker is the fake's storage, below any injected fault.
				vss, err := cs.Tracker().List(snapshotv1.SchemeGroupVersion.WithResource("volumesnapshots"), snapshotv1.SchemeGroupVersion.WithKind("VolumeSnapshot"), "db")
				if err != nil {
					t.Fatal(err)
				}
				vgss, err := cs.Tracker().List(groupv1.SchemeGroupVersion.WithResource("volumegroupsnapshots"), groupv1.SchemeGroupVersion.WithKind("VolumeGroupSnapshot"), "db")
				if err != nil {
					t.Fatal(err)
				}
				if n, m := len(vss.(*snapshotv1.VolumeSnapshotList).Items), len(vgss.(*groupv1.VolumeGroupSnapshotList).Items); n+m != 0 {
					t.Errorf("%d VolumeSnapshots and %d VolumeGroupSnapshots left", n, m)
				}
			}
		})
	}
	t.Logf("%d injected-fault group runs, every member thawed, nothing left", runs)
}
