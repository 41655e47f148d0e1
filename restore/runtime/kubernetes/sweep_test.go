package kubernetes

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapfake "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/firedrill/firedrill/restore/drill"
)

// leftovers of one drill: a throwaway pod, ConfigMap and NetworkPolicy, a scratch PVC and
// VolumeSnapshot, and a Retain content copy, all created age before t0. As in a real kept
// drill, only the throwaway's objects carry the kept label: the source made the scratch
// objects before the drill decided to keep them.
func leftovers(id, target string, age time.Duration, kept bool) (core, snaps []runtime.Object) {
	meta := func(name, ns, role string) metav1.ObjectMeta {
		l := map[string]string{"app.kubernetes.io/managed-by": "firedrill", "firedrill.io/drill-id": id, "firedrill.io/target": target, "firedrill.io/role": role}
		if kept && role == RoleThrowaway {
			l[LabelKept] = "true"
		}
		return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: l, CreationTimestamp: metav1.NewTime(t0.Add(-age))}
	}
	n := "firedrill-" + id
	core = []runtime.Object{
		&corev1.Pod{ObjectMeta: meta(n, scratchNS, RoleThrowaway)},
		&corev1.ConfigMap{ObjectMeta: meta(n, scratchNS, RoleThrowaway)},
		&networkingv1.NetworkPolicy{ObjectMeta: meta(n, scratchNS, RoleThrowaway)},
		&corev1.PersistentVolumeClaim{ObjectMeta: meta(n+"-data", scratchNS, "scratch")},
	}
	snaps = []runtime.Object{
		&snapshotv1.VolumeSnapshot{ObjectMeta: meta(n+"-data", scratchNS, "scratch")},
		&snapshotv1.VolumeSnapshotContent{ObjectMeta: meta(n+"-data", "", "scratch"), Spec: snapshotv1.VolumeSnapshotContentSpec{DeletionPolicy: snapshotv1.VolumeSnapshotContentRetain}},
	}
	return core, snaps
}

// estate holds four drills' leftovers plus production objects no sweep may touch.
func estate() (*kubefake.Clientset, *snapfake.Clientset) {
	var core, snaps []runtime.Object
	for _, d := range []struct {
		id, target string
		age        time.Duration
		kept       bool
	}{
		{"old", "orders", 3 * time.Hour, false},
		{"young", "orders", 10 * time.Minute, false},
		{"kept", "orders", 3 * time.Hour, true},
		{"billing", "billing", 3 * time.Hour, false},
	} {
		c, s := leftovers(d.id, d.target, d.age, d.kept)
		core, snaps = append(core, c...), append(snaps, s...)
	}
	core = append(core,
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "orders-1", Namespace: scratchNS, Labels: map[string]string{"app.kubernetes.io/managed-by": "cloudnative-pg"}}},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "orders-1", Namespace: scratchNS}})
	snaps = append(snaps, &snapshotv1.VolumeSnapshotContent{ObjectMeta: metav1.ObjectMeta{Name: "snapcontent-prod"},
		Spec: snapshotv1.VolumeSnapshotContentSpec{DeletionPolicy: snapshotv1.VolumeSnapshotContentDelete}})
	return kubefake.NewSimpleClientset(core...), snapfake.NewSimpleClientset(snaps...)
}

