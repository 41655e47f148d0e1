package csi

import (
	"context"
	"fmt"
	"sync"
	"time"

	groupv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumegroupsnapshot/v1"
	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	"github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/clock"
)

// groupController plays the group snapshot controller with reactors on the fake clientset, on a
// fake clock: each read of a VolumeGroupSnapshot first brings it to what it would be by then —
// cut cutDelay after its creation (status.creationTime, then one member VolumeSnapshot per PVC
// the selector matches, owned by the group, as snapshot-controller v8.7.0 does), ready
// readyDelay after the cut, or failed with errMsg at cutDelay. csitest.GroupController plays
// the same against a real API server, in real time.
type groupController struct {
	cutDelay, readyDelay time.Duration
	errMsg               string
	never                bool // cut, but never ready

	mu      sync.Mutex
	clock   clock.PassiveClock
	kube    *kubefake.Clientset
	created map[string]time.Time
	cutAt   map[string]time.Time
	uids    int
}

var vgsResource = groupv1.SchemeGroupVersion.WithResource("volumegroupsnapshots")

// install adds the controller's reactors to cs; reactors prepended later run first.
func (c *groupController) install(cs *fake.Clientset, kube *kubefake.Clientset, clk clock.PassiveClock) {
	c.mu.Lock()
	c.clock, c.kube, c.created, c.cutAt = clk, kube, map[string]time.Time{}, map[string]time.Time{}
	c.mu.Unlock()
	cs.PrependReactor("create", "volumegroupsnapshots", func(a k8stesting.Action) (bool, runtime.Object, error) {
		vgs := a.(k8stesting.CreateAction).GetObject().(*groupv1.VolumeGroupSnapshot)
		c.mu.Lock()
		c.uids++
		vgs.UID = types.UID(fmt.Sprintf("uid-%d", c.uids)) // the API server's job; the tracker's default reactor stores it
		c.created[vgs.Name] = c.clock.Now()
		c.mu.Unlock()
		return false, nil, nil
	})
	cs.PrependReactor("get", "volumegroupsnapshots", func(a k8stesting.Action) (bool, runtime.Object, error) {
		c.advance(cs, a.GetNamespace(), a.(k8stesting.GetAction).GetName())
		return false, nil, nil
	})
}

// CutAt is when the named group snapshot was cut, on the fake clock (zero if not yet).
func (c *groupController) CutAt(name string) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cutAt[name]
}

func (c *groupController) advance(cs *fake.Clientset, ns, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	created, ok := c.created[name]
	o, err := cs.Tracker().Get(vgsResource, ns, name)
	if !ok || err != nil {
		return
	}
	vgs := o.(*groupv1.VolumeGroupSnapshot).DeepCopy()
	if vgs.DeletionTimestamp != nil {
		return
	}
	age := c.clock.Since(created)
	st := vgs.Status
	if st == nil {
		st = &groupv1.VolumeGroupSnapshotStatus{}
	}
	changed := false
	if c.errMsg != "" && st.Error == nil && age >= c.cutDelay {
		st.Error = &snapshotv1.VolumeSnapshotError{Message: &c.errMsg}
		changed = true
	}
	if c.errMsg == "" && st.CreationTime == nil && age >= c.cutDelay {
		cut := metav1.NewTime(created.Add(c.cutDelay))
		st.CreationTime, st.ReadyToUse = &cut, new(false)
		c.cutAt[name] = cut.Time
		c.createMembers(cs, vgs, cut)
		changed = true
	}
	if c.errMsg == "" && !c.never && st.CreationTime != nil && !*st.ReadyToUse && age >= c.cutDelay+c.readyDelay {
		c.readyMembers(cs, vgs)
		st.ReadyToUse = new(true)
		changed = true
	}
	if changed {
		vgs.Status = st
		_ = cs.Tracker().Update(vgsResource, vgs, ns)
	}
}

// createMembers makes one VolumeSnapshot per selected PVC, cut with the group.
func (c *groupController) createMembers(cs *fake.Clientset, vgs *groupv1.VolumeGroupSnapshot, cut metav1.Time) {
	sel := labels.Set(vgs.Spec.Source.Selector.MatchLabels).String()
	pvcs, err := c.kube.CoreV1().PersistentVolumeClaims(vgs.Namespace).List(context.Background(), metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return
	}
	for _, pvc := range pvcs.Items {
		vs := &snapshotv1.VolumeSnapshot{
			ObjectMeta: metav1.ObjectMeta{
				Name: fmt.Sprintf("snapshot-%s-%s", vgs.Name, pvc.Name), Namespace: vgs.Namespace,
				OwnerReferences: []metav1.OwnerReference{{
					APIVersion: groupv1.SchemeGroupVersion.String(), Kind: "VolumeGroupSnapshot", Name: vgs.Name, UID: vgs.UID,
				}},
			},
			Spec: snapshotv1.VolumeSnapshotSpec{Source: snapshotv1.VolumeSnapshotSource{PersistentVolumeClaimName: new(pvc.Name)}},
			Status: &snapshotv1.VolumeSnapshotStatus{CreationTime: &cut, ReadyToUse: new(false), VolumeGroupSnapshotName: new(vgs.Name),
				BoundVolumeSnapshotContentName: new("snapcontent-" + pvc.Name)},
		}
		_ = cs.Tracker().Create(vsResource, vs, vgs.Namespace)
	}
}

func (c *groupController) readyMembers(cs *fake.Clientset, vgs *groupv1.VolumeGroupSnapshot) {
	o, err := cs.Tracker().List(vsResource, snapshotv1.SchemeGroupVersion.WithKind("VolumeSnapshot"), vgs.Namespace)
	if err != nil {
		return
	}
	for _, vs := range o.(*snapshotv1.VolumeSnapshotList).Items {
		if !memberOf(&vs, vgs) || vs.Status == nil {
			continue
		}
		vs.Status.ReadyToUse = new(true)
		q := resource.MustParse("8Gi")
		vs.Status.RestoreSize = &q
		_ = cs.Tracker().Update(vsResource, &vs, vgs.Namespace)
	}
}
