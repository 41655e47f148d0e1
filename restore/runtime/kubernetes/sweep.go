package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/snapshot/csi"
	"github.com/firedrill/firedrill/restore/source/volumesnapshot"
)

// LabelKept marks the objects of a drill run with --keep: sweeps leave them alone unless asked.
const LabelKept = "firedrill.io/kept"

// deleteThrowaways deletes (dryRun: lists) the pods, ConfigMaps and NetworkPolicies matching sel.
func deleteThrowaways(ctx context.Context, core kubernetes.Interface, ns string, sel metav1.ListOptions, dryRun bool) ([]string, error) {
	var done []string
	var errs []error
	zero := int64(0)
	now := metav1.DeleteOptions{GracePeriodSeconds: &zero}
	del := func(kind, name string, f func() error) {
		if !dryRun {
			if err := f(); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("while deleting %s %s/%s: %w", kind, ns, name, err))
				return
			}
		}
		done = append(done, kind+" "+ns+"/"+name)
	}
	if l, err := core.CoreV1().Pods(ns).List(ctx, sel); err != nil {
		errs = append(errs, fmt.Errorf("while listing pods in %s: %w", ns, err))
	} else {
		for _, o := range l.Items {
			del("Pod", o.Name, func() error { return core.CoreV1().Pods(ns).Delete(ctx, o.Name, now) })
		}
	}
	if l, err := core.CoreV1().ConfigMaps(ns).List(ctx, sel); err != nil {
		errs = append(errs, fmt.Errorf("while listing ConfigMaps in %s: %w", ns, err))
	} else {
		for _, o := range l.Items {
			del("ConfigMap", o.Name, func() error { return core.CoreV1().ConfigMaps(ns).Delete(ctx, o.Name, metav1.DeleteOptions{}) })
		}
	}
	if l, err := core.NetworkingV1().NetworkPolicies(ns).List(ctx, sel); err != nil {
		errs = append(errs, fmt.Errorf("while listing NetworkPolicies in %s: %w", ns, err))
	} else {
		for _, o := range l.Items {
			del("NetworkPolicy", o.Name, func() error {
				return core.NetworkingV1().NetworkPolicies(ns).Delete(ctx, o.Name, metav1.DeleteOptions{})
			})
		}
	}
	return done, errors.Join(errs...)
}

// GCOptions choose which drills' leftovers a sweep removes.
type GCOptions struct {
	// Target limits the sweep to one target; empty: every target.
	Target string
	// OlderThan keeps drills younger than this (a live drill's objects); 0: no age limit.
	OlderThan time.Duration
	// IncludeKept also removes --keep'd drills' objects.
	IncludeKept bool
	DryRun      bool
	Now         func() time.Time
}

// GC removes what drills left in the scratch namespace (pods, ConfigMaps, NetworkPolicies,
// scratch PVCs and VolumeSnapshots) and the cluster (their Retain VolumeSnapshotContents), by
// label, and says what it removed (or, dry-run, would remove).
func (r *Runtime) GC(ctx context.Context, o GCOptions) ([]string, error) {
	sel := volumesnapshot.LabelManagedBy + "=" + volumesnapshot.ManagedByValue + "," + volumesnapshot.LabelDrillID
	if o.Target != "" {
		sel += "," + volumesnapshot.LabelTarget + "=" + csi.LabelValue(o.Target)
	}
	// What could be listed is still swept when one kind could not be.
	drills, listErr := r.drillAges(ctx, sel)
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	var done []string
	errs := []error{listErr}
	for _, id := range slices.Sorted(maps.Keys(drills)) {
		d := drills[id]
		if d.kept && !o.IncludeKept {
			continue
		}
		if o.OlderThan > 0 && now().Sub(d.oldest) < o.OlderThan {
			continue
		}
		one := metav1.ListOptions{LabelSelector: sel + "," + volumesnapshot.LabelDrillID + "=" + id}
		objs, err := deleteThrowaways(ctx, r.c.Core, r.o.Namespace, one, o.DryRun)
		done, errs = append(done, objs...), append(errs, err)
		objs, err = volumesnapshot.DeleteScratch(ctx, r.c.Core, r.c.Snapshots, r.o.Namespace, one, o.DryRun)
		done, errs = append(done, objs...), append(errs, err)
	}
	return done, errors.Join(errs...)
}

