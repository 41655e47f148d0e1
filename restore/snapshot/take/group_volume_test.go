package take

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	groupv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumegroupsnapshot/v1"
	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	"github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	fakediscovery "k8s.io/client-go/discovery/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"

	"github.com/firedrill/firedrill/restore/snapshot/csi"
	"github.com/firedrill/firedrill/restore/snapshot/csi/csitest"
)

// vgsCluster is a fake cluster serving the group snapshot API, with a PVC "<member>-data" per
// member, labelled for group "shop" and bound to a volume of driver test.csi, and the given
// VolumeGroupSnapshotClasses.
func vgsCluster(t *testing.T, names []string, classes ...string) (*fake.Clientset, *kubefake.Clientset) {
	t.Helper()
	var objs []runtime.Object
	for _, c := range classes {
		objs = append(objs, &groupv1.VolumeGroupSnapshotClass{ObjectMeta: metav1.ObjectMeta{Name: c}, Driver: "test.csi", DeletionPolicy: snapshotv1.VolumeSnapshotContentDelete})
	}
	cs := fake.NewSimpleClientset(objs...)
	cs.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{{
		GroupVersion: csi.GroupSnapshotGroupVersion, APIResources: []metav1.APIResource{{Name: "volumegroupsnapshots", Namespaced: true}},
	}}
	kube := kubefake.NewSimpleClientset()
	for _, n := range names {
		pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-" + n},
			Spec: corev1.PersistentVolumeSpec{PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: "test.csi", VolumeHandle: n}}}}
		pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: n + "-data", Namespace: "db", Labels: map[string]string{csi.LabelGroup: "shop"}},
			Spec: corev1.PersistentVolumeClaimSpec{VolumeName: "pv-" + n}}
		_, _ = kube.CoreV1().PersistentVolumes().Create(t.Context(), pv, metav1.CreateOptions{})
		_, _ = kube.CoreV1().PersistentVolumeClaims("db").Create(t.Context(), pvc, metav1.CreateOptions{})
	}
	return cs, kube
}

func vgsDriver(cs *fake.Clientset, kube *kubefake.Clientset) *csi.GroupDriver {
	return &csi.GroupDriver{API: cs.GroupsnapshotV1(), Snapshots: cs.SnapshotV1(), Discovery: cs.Discovery(), Volumes: kube.CoreV1(),
		Selector: map[string]string{csi.LabelGroup: "shop"}, Poll: time.Millisecond, MaxPoll: 2 * time.Millisecond, ReadyTimeout: time.Second}
}

func countLeft(t *testing.T, cs *fake.Clientset) (vss, vgss int) {
	t.Helper()
	o, err := cs.Tracker().List(groupv1.SchemeGroupVersion.WithResource("volumegroupsnapshots"), groupv1.SchemeGroupVersion.WithKind("VolumeGroupSnapshot"), "db")
	if err != nil {
		t.Fatal(err)
	}
	return leftover(t, cs), len(o.(*groupv1.VolumeGroupSnapshotList).Items)
}