// remaining lists the drill ids that still have objects, and whether production's are intact.
func remaining(t *testing.T, core *kubefake.Clientset, snaps *snapfake.Clientset) ([]string, bool) {
	t.Helper()
	ctx := context.Background()
	ids := map[string]bool{}
	names := map[string]bool{}
	add := func(m metav1.ObjectMeta, kind string) {
		if id := m.Labels["firedrill.io/drill-id"]; id != "" {
			ids[id] = true
		}
		names[kind+" "+m.Name] = true
	}
	pods, _ := core.CoreV1().Pods(scratchNS).List(ctx, metav1.ListOptions{})
	for _, o := range pods.Items {
		add(o.ObjectMeta, "Pod")
	}
	cms, _ := core.CoreV1().ConfigMaps(scratchNS).List(ctx, metav1.ListOptions{})
	for _, o := range cms.Items {
		add(o.ObjectMeta, "ConfigMap")
	}
	nps, _ := core.NetworkingV1().NetworkPolicies(scratchNS).List(ctx, metav1.ListOptions{})
	for _, o := range nps.Items {
		add(o.ObjectMeta, "NetworkPolicy")
	}
	pvcs, _ := core.CoreV1().PersistentVolumeClaims(scratchNS).List(ctx, metav1.ListOptions{})
	for _, o := range pvcs.Items {
		add(o.ObjectMeta, "PVC")
	}
	vss, _ := snaps.SnapshotV1().VolumeSnapshots(scratchNS).List(ctx, metav1.ListOptions{})
	for _, o := range vss.Items {
		add(o.ObjectMeta, "VolumeSnapshot")
	}
	cs, _ := snaps.SnapshotV1().VolumeSnapshotContents().List(ctx, metav1.ListOptions{})
	for _, o := range cs.Items {
		add(o.ObjectMeta, "VolumeSnapshotContent")
	}
	var out []string
	for id := range ids {
		out = append(out, id)
	}
	slices.Sort(out)
	return out, names["Pod orders-1"] && names["PVC orders-1"] && names["VolumeSnapshotContent snapcontent-prod"]
}

func newRuntime(core *kubefake.Clientset, snaps *snapfake.Clientset) *Runtime {
	return New(Clients{Core: core, Snapshots: snaps.SnapshotV1()}, Options{Namespace: scratchNS, Now: func() time.Time { return t0 }})
}

func TestGC(t *testing.T) {
	now := func() time.Time { return t0 }
	tests := []struct {
		name    string
		opts    GCOptions
		removed []string // drill ids whose objects are listed
		remain  []string
	}{
		{"older than 2h: young and kept drills stay", GCOptions{OlderThan: 2 * time.Hour, Now: now}, []string{"billing", "old"}, []string{"kept", "young"}},
		{"dry run deletes nothing", GCOptions{OlderThan: 2 * time.Hour, DryRun: true, Now: now}, []string{"billing", "old"}, []string{"billing", "kept", "old", "young"}},
		{"include kept", GCOptions{OlderThan: 2 * time.Hour, IncludeKept: true, Now: now}, []string{"billing", "kept", "old"}, []string{"young"}},
		{"one target", GCOptions{Target: "orders", OlderThan: 2 * time.Hour, Now: now}, []string{"old"}, []string{"billing", "kept", "young"}},
		{"no age limit", GCOptions{Now: now}, []string{"billing", "old", "young"}, []string{"kept"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core, snaps := estate()
			done, err := newRuntime(core, snaps).GC(context.Background(), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, id := range tt.removed {
				n := "firedrill-" + id
				want = append(want, "Pod "+scratchNS+"/"+n, "ConfigMap "+scratchNS+"/"+n, "NetworkPolicy "+scratchNS+"/"+n,
					"PersistentVolumeClaim "+scratchNS+"/"+n+"-data", "VolumeSnapshot "+scratchNS+"/"+n+"-data", "VolumeSnapshotContent "+n+"-data")
			}
			slices.Sort(want)
			slices.Sort(done)
			if !slices.Equal(done, want) {
				t.Errorf("GC said\n%s\nwant\n%s", strings.Join(done, "\n"), strings.Join(want, "\n"))
			}
			left, intact := remaining(t, core, snaps)
			if !slices.Equal(left, tt.remain) {
				t.Errorf("drills left %v, want %v", left, tt.remain)
			}
			if !intact {
				t.Error("a sweep touched production's objects")
			}
		})
	}
}

// SweepTarget is GC for one target: a drill's own sweep (zero options) takes every dead
// drill's objects whatever their age and leaves kept ones; gc passes its options through.
func TestSweepTarget(t *testing.T) {
	tests := []struct {
		name   string
		opts   drill.GCOptions
		swept  []string // drill ids whose objects are listed
		remain []string
	}{
		{"a drill's own sweep", drill.GCOptions{}, []string{"old", "young"}, []string{"billing", "kept"}},
		{"gc --older-than 2h", drill.GCOptions{OlderThan: 2 * time.Hour}, []string{"old"}, []string{"billing", "kept", "young"}},
		{"gc --include-kept", drill.GCOptions{IncludeKept: true}, []string{"kept", "old", "young"}, []string{"billing"}},
		{"gc --include-kept --dry-run", drill.GCOptions{IncludeKept: true, DryRun: true}, []string{"kept", "old", "young"}, []string{"billing", "kept", "old", "young"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core, snaps := estate()
			done, err := newRuntime(core, snaps).SweepTarget(context.Background(), "orders", tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			ids := map[string]bool{}
			for _, what := range done {
				name := what[strings.LastIndexAny(what, " /")+1:]
				ids[strings.TrimSuffix(strings.TrimPrefix(name, "firedrill-"), "-data")] = true
			}
			if got := slices.Sorted(maps.Keys(ids)); !slices.Equal(got, tt.swept) || len(done) != 6*len(tt.swept) {
				t.Errorf("swept %v, want the 6 objects of each of %v", done, tt.swept)
			}
			left, intact := remaining(t, core, snaps)
			if !slices.Equal(left, tt.remain) || !intact {
				t.Errorf("left %v (production intact %v), want %v", left, intact, tt.remain)
			}
		})
	}
}

func TestGCErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(core *kubefake.Clientset, snaps *snapfake.Clientset)
		want  string
		// left are the drills that stay because of the error.
		left []string
	}{
		{"a pod delete forbidden: reported, the rest removed",
			func(core *kubefake.Clientset, _ *snapfake.Clientset) {
				core.PrependReactor("delete", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
					if a.(k8stesting.DeleteAction).GetName() == "firedrill-old" {
						return true, nil, apierrors.NewForbidden(grPods, "firedrill-old", errors.New("RBAC"))
					}
					return false, nil, nil
				})
			}, "while deleting Pod " + scratchNS + "/firedrill-old", []string{"kept", "old"}},
		{"listing contents forbidden",
			func(_ *kubefake.Clientset, snaps *snapfake.Clientset) {
				snaps.PrependReactor("list", "volumesnapshotcontents", func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewForbidden(grPods, "", errors.New("RBAC"))
				})
			}, "while listing VolumeSnapshotContents", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core, snaps := estate()
			tt.setup(core, snaps)
			_, err := newRuntime(core, snaps).GC(context.Background(), GCOptions{Now: func() time.Time { return t0 }})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !apierrors.IsForbidden(err) {
				t.Fatalf("error %v, want a Forbidden saying %q", err, tt.want)
			}
			if tt.left != nil {
				left, intact := remaining(t, core, snaps)
				if !slices.Equal(left, tt.left) || !intact {
					t.Errorf("left %v (production intact %v), want %v", left, intact, tt.left)
				}
			}
		})
	}
}

