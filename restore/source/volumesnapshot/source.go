package volumesnapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapshotv1client "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/typed/volumesnapshot/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/snapshot/csi"
)

// Labels on every object a drill creates (the runtime's pods use the same ones), so that a
// drill's teardown, the next drill and 'firedrill gc' find them.
const (
	LabelManagedBy = csi.LabelManagedBy
	ManagedByValue = csi.ManagedByValue
	LabelDrillID   = "firedrill.io/drill-id"
	LabelTarget    = csi.LabelTarget
	LabelRole      = "firedrill.io/role"
	// RoleScratch marks a scratch copy (VolumeSnapshotContent, VolumeSnapshot, PVC).
	RoleScratch = "scratch"
)

// SnapshotGroup is the API group a PVC's dataSource names for a VolumeSnapshot.
const SnapshotGroup = "snapshot.storage.k8s.io"

// Source lists a target's VolumeSnapshots and materialises one into scratch PVCs: for each
// volume, a pre-provisioned VolumeSnapshotContent with the production content's
// snapshotHandle and deletionPolicy Retain, a VolumeSnapshot bound to it in the scratch
// namespace (a PVC cannot take a VolumeSnapshot of another namespace as its data source), and
// a PVC restored from that. Deleting the copies never deletes production's snapshot data.
type Source struct {
	Snapshots snapshotv1client.SnapshotV1Interface
	Core      kubernetes.Interface
	Target    string
	Engine    string
	// SnapshotNamespace holds the target's VolumeSnapshots.
	SnapshotNamespace string
	// Selector picks snapshots other tools took (label selector); empty: firedrill's own.
	Selector string
	// SourcePVC keeps only snapshots of this PVC (data volume); empty: any.
	SourcePVC string
	// ScratchNamespace is where the copies and the throwaway live.
	ScratchNamespace string
	// StorageClass of the scratch PVCs; empty: the source PVC's, else the cluster default.
	StorageClass string
	// BindTimeout bounds the wait for the copy to be ready and for an Immediate PVC to bind.
	BindTimeout time.Duration
	Now         func() time.Time
	Log         *slog.Logger
}

func (s *Source) own() bool { return s.Selector == "" && s.SourcePVC == "" }

func (s *Source) driver() *csi.Driver {
	return &csi.Driver{API: s.Snapshots, Namespace: s.SnapshotNamespace}
}

func (s *Source) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

func (s *Source) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// ScratchName names a drill's object for one volume role.
func ScratchName(drillID, role string) string { return "firedrill-" + drillID + "-" + role }

// Materialize binds a copy of each of the snapshot's VolumeSnapshots in the scratch namespace
// and creates a PVC from it. Whatever fails half way is removed before it returns.
func (s *Source) Materialize(ctx context.Context, req drill.MaterializeRequest) (_ *drill.Copy, err error) {
	m := req.Snapshot
	cp := &drill.Copy{Files: m.EngineFiles, Major: major(m.EngineVersion)}
	cp.Release = func(ctx context.Context) error { return s.release(ctx, req.DrillID) }
	defer func() {
		if err != nil {
			if rerr := cp.Release(context.WithoutCancel(ctx)); rerr != nil {
				err = errors.Join(err, fmt.Errorf("while removing the half-made scratch copy: %w", rerr))
			}
			cp = nil
		}
	}()
	if len(m.Volumes) == 0 {
		return nil, fmt.Errorf("snapshot %s names no VolumeSnapshot", m.ID)
	}
	var evidence []map[string]any
	for _, v := range m.Volumes {
		vol, ev, err := s.materializeVolume(ctx, req, v)
		if err != nil {
			return nil, err
		}
		cp.Volumes = append(cp.Volumes, vol)
		evidence = append(evidence, ev)
	}
	if note := Consistency(m); note != "" {
		cp.Notes = append(cp.Notes, note)
	}
	cp.Milestones = append(cp.Milestones, reports.Milestone{Name: "scratch-pvcs-created", At: s.now().UTC(), Source: "firedrill"})
	cp.Findings = append(cp.Findings, checks.Passf(drill.SnapshotIntegrityName, checks.Evidence{"volumes": evidence},
		"%d VolumeSnapshot(s) ready without error (%s), bound as Retain copies in %s", len(m.Volumes), names(m), s.ScratchNamespace))
	return cp, nil
}

func (s *Source) labels(req drill.MaterializeRequest, role string) map[string]string {
	return map[string]string{LabelManagedBy: ManagedByValue, LabelDrillID: req.DrillID, LabelTarget: csi.LabelValue(req.Target),
		LabelRole: RoleScratch, csi.LabelVolume: role}
}