func TestTakeGroupWithVolumeGroupSnapshot(t *testing.T) {
	names := []string{"a", "b", "c"}
	cases := []struct {
		name       string
		classes    []string
		mode       string
		wantMethod string
		wantWhy    string
		wantErr    error
	}{
		{name: "supported: one atomic cut", classes: []string{"group"}, wantMethod: MethodVolumeGroupSnapshot},
		{name: "no class for the driver: freeze-all", wantMethod: MethodFreezeAll, wantWhy: "no VolumeGroupSnapshotClass for CSI driver test.csi"},
		{name: "disabled: freeze-all", classes: []string{"group"}, mode: VolumeGroupDisabled, wantMethod: MethodFreezeAll},
		{name: "required but unsupported", mode: VolumeGroupRequired, wantErr: ErrUnsupported},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cs, kube := vgsCluster(t, names, tc.classes...)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			ctrl := &csitest.GroupController{Snapshots: cs, Kube: kube, Namespace: "db", CutDelay: 10 * time.Millisecond, ReadyDelay: 10 * time.Millisecond}
			go ctrl.Run(ctx)
			go cutter(ctx, cs, "")
			j := &journal{}
			ms, fs := members(cs, j, names...)
			res, err := TakeGroupWith(ctx, GroupOptions{Name: "shop", Members: ms, MaxFreeze: 5 * time.Second, VolumeGroup: vgsDriver(cs, kube), VolumeGroupSnapshot: tc.mode})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Method != tc.wantMethod || !strings.Contains(res.Fallback, tc.wantWhy) || (tc.wantWhy == "") != (res.Fallback == "") {
				t.Errorf("method %q fallback %q, want %q and %q", res.Method, res.Fallback, tc.wantMethod, tc.wantWhy)
			}
			if len(res.Snapshots) != 3 {
				t.Fatalf("%d snapshots", len(res.Snapshots))
			}
			for i, s := range res.Snapshots {
				if s.BatchID != res.BatchID || s.Target != names[i] {
					t.Errorf("snapshot %d: %s of batch %s", i, s.Target, s.BatchID)
				}
				if tc.wantMethod == MethodVolumeGroupSnapshot && s.Attributes["volumeGroupSnapshot"] != res.VolumeGroupSnapshot {
					t.Errorf("%s not recorded as cut by %s: %v", s.Target, res.VolumeGroupSnapshot, s.Attributes)
				}
			}
			lastFreeze, firstThaw := -1, len(j.events)
			for i, e := range j.events {
				if strings.HasPrefix(e, "freeze") {
					lastFreeze = i
				} else if i < firstThaw {
					firstThaw = i
				}
			}
			if lastFreeze > firstThaw {
				t.Errorf("a member thawed before every member froze: %v", j.events)
			}
			for _, f := range fs {
				if f.isFrozen() {
					t.Errorf("%s left frozen", f.name)
				}
			}
			if res.FrozenSeconds <= 0 || res.FrozenSeconds > 5 {
				t.Errorf("frozen %v s", res.FrozenSeconds)
			}
		})
	}
}

// A group snapshot whose cut never comes is bounded by the group's maxFreeze: every member is
// thawed, and the VolumeGroupSnapshot deleted.
func TestTakeGroupWithVolumeGroupSnapshotFreezeBound(t *testing.T) {
	names := []string{"a", "b"}
	for range 10 {
		cs, kube := vgsCluster(t, names, "group")
		ctx, cancel := context.WithCancel(t.Context())
		go (&csitest.GroupController{Snapshots: cs, Kube: kube, Namespace: "db", CutDelay: time.Hour}).Run(ctx)
		ms, fs := members(cs, &journal{}, names...)
		start := time.Now()
		res, err := TakeGroupWith(ctx, GroupOptions{Name: "shop", Members: ms, MaxFreeze: 100 * time.Millisecond, VolumeGroup: vgsDriver(cs, kube)})
		cancel()
		if !errors.Is(err, ErrGroupFailed) || !errors.Is(err, ErrFreezeTimeout) || res == nil || res.Method != MethodVolumeGroupSnapshot {
			t.Fatalf("err = %v, result %+v", err, res)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %s for a 100 ms bound", d)
		}
		for _, f := range fs {
			if f.isFrozen() {
				t.Errorf("%s left frozen", f.name)
			}
		}
		if vss, vgss := countLeft(t, cs); vss+vgss != 0 {
			t.Errorf("%d VolumeSnapshots and %d VolumeGroupSnapshots left", vss, vgss)
		}
	}
}

func TestVolumeGroupDecision(t *testing.T) {
	cs, kube := vgsCluster(t, []string{"a", "b"}, "group")
	ms, _ := members(cs, &journal{}, "a", "b")
	other := *ms[1].CSI
	other.Namespace = "elsewhere"
	ms[1].CSI = &other
	_, _, why, err := volumeGroup(t.Context(), GroupOptions{Name: "shop", Members: ms, VolumeGroup: vgsDriver(cs, kube)})
	if err != nil || !strings.Contains(why, "namespace elsewhere") {
		t.Errorf("members in two namespaces: why %q, err %v", why, err)
	}
	ms[1].CSI = nil
	_, _, why, err = volumeGroup(t.Context(), GroupOptions{Name: "shop", Members: ms, VolumeGroup: vgsDriver(cs, kube)})
	if err != nil || !strings.Contains(why, "member b uses driver local") {
		t.Errorf("a local member: why %q, err %v", why, err)
	}
	_, _, _, err = volumeGroup(t.Context(), GroupOptions{Name: "shop", Members: ms, VolumeGroupSnapshot: VolumeGroupRequired})
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("required without a group driver: err %v", err)
	}
}
