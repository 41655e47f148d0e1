// Package csitest plays the external-snapshotter group snapshot controller for tests, over any
// snapshot clientset: the generated fake, or a real API server with the CRDs installed (status
// set through the status subresource, as the controller does).
package csitest

import (
	"context"
	"fmt"
	"sync"
	"time"

	groupv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumegroupsnapshot/v1"
	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapshotclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// GroupController cuts each VolumeGroupSnapshot of its namespace CutDelay after it first sees
// it: it sets the group's status.creationTime, then creates one member VolumeSnapshot per PVC
// the selector matches (owned by the group, source = the PVC, as snapshot-controller v8.7.0
// does), and ReadyDelay later sets readyToUse on the members and the group.
type GroupController struct {
	Snapshots            snapshotclient.Interface
	Kube                 kubernetes.Interface
	Namespace            string
	CutDelay, ReadyDelay time.Duration
	// ErrMsg, when set, is reported as the group's status.error instead of a cut.
	ErrMsg string
	// Never leaves the group cut but never ready.
	Never bool
	// OnCut runs just before the cut is reported (the members are still frozen then).
	OnCut func(vgs *groupv1.VolumeGroupSnapshot)
	// Logf reports API errors (t.Logf).
	Logf func(format string, args ...any)

	mu    sync.Mutex
	cutAt map[string]time.Time
}

// CutAt is when the named group snapshot's cut was reported (zero if not yet).
func (c *GroupController) CutAt(name string) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cutAt[name]
}

// Run plays the controller until ctx ends.
func (c *GroupController) Run(ctx context.Context) {
	c.mu.Lock()
	c.cutAt = map[string]time.Time{}
	c.mu.Unlock()
	seen := map[string]time.Time{}
	for ctx.Err() == nil {
		l, err := c.Snapshots.GroupsnapshotV1().VolumeGroupSnapshots(c.Namespace).List(ctx, metav1.ListOptions{})
		if err == nil {
			for i := range l.Items {
				vgs := &l.Items[i]
				first, ok := seen[string(vgs.UID)+vgs.Name]
				if !ok {
					seen[string(vgs.UID)+vgs.Name] = time.Now()
					continue
				}
				if vgs.DeletionTimestamp == nil {
					c.step(ctx, vgs, time.Since(first))
				}
			}
		}
		time.Sleep(3 * time.Millisecond)
	}
}

func (c *GroupController) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}

func (c *GroupController) step(ctx context.Context, vgs *groupv1.VolumeGroupSnapshot, age time.Duration) {
	st := vgs.Status
	if st == nil {
		st = &groupv1.VolumeGroupSnapshotStatus{}
	}
	switch {
	case c.ErrMsg != "" && st.Error == nil && age >= c.CutDelay:
		now := metav1.Now()
		st.Error = &snapshotv1.VolumeSnapshotError{Time: &now, Message: &c.ErrMsg}
	case c.ErrMsg == "" && st.CreationTime == nil && age >= c.CutDelay:
		if c.OnCut != nil {
			c.OnCut(vgs)
		}
		now := metav1.Now()
		st.CreationTime = &now
		st.BoundVolumeGroupSnapshotContentName = new("groupsnapcontent-" + string(vgs.UID))
		st.ReadyToUse = new(false)
		c.mu.Lock()
		c.cutAt[vgs.Name] = time.Now()
		c.mu.Unlock()
		vgs.Status = st
		cur, err := c.Snapshots.GroupsnapshotV1().VolumeGroupSnapshots(c.Namespace).UpdateStatus(ctx, vgs, metav1.UpdateOptions{})
		if err != nil {
			c.logf("fake group snapshot controller: status of %s: %v", vgs.Name, err)
			return
		}
		c.createMembers(ctx, cur, now)
		return
	case c.ErrMsg == "" && !c.Never && st.CreationTime != nil && (st.ReadyToUse == nil || !*st.ReadyToUse) && age >= c.CutDelay+c.ReadyDelay:
		if !c.readyMembers(ctx, vgs) {
			return
		}
		st.ReadyToUse = new(true)
	default:
		return
	}
	vgs.Status = st
	if _, err := c.Snapshots.GroupsnapshotV1().VolumeGroupSnapshots(c.Namespace).UpdateStatus(ctx, vgs, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil {
		c.logf("fake group snapshot controller: status of %s: %v", vgs.Name, err)
	}
}

// createMembers makes one VolumeSnapshot per selected PVC, as snapshot-controller does after the
// CSI driver's CreateVolumeGroupSnapshot.
func (c *GroupController) createMembers(ctx context.Context, vgs *groupv1.VolumeGroupSnapshot, cut metav1.Time) {
	sel := labels.Set(vgs.Spec.Source.Selector.MatchLabels).String()
	pvcs, err := c.Kube.CoreV1().PersistentVolumeClaims(c.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		c.logf("fake group snapshot controller: PVCs of %s: %v", vgs.Name, err)
		return
	}
	for _, pvc := range pvcs.Items {
		vs := &snapshotv1.VolumeSnapshot{
			ObjectMeta: metav1.ObjectMeta{
				Name: fmt.Sprintf("snapshot-%s-%s", vgs.Name, pvc.Name), Namespace: c.Namespace,
				OwnerReferences: []metav1.OwnerReference{{
					APIVersion: groupv1.SchemeGroupVersion.String(), Kind: "VolumeGroupSnapshot", Name: vgs.Name, UID: vgs.UID,
				}},
			},
			Spec: snapshotv1.VolumeSnapshotSpec{Source: snapshotv1.VolumeSnapshotSource{PersistentVolumeClaimName: new(pvc.Name)}},
		}
		created, err := c.Snapshots.SnapshotV1().VolumeSnapshots(c.Namespace).Create(ctx, vs, metav1.CreateOptions{})
		if err != nil {
			c.logf("fake group snapshot controller: member of %s for %s: %v", vgs.Name, pvc.Name, err)
			continue
		}
		// firedrill labels and annotates members as soon as it sees them, so the status update
		// can meet a newer resourceVersion: retry on the latest, as a real controller would.
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := c.Snapshots.SnapshotV1().VolumeSnapshots(c.Namespace).Get(ctx, created.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			cur.Status = &snapshotv1.VolumeSnapshotStatus{CreationTime: &cut, ReadyToUse: new(false), VolumeGroupSnapshotName: new(vgs.Name),
				BoundVolumeSnapshotContentName: new("snapcontent-" + string(cur.UID))}
			_, err = c.Snapshots.SnapshotV1().VolumeSnapshots(c.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			c.logf("fake group snapshot controller: status of member %s: %v", created.Name, err)
		}
	}
}

func (c *GroupController) readyMembers(ctx context.Context, vgs *groupv1.VolumeGroupSnapshot) bool {
	l, err := c.Snapshots.SnapshotV1().VolumeSnapshots(c.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false
	}
	for i := range l.Items {
		vs := &l.Items[i]
		if vs.Status == nil || vs.Status.VolumeGroupSnapshotName == nil || *vs.Status.VolumeGroupSnapshotName != vgs.Name {
			continue
		}
		if vs.Status.ReadyToUse != nil && *vs.Status.ReadyToUse {
			continue
		}
		vs.Status.ReadyToUse = new(true)
		q := resource.MustParse("8Gi")
		vs.Status.RestoreSize = &q
		if _, err := c.Snapshots.SnapshotV1().VolumeSnapshots(c.Namespace).UpdateStatus(ctx, vs, metav1.UpdateOptions{}); err != nil {
			c.logf("fake group snapshot controller: readyToUse of member %s: %v", vs.Name, err)
			return false
		}
	}
	return true
}