func (s *Source) materializeVolume(ctx context.Context, req drill.MaterializeRequest, v snapshot.Volume) (drill.Volume, map[string]any, error) {
	vs, err := s.Snapshots.VolumeSnapshots(s.SnapshotNamespace).Get(ctx, v.VolumeSnapshot, metav1.GetOptions{})
	if err != nil {
		return drill.Volume{}, nil, fmt.Errorf("while reading VolumeSnapshot %s/%s: %w", s.SnapshotNamespace, v.VolumeSnapshot, err)
	}
	if why := unusable(vs); why != "" {
		return drill.Volume{}, nil, fmt.Errorf("VolumeSnapshot %s/%s cannot be restored: %s", vs.Namespace, vs.Name, why)
	}
	content, err := s.Snapshots.VolumeSnapshotContents().Get(ctx, *vs.Status.BoundVolumeSnapshotContentName, metav1.GetOptions{})
	if err != nil {
		return drill.Volume{}, nil, fmt.Errorf("while reading VolumeSnapshotContent %s of %s/%s: %w", *vs.Status.BoundVolumeSnapshotContentName, vs.Namespace, vs.Name, err)
	}
	if content.Status == nil || content.Status.SnapshotHandle == nil || *content.Status.SnapshotHandle == "" {
		return drill.Volume{}, nil, fmt.Errorf("VolumeSnapshotContent %s has no status.snapshotHandle yet: the CSI driver has not cut it", content.Name)
	}
	size := restoreSize(vs, content)
	class, err := s.storageClass(ctx, vs, content.Spec.Driver)
	if err != nil {
		return drill.Volume{}, nil, err
	}

	name := ScratchName(req.DrillID, v.Role)
	lbl := s.labels(req, v.Role)
	copyContent := &snapshotv1.VolumeSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbl, Annotations: map[string]string{
			"firedrill.io/copy-of": content.Name, "firedrill.io/source-volumesnapshot": vs.Namespace + "/" + vs.Name}},
		Spec: snapshotv1.VolumeSnapshotContentSpec{
			// Retain: deleting the copy deletes only these objects, never the storage snapshot.
			DeletionPolicy:          snapshotv1.VolumeSnapshotContentRetain,
			Driver:                  content.Spec.Driver,
			Source:                  snapshotv1.VolumeSnapshotContentSource{SnapshotHandle: content.Status.SnapshotHandle},
			VolumeSnapshotClassName: content.Spec.VolumeSnapshotClassName,
			VolumeSnapshotRef:       corev1.ObjectReference{Kind: "VolumeSnapshot", Namespace: s.ScratchNamespace, Name: name},
		},
	}
	if _, err := s.Snapshots.VolumeSnapshotContents().Create(ctx, copyContent, metav1.CreateOptions{}); err != nil {
		return drill.Volume{}, nil, fmt.Errorf("while creating VolumeSnapshotContent %s (a Retain copy of %s): %w", name, content.Name, err)
	}
	copySnap := &snapshotv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ScratchNamespace, Labels: lbl},
		Spec: snapshotv1.VolumeSnapshotSpec{Source: snapshotv1.VolumeSnapshotSource{VolumeSnapshotContentName: &name},
			VolumeSnapshotClassName: content.Spec.VolumeSnapshotClassName},
	}
	if _, err := s.Snapshots.VolumeSnapshots(s.ScratchNamespace).Create(ctx, copySnap, metav1.CreateOptions{}); err != nil {
		return drill.Volume{}, nil, fmt.Errorf("while creating VolumeSnapshot %s/%s bound to the copy: %w", s.ScratchNamespace, name, err)
	}
	req.Status(fmt.Sprintf("waiting for the snapshot controller to bind %s/%s", s.ScratchNamespace, name))
	if err := s.waitCopyReady(ctx, name); err != nil {
		return drill.Volume{}, nil, err
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ScratchNamespace, Labels: lbl},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: class.namePtr(),
			DataSource:       &corev1.TypedLocalObjectReference{APIGroup: new(SnapshotGroup), Kind: "VolumeSnapshot", Name: name},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
		},
	}
	if _, err := s.Core.CoreV1().PersistentVolumeClaims(s.ScratchNamespace).Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
		return drill.Volume{}, nil, fmt.Errorf("while creating scratch PVC %s/%s from the copy: %w", s.ScratchNamespace, name, err)
	}
	if class.immediate {
		req.Status(fmt.Sprintf("waiting for PVC %s/%s to bind", s.ScratchNamespace, name))
		if err := s.waitBound(ctx, name); err != nil {
			return drill.Volume{}, nil, err
		}
	}
	ev := map[string]any{"volumeSnapshot": vs.Namespace + "/" + vs.Name, "content": content.Name, "driver": content.Spec.Driver,
		"restoreSize": size.String(), "scratchPVC": s.ScratchNamespace + "/" + name, "storageClass": class.name}
	return drill.Volume{Role: v.Role, Namespace: s.ScratchNamespace, Claim: name, Snapshot: name}, ev, nil
}