// A drill whose teardown failed half way may leave only a NetworkPolicy (Remove deletes pods,
// then ConfigMaps, then NetworkPolicies) or only a scratch VolumeSnapshot (release deletes the
// Retain contents after the VolumeSnapshots): gc must still find it.
func TestGCFindsLoneLeftovers(t *testing.T) {
	tests := []struct {
		name string
		keep func(o runtime.Object) bool
	}{
		{"only a NetworkPolicy", func(o runtime.Object) bool { _, ok := o.(*networkingv1.NetworkPolicy); return ok }},
		{"only a scratch VolumeSnapshot", func(o runtime.Object) bool { _, ok := o.(*snapshotv1.VolumeSnapshot); return ok }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, s := leftovers("lone", "orders", 3*time.Hour, false)
			core := kubefake.NewSimpleClientset(slices.DeleteFunc(c, func(o runtime.Object) bool { return !tt.keep(o) })...)
			snaps := snapfake.NewSimpleClientset(slices.DeleteFunc(s, func(o runtime.Object) bool { return !tt.keep(o) })...)
			done, err := newRuntime(core, snaps).GC(context.Background(), GCOptions{OlderThan: time.Hour, Now: func() time.Time { return t0 }})
			if err != nil {
				t.Fatal(err)
			}
			if len(done) != 1 {
				t.Errorf("GC removed %v, want the lone leftover", done)
			}
			if left, _ := remaining(t, core, snaps); len(left) != 0 {
				t.Errorf("left %v", left)
			}
		})
	}
}