// drillLeftovers is what one drill left: when its oldest object was made, and whether it ran
// with --keep. Only the throwaway's own objects carry LabelKept (the source makes the scratch
// PVC and VolumeSnapshot before the drill decides to keep them), so one kept object marks
// the whole drill kept.
type drillLeftovers struct {
	oldest time.Time
	kept   bool
}

// drillAges finds the drills that left objects, with the creation time of their oldest one
// and whether any of them is labelled kept.
func (r *Runtime) drillAges(ctx context.Context, sel string) (map[string]drillLeftovers, error) {
	ages := map[string]drillLeftovers{}
	note := func(m metav1.ObjectMeta) {
		id := m.Labels[volumesnapshot.LabelDrillID]
		d, ok := ages[id]
		if !ok || m.CreationTimestamp.Time.Before(d.oldest) {
			d.oldest = m.CreationTimestamp.Time
		}
		if _, kept := m.Labels[LabelKept]; kept {
			d.kept = true
		}
		ages[id] = d
	}
	opts := metav1.ListOptions{LabelSelector: sel}
	ns := r.o.Namespace
	var errs []error
	if l, err := r.c.Core.CoreV1().Pods(ns).List(ctx, opts); err == nil {
		for _, o := range l.Items {
			note(o.ObjectMeta)
		}
	} else {
		errs = append(errs, fmt.Errorf("while listing pods in %s: %w", ns, err))
	}
	if l, err := r.c.Core.CoreV1().ConfigMaps(ns).List(ctx, opts); err == nil {
		for _, o := range l.Items {
			note(o.ObjectMeta)
		}
	} else {
		errs = append(errs, fmt.Errorf("while listing ConfigMaps in %s: %w", ns, err))
	}
	if l, err := r.c.Core.CoreV1().PersistentVolumeClaims(ns).List(ctx, opts); err == nil {
		for _, o := range l.Items {
			note(o.ObjectMeta)
		}
	} else {
		errs = append(errs, fmt.Errorf("while listing PVCs in %s: %w", ns, err))
	}
	if l, err := r.c.Core.NetworkingV1().NetworkPolicies(ns).List(ctx, opts); err == nil {
		for _, o := range l.Items {
			note(o.ObjectMeta)
		}
	} else {
		errs = append(errs, fmt.Errorf("while listing NetworkPolicies in %s: %w", ns, err))
	}
	if l, err := r.c.Snapshots.VolumeSnapshots(ns).List(ctx, opts); err == nil {
		for _, o := range l.Items {
			note(o.ObjectMeta)
		}
	} else {
		errs = append(errs, fmt.Errorf("while listing VolumeSnapshots in %s: %w", ns, err))
	}
	if l, err := r.c.Snapshots.VolumeSnapshotContents().List(ctx, opts); err == nil {
		for _, o := range l.Items {
			note(o.ObjectMeta)
		}
	} else {
		errs = append(errs, fmt.Errorf("while listing VolumeSnapshotContents: %w", err))
	}
	return ages, errors.Join(errs...)
}

// The runtime removes what has no scratch directory: its objects.
var _ drill.TargetSweeper = (*Runtime)(nil)

// SweepTarget removes what dead drills of one target left. A drill starts with it (the zero
// options), outside its RTO clock; 'firedrill gc' passes its own. Kubernetes objects have no
// lock: a drill of the same target still running elsewhere is left alone only if it is
// younger than o.OlderThan (drills of one target do not overlap by design).
func (r *Runtime) SweepTarget(ctx context.Context, target string, o drill.GCOptions) ([]string, error) {
	return r.GC(ctx, GCOptions{Target: target, OlderThan: o.OlderThan, IncludeKept: o.IncludeKept, DryRun: o.DryRun, Now: r.o.Now})
}