func restoreSize(vs *snapshotv1.VolumeSnapshot, c *snapshotv1.VolumeSnapshotContent) resource.Quantity {
	if vs.Status.RestoreSize != nil && !vs.Status.RestoreSize.IsZero() {
		return *vs.Status.RestoreSize
	}
	if c.Status != nil && c.Status.RestoreSize != nil && *c.Status.RestoreSize > 0 {
		return *resource.NewQuantity(*c.Status.RestoreSize, resource.BinarySI)
	}
	// A driver that reports no size: the smallest volume most drivers make.
	return resource.MustParse("1Gi")
}

type classChoice struct {
	name      string
	immediate bool
}

func (c classChoice) namePtr() *string {
	if c.name == "" {
		return nil
	}
	return &c.name
}

// storageClass picks the scratch PVC's class and checks it provisions volumes with the
// snapshot's CSI driver (a class of another driver cannot restore the snapshot).
func (s *Source) storageClass(ctx context.Context, vs *snapshotv1.VolumeSnapshot, driver string) (classChoice, error) {
	name, from := s.StorageClass, "restore.kubernetes.storageClass"
	if name == "" && vs.Spec.Source.PersistentVolumeClaimName != nil {
		pvc, err := s.Core.CoreV1().PersistentVolumeClaims(vs.Namespace).Get(ctx, *vs.Spec.Source.PersistentVolumeClaimName, metav1.GetOptions{})
		switch {
		case err == nil && pvc.Spec.StorageClassName != nil:
			name, from = *pvc.Spec.StorageClassName, "the source PVC "+vs.Namespace+"/"+pvc.Name
		case err != nil && !apierrors.IsNotFound(err):
			return classChoice{}, fmt.Errorf("while reading the source PVC %s/%s for its storage class (or set restore.kubernetes.storageClass): %w", vs.Namespace, *vs.Spec.Source.PersistentVolumeClaimName, err)
		}
	}
	if name == "" {
		// The cluster default decides; nothing to check against.
		return classChoice{}, nil
	}
	sc, err := s.Core.StorageV1().StorageClasses().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return classChoice{}, fmt.Errorf("while reading StorageClass %s (from %s): %w", name, from, err)
	}
	if sc.Provisioner != driver {
		return classChoice{}, fmt.Errorf("StorageClass %s (from %s) provisions with %s, but the snapshot was cut by CSI driver %s: a PVC of that class cannot be restored from it; set restore.kubernetes.storageClass to a class of %s",
			name, from, sc.Provisioner, driver, driver)
	}
	immediate := sc.VolumeBindingMode == nil || *sc.VolumeBindingMode == storagev1.VolumeBindingImmediate
	return classChoice{name: name, immediate: immediate}, nil
}

func (s *Source) waitCopyReady(ctx context.Context, name string) error {
	var last *snapshotv1.VolumeSnapshot
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, s.bindTimeout(), true, func(ctx context.Context) (bool, error) {
		vs, err := s.Snapshots.VolumeSnapshots(s.ScratchNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, fmt.Errorf("while reading VolumeSnapshot %s/%s: %w", s.ScratchNamespace, name, err)
		}
		last = vs
		if vs.Status != nil && vs.Status.Error != nil && vs.Status.Error.Message != nil {
			return false, fmt.Errorf("the copy %s/%s failed: %s", s.ScratchNamespace, name, *vs.Status.Error.Message)
		}
		return vs.Status != nil && vs.Status.ReadyToUse != nil && *vs.Status.ReadyToUse, nil
	})
	if err != nil && ctx.Err() == nil && wait.Interrupted(err) {
		state := "no status"
		if last != nil && last.Status != nil {
			state = fmt.Sprintf("bound to %v, readyToUse %v", deref(last.Status.BoundVolumeSnapshotContentName), last.Status.ReadyToUse != nil && *last.Status.ReadyToUse)
		}
		return fmt.Errorf("phase clone: the copy %s/%s was not ready after %s (%s): is the snapshot controller running, and may it bind pre-provisioned VolumeSnapshotContents? (restore.kubernetes.timeouts.bind)", s.ScratchNamespace, name, s.bindTimeout(), state)
	}
	return err
}

func (s *Source) waitBound(ctx context.Context, name string) error {
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, s.bindTimeout(), true, func(ctx context.Context) (bool, error) {
		pvc, err := s.Core.CoreV1().PersistentVolumeClaims(s.ScratchNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, fmt.Errorf("while reading PVC %s/%s: %w", s.ScratchNamespace, name, err)
		}
		return pvc.Status.Phase == corev1.ClaimBound, nil
	})
	if err != nil && ctx.Err() == nil && wait.Interrupted(err) {
		return fmt.Errorf("phase clone: PVC %s/%s still Pending after %s: %s (check the provisioner; restore.kubernetes.timeouts.bind)",
			s.ScratchNamespace, name, s.bindTimeout(), LastEvent(ctx, s.Core, s.ScratchNamespace, "PersistentVolumeClaim", name))
	}
	return err
}

func (s *Source) bindTimeout() time.Duration {
	if s.BindTimeout <= 0 {
		return 10 * time.Minute
	}
	return s.BindTimeout
}

// LastEvent is the newest event's reason and message about an object, or a note that there is none.
func LastEvent(ctx context.Context, core kubernetes.Interface, ns, kind, name string) string {
	l, err := core.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=" + kind + ",involvedObject.name=" + name})
	if err != nil {
		return "its events could not be read: " + err.Error()
	}
	var newest *corev1.Event
	for i := range l.Items {
		e := &l.Items[i]
		if newest == nil || eventTime(e).After(eventTime(newest)) {
			newest = e
		}
	}
	if newest == nil {
		return "no event explains it"
	}
	return fmt.Sprintf("%s: %s", newest.Reason, strings.TrimSpace(newest.Message))
}

func eventTime(e *corev1.Event) time.Time {
	if !e.LastTimestamp.IsZero() {
		return e.LastTimestamp.Time
	}
	if !e.EventTime.IsZero() {
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

// release deletes a drill's scratch PVCs, VolumeSnapshots and VolumeSnapshotContents (the
// Retain copies: their deletion leaves the storage snapshot alone).
func (s *Source) release(ctx context.Context, drillID string) error {
	sel := metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + ManagedByValue + "," + LabelDrillID + "=" + drillID + "," + LabelRole + "=" + RoleScratch}
	_, err := DeleteScratch(ctx, s.Core, s.Snapshots, s.ScratchNamespace, sel, false)
	return err
}

// DeleteScratch deletes the scratch PVCs, VolumeSnapshots and VolumeSnapshotContents matching
// sel (the contents only if they are Retain copies firedrill made), and says what it deleted;
// dryRun only lists them.
func DeleteScratch(ctx context.Context, core kubernetes.Interface, snaps snapshotv1client.SnapshotV1Interface, ns string, sel metav1.ListOptions, dryRun bool) ([]string, error) {
	var done []string
	var errs []error
	del := func(kind, name string, f func() error) {
		if !dryRun {
			if err := f(); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("while deleting %s %s: %w", kind, name, err))
				return
			}
		}
		done = append(done, kind+" "+name)
	}
	bg := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &bg}
	if pvcs, err := core.CoreV1().PersistentVolumeClaims(ns).List(ctx, sel); err != nil {
		errs = append(errs, fmt.Errorf("while listing scratch PVCs in %s: %w", ns, err))
	} else {
		for _, p := range pvcs.Items {
			del("PersistentVolumeClaim", ns+"/"+p.Name, func() error { return core.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, p.Name, opts) })
		}
	}
	if vss, err := snaps.VolumeSnapshots(ns).List(ctx, sel); err != nil {
		errs = append(errs, fmt.Errorf("while listing scratch VolumeSnapshots in %s: %w", ns, err))
	} else {
		for _, v := range vss.Items {
			del("VolumeSnapshot", ns+"/"+v.Name, func() error { return snaps.VolumeSnapshots(ns).Delete(ctx, v.Name, opts) })
		}
	}
	if cs, err := snaps.VolumeSnapshotContents().List(ctx, sel); err != nil {
		errs = append(errs, fmt.Errorf("while listing scratch VolumeSnapshotContents: %w", err))
	} else {
		for _, c := range cs.Items {
			if c.Spec.DeletionPolicy != snapshotv1.VolumeSnapshotContentRetain {
				// Never delete a content whose deletion would delete storage data.
				errs = append(errs, fmt.Errorf("VolumeSnapshotContent %s carries firedrill's labels but deletionPolicy %s: left alone, delete it by hand if it is firedrill's", c.Name, c.Spec.DeletionPolicy))
				continue
			}
			del("VolumeSnapshotContent", c.Name, func() error { return snaps.VolumeSnapshotContents().Delete(ctx, c.Name, opts) })
		}
	}
	return done, errors.Join(errs...)
}

// major is the major version of "15.18 (Debian 15.18-0+deb12u1)" or "9.6.24": 15, 9.6; "" if unknown.
func major(v string) string {
	f := strings.Fields(v)
	if len(f) == 0 {
		return ""
	}
	parts := strings.Split(f[0], ".")
	if len(parts) >= 2 && parts[0] == "9" {
		return parts[0] + "." + parts[1]
	}
	return parts[0]
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
