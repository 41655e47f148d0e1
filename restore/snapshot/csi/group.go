package csi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	groupv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumegroupsnapshot/v1"
	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	groupv1client "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/typed/volumegroupsnapshot/v1"
	snapshotv1client "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/typed/volumesnapshot/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/utils/clock"

	"github.com/firedrill/firedrill/restore/engine"
	"github.com/firedrill/firedrill/restore/snapshot"
)

// GroupSnapshotGroupVersion is the VolumeGroupSnapshot API firedrill uses: the GA version that
// external-snapshotter v8.7.0's client and snapshot-controller speak (v1beta1 is deprecated,
// v1beta2 is served for older controllers).
const GroupSnapshotGroupVersion = "groupsnapshot.storage.k8s.io/v1"

// Labels of group snapshots.
const (
	// LabelGroup is the default key of the PVC selector of a group's VolumeGroupSnapshot
	// (value: the group name), and labels the VolumeGroupSnapshot itself.
	LabelGroup = "firedrill.io/group"
	// LabelVolumeGroupSnapshot names, on a member VolumeSnapshot, the VolumeGroupSnapshot that
	// cut it.
	LabelVolumeGroupSnapshot = "firedrill.io/volume-group-snapshot"
	// AnnDefaultGroupClass marks the default VolumeGroupSnapshotClass of a driver.
	AnnDefaultGroupClass = "groupsnapshot.storage.kubernetes.io/is-default-class"
)

// ErrGroupMembers means the VolumeGroupSnapshot was cut but its member VolumeSnapshots do not
// cover every volume firedrill asked for (the PVC selector missed one).
var ErrGroupMembers = errors.New("the VolumeGroupSnapshot does not hold every volume")

// GroupAPI is what the group driver uses of the external-snapshotter clientset:
// clientset.GroupsnapshotV1() satisfies it.
type GroupAPI interface {
	VolumeGroupSnapshots(namespace string) groupv1client.VolumeGroupSnapshotInterface
	VolumeGroupSnapshotClasses() groupv1client.VolumeGroupSnapshotClassInterface
}

// Discovery says which API versions the server serves: clientset.Discovery() satisfies it.
type Discovery interface {
	ServerResourcesForGroupVersion(groupVersion string) (*metav1.APIResourceList, error)
}

// Volumes reads PVCs and PVs to learn the volumes' CSI driver: kubernetes clientset.CoreV1()
// satisfies it.
type Volumes interface {
	PersistentVolumeClaims(namespace string) corev1client.PersistentVolumeClaimInterface
	PersistentVolumes() corev1client.PersistentVolumeInterface
}

// GroupDriver cuts the volumes of several targets in one VolumeGroupSnapshot: one atomic cut of
// the storage, where the cluster and the volumes' CSI driver support it.
type GroupDriver struct {
	API       GroupAPI
	Snapshots API
	Discovery Discovery
	// Volumes reads the PVCs (labels, bound PV) and, without ClassName, the PVs' CSI driver.
	Volumes   Volumes
	Namespace string
	// ClassName is the VolumeGroupSnapshotClass; empty picks the class of the volumes' driver
	// (the one marked default when there are several).
	ClassName string
	// Selector are the labels the VolumeGroupSnapshot selects PVCs by (matchLabels); every
	// member PVC must carry them.
	Selector map[string]string
	// ReadyTimeout bounds the wait for the members and readyToUse after the cut (default 10 min).
	ReadyTimeout  time.Duration
	Poll, MaxPoll time.Duration
	// Clock is what the driver waits on (the polls, ReadyTimeout) and reads the time from when
	// Now is nil; nil means the real clock. Tests pass a fake one and never sleep.
	Clock clock.Clock
	Now   func() time.Time
}

func (g *GroupDriver) clock() clock.Clock {
	if g.Clock == nil {
		return clock.RealClock{}
	}
	return g.Clock
}

// Support says whether a VolumeGroupSnapshot can cut a set of PVCs, and if not, why.
type Support struct {
	Supported bool
	ClassName string
	// CSIDriver is the volumes' driver when it was read (not with an explicit ClassName).
	CSIDriver string
	Reason    string
}

func unsupported(format string, args ...any) Support {
	return Support{Reason: fmt.Sprintf(format, args...)}
}

// Detect says whether the cluster serves the VolumeGroupSnapshot API and has a class for the
// PVCs' CSI driver, and whether every PVC carries the selector's labels. API failures other than
// "not served" and "forbidden" are errors; the rest are reasons not to use a group snapshot.
func (g *GroupDriver) Detect(ctx context.Context, pvcs []string) (Support, error) {
	res, err := g.Discovery.ServerResourcesForGroupVersion(GroupSnapshotGroupVersion)
	switch {
	case apierrors.IsNotFound(err):
		return unsupported("the cluster does not serve %s (install the external-snapshotter v8 group snapshot CRDs and snapshot-controller)", GroupSnapshotGroupVersion), nil
	case err != nil:
		return Support{}, fmt.Errorf("while asking the API server whether it serves %s: %w", GroupSnapshotGroupVersion, err)
	}
	if !slices.ContainsFunc(res.APIResources, func(r metav1.APIResource) bool { return r.Name == "volumegroupsnapshots" }) {
		return unsupported("the cluster serves %s without volumegroupsnapshots", GroupSnapshotGroupVersion), nil
	}
	if len(g.Selector) == 0 {
		return unsupported("no PVC selector"), nil
	}
	var volumes []string
	for _, name := range pvcs {
		pvc, err := g.Volumes.PersistentVolumeClaims(g.Namespace).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsForbidden(err):
			return unsupported("reading PVC %s/%s is forbidden (apply deploy/rbac/snapshot-group-csi-role.yaml): %s", g.Namespace, name, err), nil
		case apierrors.IsNotFound(err):
			return unsupported("PVC %s/%s does not exist", g.Namespace, name), nil
		case err != nil:
			return Support{}, fmt.Errorf("while reading PVC %s/%s: %w", g.Namespace, name, err)
		}
		for _, k := range slices.Sorted(maps.Keys(g.Selector)) {
			if pvc.Labels[k] != g.Selector[k] {
				return unsupported("PVC %s/%s does not carry the label %s=%s the VolumeGroupSnapshot selects by (kubectl -n %s label pvc %s %s=%s)",
					g.Namespace, name, k, g.Selector[k], g.Namespace, name, k, g.Selector[k]), nil
			}
		}
		if pvc.Spec.VolumeName == "" {
			return unsupported("PVC %s/%s is not bound to a volume", g.Namespace, name), nil
		}
		volumes = append(volumes, pvc.Spec.VolumeName)
	}
	if g.ClassName != "" {
		return Support{Supported: true, ClassName: g.ClassName}, nil
	}
	driver := ""
	for i, pvName := range volumes {
		pv, err := g.Volumes.PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{})
		switch {
		case apierrors.IsForbidden(err):
			return unsupported("reading PersistentVolume %s is forbidden (apply deploy/rbac/snapshot-group-csi-clusterrole.yaml, or set groups[].csi.groupSnapshotClassName): %s", pvName, err), nil
		case err != nil:
			return Support{}, fmt.Errorf("while reading PersistentVolume %s of PVC %s: %w", pvName, pvcs[i], err)
		}
		if pv.Spec.CSI == nil {
			return unsupported("PVC %s/%s is not a CSI volume", g.Namespace, pvcs[i]), nil
		}
		if driver != "" && pv.Spec.CSI.Driver != driver {
			return unsupported("the volumes are on two CSI drivers (%s and %s); one VolumeGroupSnapshot covers one driver", driver, pv.Spec.CSI.Driver), nil
		}
		driver = pv.Spec.CSI.Driver
	}
	classes, err := g.API.VolumeGroupSnapshotClasses().List(ctx, metav1.ListOptions{})
	switch {
	case apierrors.IsForbidden(err):
		return unsupported("listing VolumeGroupSnapshotClasses is forbidden (apply deploy/rbac/snapshot-group-csi-clusterrole.yaml, or set groups[].csi.groupSnapshotClassName): %s", err), nil
	case err != nil:
		return Support{}, fmt.Errorf("while listing VolumeGroupSnapshotClasses: %w", err)
	}
	var match, defaults []string
	for _, c := range classes.Items {
		if c.Driver != driver {
			continue
		}
		match = append(match, c.Name)
		if c.Annotations[AnnDefaultGroupClass] == "true" {
			defaults = append(defaults, c.Name)
		}
	}
	sort.Strings(match)
	switch {
	case len(match) == 0:
		return Support{CSIDriver: driver, Reason: fmt.Sprintf("no VolumeGroupSnapshotClass for CSI driver %s", driver)}, nil
	case len(match) == 1:
		return Support{Supported: true, ClassName: match[0], CSIDriver: driver}, nil
	case len(defaults) == 1:
		return Support{Supported: true, ClassName: defaults[0], CSIDriver: driver}, nil
	}
	return Support{CSIDriver: driver, Reason: fmt.Sprintf("several VolumeGroupSnapshotClasses for CSI driver %s (%s) and not one default; set groups[].csi.groupSnapshotClassName", driver, strings.Join(match, ", "))}, nil
}

// GroupMember is one target of a group snapshot.
type GroupMember struct {
	Target, Engine, Mode string
	// Volumes are the target's PVCs; the first is the data volume.
	Volumes []PVC
	// Freezer makes the cut consistent; Close is called on every path.
	Freezer    engine.Freezer
	Attributes map[string]string
}

// GroupRequest is one group snapshot.
type GroupRequest struct {
	Group   string
	BatchID string
	// ClassName is the VolumeGroupSnapshotClass (from Detect).
	ClassName string
	Members   []GroupMember
	Status    func(string)
}

// GroupResult is what one VolumeGroupSnapshot cut.
type GroupResult struct {
	VolumeGroupSnapshot string
	CutAt               time.Time
	// Snapshots are the members' snapshots, in the order of the request's members.
	Snapshots []*snapshot.Metadata
	// Extra are member VolumeSnapshots of PVCs no member asked for (the selector matched them).
	Extra []string
}

// VolumeGroupSnapshotName names a group's VolumeGroupSnapshot of one batch.
func VolumeGroupSnapshotName(group, batch string) string {
	return strings.ToLower(group + "-" + batch)
}

// Create freezes every member, creates one VolumeGroupSnapshot selecting their PVCs, thaws every
// member as soon as the storage reports the cut (status.creationTime), records the member
// VolumeSnapshots the snapshot controller made (labelled and annotated as a single target's
// snapshot would be, so listing, drills and retention see no difference), and waits for
// readyToUse. On any failure every member is thawed first, then the VolumeGroupSnapshot and the
// member VolumeSnapshots are deleted.
func (g *GroupDriver) Create(ctx context.Context, req GroupRequest) (_ *GroupResult, err error) {
	status := req.Status
	if status == nil {
		status = func(string) {}
	}
	// closeAll releases every member after err and joins what releasing each returned into err:
	// a member whose thaw, backup stop or unlock failed may still be frozen, in backup mode or
	// locked, and the caller must hear which. The context survives ctx's cancellation, so an
	// interrupted group still releases every member.
	closeAll := func(err error) error {
		cctx := context.WithoutCancel(ctx)
		errs := make([]error, len(req.Members))
		// Concurrently: one member slow to close must not keep the others frozen.
		_ = eachMemberIndexed(req.Members, func(i int, m GroupMember) error {
			if cerr := m.Freezer.Close(cctx); cerr != nil {
				errs[i] = fmt.Errorf("and while releasing member %s (it may still be frozen or in backup mode): %w", m.Target, cerr)
			}
			return nil
		})
		return errors.Join(append([]error{err}, errs...)...)
	}
	if len(req.Members) == 0 || req.ClassName == "" || len(g.Selector) == 0 {
		return nil, closeAll(errors.New("while taking a group snapshot: no member, class or selector"))
	}
	vgsClient := g.API.VolumeGroupSnapshots(g.Namespace)
	vsClient := g.Snapshots.VolumeSnapshots(g.Namespace)
	d := &Driver{API: g.Snapshots, Namespace: g.Namespace, Poll: g.Poll, MaxPoll: g.MaxPoll, ReadyTimeout: g.ReadyTimeout, Clock: g.Clock, Now: g.Now}
	started := d.now()
	name := VolumeGroupSnapshotName(req.Group, req.BatchID)
	var created *groupv1.VolumeGroupSnapshot
	var members []string
	defer func() {
		if err == nil {
			return
		}
		// Thaw first: the databases must not wait for API calls that may hang.
		err = closeAll(err)
		if created == nil {
			return
		}
		if derr := g.deleteGroup(ctx, created, members); derr != nil {
			err = fmt.Errorf("%w (and the partial group snapshot could not be deleted: %w)", err, derr)
		}
	}()

	status(fmt.Sprintf("freezing %d members", len(req.Members)))
	fctx, stopFreezing := context.WithCancelCause(ctx)
	defer stopFreezing(nil)
	if err := eachMember(req.Members, func(m GroupMember) error {
		if err := m.Freezer.Freeze(fctx); err != nil {
			// The others need not finish freezing: the group fails anyway.
			stopFreezing(err)
			return fmt.Errorf("while freezing %s: %w", m.Target, err)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	frozenAt := d.now()

	vgs := &groupv1.VolumeGroupSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: g.Namespace, Labels: map[string]string{
			LabelManagedBy: ManagedByValue, LabelGroup: LabelValue(req.Group), LabelBatchID: req.BatchID,
		}},
		Spec: groupv1.VolumeGroupSnapshotSpec{
			Source:                       groupv1.VolumeGroupSnapshotSource{Selector: &metav1.LabelSelector{MatchLabels: g.Selector}},
			VolumeGroupSnapshotClassName: &req.ClassName,
		},
	}
	status(fmt.Sprintf("creating VolumeGroupSnapshot %s (class %s, PVCs %s)", name, req.ClassName, metav1.FormatLabelSelector(vgs.Spec.Source.Selector)))
	created, err = vgsClient.Create(ctx, vgs, metav1.CreateOptions{})
	if err != nil {
		// A create that timed out may still have happened: delete by name (NotFound is fine).
		created = &groupv1.VolumeGroupSnapshot{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: g.Namespace}}
		return nil, fmt.Errorf("while creating VolumeGroupSnapshot %s/%s: %w", g.Namespace, name, err)
	}

	status("waiting for the storage to cut the group snapshot (status.creationTime)")
	cut, err := g.waitGroup(ctx, vgsClient, name, min(d.maxPoll(), 50*time.Millisecond), time.Time{}, func(s *groupv1.VolumeGroupSnapshotStatus) bool {
		return s.CreationTime != nil
	})
	if err != nil {
		return nil, fmt.Errorf("while waiting for the group cut: %w", err)
	}
	created = cut
	cutAt := cut.Status.CreationTime.Time.UTC()

	status(fmt.Sprintf("thawing %d members", len(req.Members)))
	frozen := make([]*engine.Frozen, len(req.Members))
	var mu sync.Mutex
	if err := eachMemberIndexed(req.Members, func(i int, m GroupMember) error {
		f, err := m.Freezer.Thaw(ctx)
		if err != nil {
			return fmt.Errorf("while thawing %s: %w", m.Target, err)
		}
		mu.Lock()
		frozen[i] = f
		mu.Unlock()
		return nil
	}); err != nil {
		return nil, err
	}
	thawedAt := d.now()

	// The deadline is read on the driver's clock; the context's timeout is the backstop for an
	// API call that hangs past it.
	rctx, cancel := context.WithTimeoutCause(ctx, d.readyTimeout(), ErrNotReady)
	defer cancel()
	deadline := g.clock().Now().Add(d.readyTimeout())
	notReady := func(err error, what string) error {
		if (errors.Is(err, ErrNotReady) || errors.Is(context.Cause(rctx), ErrNotReady)) && ctx.Err() == nil {
			return fmt.Errorf("%w: VolumeGroupSnapshot %s/%s: %s (waited %s; raise snapshot.csi.readyTimeout for slow storage)", ErrNotReady, g.Namespace, name, what, d.readyTimeout())
		}
		return fmt.Errorf("while waiting for %s: %w", what, err)
	}

	status("waiting for the member VolumeSnapshots of the group snapshot")
	byPVC, all, err := g.waitMembers(rctx, vsClient, cut, req.Members, d.maxPoll(), deadline)
	members = all
	if err != nil {
		if errors.Is(err, ErrGroupMembers) || errors.Is(err, ErrSnapshotFailed) {
			return nil, err
		}
		return nil, notReady(err, "its member VolumeSnapshots")
	}
	res := &GroupResult{VolumeGroupSnapshot: name, CutAt: cutAt}
	wanted := map[string]bool{}
	for _, m := range req.Members {
		for _, v := range m.Volumes {
			wanted[v.Name] = true
		}
	}
	for pvc, vs := range byPVC {
		if !wanted[pvc] {
			res.Extra = append(res.Extra, vs)
		}
	}
	sort.Strings(res.Extra)

	metas := make([]*snapshot.Metadata, len(req.Members))
	for i, m := range req.Members {
		id := newID(started)
		attrs := map[string]string{}
		for k, v := range m.Attributes {
			attrs[k] = v
		}
		for k, v := range frozen[i].Attributes {
			attrs[k] = v
		}
		attrs["volumeGroupSnapshot"] = name
		attrs["volumeGroupSnapshotClass"] = req.ClassName
		meta := &snapshot.Metadata{
			ID: id, Target: m.Target, Engine: m.Engine, EngineVersion: attrs["serverVersion"], Mode: m.Mode,
			Driver: DriverName, BatchID: req.BatchID, StartedAt: started.UTC(), TakenAt: cutAt,
			FrozenSeconds: frozen[i].Duration().Seconds(), StartLSN: attrs["startLSN"], StopLSN: attrs["stopLSN"],
			Attributes: attrs, Namespace: g.Namespace, EngineFiles: frozen[i].Files,
		}
		fmt.Sscan(attrs["timeline"], &meta.Timeline)
		if engine.InBackupMode(m.Engine, m.Mode) && !frozen[i].EndedAt.IsZero() {
			meta.TakenAt = frozen[i].EndedAt.UTC()
		}
		labels := map[string]string{
			LabelManagedBy: ManagedByValue, LabelTarget: m.Target, LabelEngine: m.Engine, LabelMode: m.Mode,
			LabelBatchID: req.BatchID, LabelSnapshotID: id, LabelVolumeGroupSnapshot: name,
		}
		if v := LabelValue(attrs["serverVersion"]); v != "" {
			labels[LabelEngineVersion] = v
		}
		ann := annotations(frozen[i], attrs, frozenAt, thawedAt)
		ann[AnnEngineVersion] = attrs["serverVersion"]
		for _, v := range m.Volumes {
			vs := byPVC[v.Name]
			meta.Volumes = append(meta.Volumes, snapshot.Volume{Role: v.Role, PVC: v.Name, VolumeSnapshot: vs, CutAt: cutAt})
			if err := patchMeta(ctx, vsClient, vs, with(labels, LabelVolume, v.Role), ann); err != nil {
				return nil, err
			}
		}
		metas[i] = meta
	}

	status("waiting for the group snapshot to become ready to use")
	if _, err := g.waitGroup(rctx, vgsClient, name, d.maxPoll(), deadline, func(s *groupv1.VolumeGroupSnapshotStatus) bool {
		return s.ReadyToUse != nil && *s.ReadyToUse
	}); err != nil {
		if errors.Is(err, ErrSnapshotFailed) {
			return nil, err
		}
		return nil, notReady(err, "readyToUse")
	}
	for _, meta := range metas {
		names := make([]string, len(meta.Volumes))
		for i, v := range meta.Volumes {
			names[i] = v.VolumeSnapshot
		}
		ready, err := d.waitUntil(rctx, vsClient, names, d.maxPoll(), deadline, func(vs *snapshotv1.VolumeSnapshot) bool {
			return vs.Status != nil && vs.Status.ReadyToUse != nil && *vs.Status.ReadyToUse
		})
		if err != nil {
			if errors.Is(err, ErrSnapshotFailed) {
				return nil, err
			}
			return nil, notReady(err, "readyToUse of the member VolumeSnapshots")
		}
		recordSizes(meta, ready)
	}
	for _, m := range req.Members {
		if err := m.Freezer.Close(ctx); err != nil {
			return nil, fmt.Errorf("while closing %s's session: %w", m.Target, err)
		}
	}
	finished := d.now().UTC()
	for _, meta := range metas {
		meta.FinishedAt = finished
		b, err := json.Marshal(meta)
		if err != nil {
			return nil, fmt.Errorf("while encoding metadata: %w", err)
		}
		// Metadata last: only now is the member's snapshot listed.
		if err := patchAnnotations(ctx, vsClient, meta.Volumes[0].VolumeSnapshot, map[string]string{AnnMetadata: string(b)}); err != nil {
			return nil, err
		}
	}
	res.Snapshots = metas
	return res, nil
}

// eachMember runs fn for every member concurrently and returns the first error (in member
// order): the members freeze (and thaw) together, not one after the other.
func eachMember(ms []GroupMember, fn func(GroupMember) error) error {
	return eachMemberIndexed(ms, func(_ int, m GroupMember) error { return fn(m) })
}

func eachMemberIndexed(ms []GroupMember, fn func(int, GroupMember) error) error {
	errs := make([]error, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Go(func() { errs[i] = fn(i, m) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// waitGroup polls the VolumeGroupSnapshot until done holds, failing at once on status.error,
// quoted verbatim, and with ErrNotReady once the driver's clock reaches a non-zero deadline.
func (g *GroupDriver) waitGroup(ctx context.Context, client groupv1client.VolumeGroupSnapshotInterface, name string, maxPoll time.Duration, deadline time.Time, done func(*groupv1.VolumeGroupSnapshotStatus) bool) (*groupv1.VolumeGroupSnapshot, error) {
	poll := min(g.firstPoll(), maxPoll)
	for {
		vgs, err := client.Get(ctx, name, metav1.GetOptions{})
		switch {
		case err != nil && ctx.Err() != nil:
			return nil, ctxErr(ctx)
		case apierrors.IsNotFound(err):
			return nil, fmt.Errorf("VolumeGroupSnapshot %s/%s was deleted while firedrill waited for it: %w", g.Namespace, name, err)
		case err != nil:
			return nil, fmt.Errorf("while reading VolumeGroupSnapshot %s/%s: %w", g.Namespace, name, err)
		}
		if s := vgs.Status; s != nil {
			if s.Error != nil && s.Error.Message != nil {
				return nil, fmt.Errorf("%w: VolumeGroupSnapshot %s/%s: %s", ErrSnapshotFailed, g.Namespace, name, *s.Error.Message)
			}
			if done(s) {
				return vgs, nil
			}
		}
		if err := g.sleep(ctx, poll, deadline); err != nil {
			return nil, err
		}
		poll = min(poll*2, maxPoll)
	}
}

// waitMembers waits until the snapshot controller has made a member VolumeSnapshot of the group
// snapshot for every requested PVC. Members are the VolumeSnapshots the group snapshot owns
// (external-snapshotter v8.2+ no longer labels them); their source names the PVC. It returns the
// members by PVC and the names of all members found, for cleanup; ErrNotReady once the driver's
// clock reaches a non-zero deadline.
func (g *GroupDriver) waitMembers(ctx context.Context, client snapshotv1client.VolumeSnapshotInterface, vgs *groupv1.VolumeGroupSnapshot, ms []GroupMember, maxPoll time.Duration, deadline time.Time) (map[string]string, []string, error) {
	poll := min(g.firstPoll(), maxPoll)
	var all []string
	for {
		l, err := client.List(ctx, metav1.ListOptions{})
		if err != nil {
			if ctx.Err() != nil {
				return nil, all, ctxErr(ctx)
			}
			return nil, all, fmt.Errorf("while listing the VolumeSnapshots of VolumeGroupSnapshot %s/%s: %w", g.Namespace, vgs.Name, err)
		}
		byPVC := map[string]string{}
		all = all[:0]
		for _, vs := range l.Items {
			if !memberOf(&vs, vgs) {
				continue
			}
			all = append(all, vs.Name)
			if s := vs.Status; s != nil && s.Error != nil && s.Error.Message != nil {
				return nil, all, fmt.Errorf("%w: member %s/%s of VolumeGroupSnapshot %s: %s", ErrSnapshotFailed, g.Namespace, vs.Name, vgs.Name, *s.Error.Message)
			}
			if src := vs.Spec.Source.PersistentVolumeClaimName; src != nil && *src != "" {
				byPVC[*src] = vs.Name
			}
		}
		var missing []string
		for _, m := range ms {
			for _, v := range m.Volumes {
				if _, ok := byPVC[v.Name]; !ok {
					missing = append(missing, v.Name)
				}
			}
		}
		if len(missing) == 0 {
			return byPVC, all, nil
		}
		// The group is ready only once every member exists: a ready group without one of our
		// PVCs means the selector missed it, and waiting longer will not help.
		if s := vgs.Status; s != nil && s.ReadyToUse != nil && *s.ReadyToUse && len(all) > 0 {
			return nil, all, fmt.Errorf("%w: VolumeGroupSnapshot %s/%s is ready without PVC(s) %s; label them %s", ErrGroupMembers, g.Namespace, vgs.Name, strings.Join(missing, ", "), metav1.FormatLabelSelector(vgs.Spec.Source.Selector))
		}
		if err := g.sleep(ctx, poll, deadline); err != nil {
			return nil, all, err
		}
		poll = min(poll*2, maxPoll)
		if cur, err := g.API.VolumeGroupSnapshots(g.Namespace).Get(ctx, vgs.Name, metav1.GetOptions{}); err == nil {
			vgs = cur
		}
	}
}

func memberOf(vs *snapshotv1.VolumeSnapshot, vgs *groupv1.VolumeGroupSnapshot) bool {
	for _, o := range vs.OwnerReferences {
		if o.Kind == "VolumeGroupSnapshot" && o.UID == vgs.UID && o.Name == vgs.Name {
			return true
		}
	}
	return vs.Status != nil && vs.Status.VolumeGroupSnapshotName != nil && *vs.Status.VolumeGroupSnapshotName == vgs.Name
}

func (g *GroupDriver) firstPoll() time.Duration {
	if g.Poll <= 0 {
		return 10 * time.Millisecond
	}
	return g.Poll
}

// sleep waits d on the driver's clock, or until a non-zero deadline, which it reports as
// ErrNotReady (before waiting, when the deadline has passed already).
func (g *GroupDriver) sleep(ctx context.Context, d time.Duration, deadline time.Time) error {
	if !deadline.IsZero() {
		left := deadline.Sub(g.clock().Now())
		if left <= 0 {
			return ErrNotReady
		}
		d = min(d, left)
	}
	t := g.clock().NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctxErr(ctx)
	case <-t.C():
		return nil
	}
}

// deleteGroup deletes a group snapshot and its members, with a context of its own (cleanup must
// run after an interrupt). The snapshot controller deletes members with their group; deleting
// them too leaves nothing behind where no controller runs, and is harmless where one does.
func (g *GroupDriver) deleteGroup(ctx context.Context, vgs *groupv1.VolumeGroupSnapshot, members []string) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var errs []error
	if err := g.API.VolumeGroupSnapshots(g.Namespace).Delete(cctx, vgs.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("while deleting VolumeGroupSnapshot %s/%s: %w", g.Namespace, vgs.Name, err))
	}
	if vgs.UID != "" {
		// Members may have appeared since they were last listed.
		if l, err := g.Snapshots.VolumeSnapshots(g.Namespace).List(cctx, metav1.ListOptions{}); err == nil {
			for _, vs := range l.Items {
				if memberOf(&vs, vgs) && !slices.Contains(members, vs.Name) {
					members = append(members, vs.Name)
				}
			}
		}
	}
	if err := deleteAll(cctx, g.Snapshots.VolumeSnapshots(g.Namespace), members); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func patchMeta(ctx context.Context, client snapshotv1client.VolumeSnapshotInterface, name string, labels, ann map[string]string) error {
	b, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels, "annotations": ann}})
	if err != nil {
		return fmt.Errorf("while encoding labels: %w", err)
	}
	if _, err := client.Patch(ctx, name, types.MergePatchType, b, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("while labelling member VolumeSnapshot %s: %w", name, err)
	}
	return nil
}

// releaseGroups deletes the VolumeGroupSnapshots of deleted member VolumeSnapshots once none of
// their members is left alive: the snapshot controller keeps a member (its in-group finalizer)
// until its group is deleted, so deleting the members alone would never free the storage.
func (d *Driver) releaseGroups(ctx context.Context, groups map[string]bool) error {
	if d.Groups == nil || len(groups) == 0 {
		return nil
	}
	l, err := d.API.VolumeSnapshots(d.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("while listing VolumeSnapshots in %s: %w", d.Namespace, err)
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(groups)) {
		alive := slices.ContainsFunc(l.Items, func(vs snapshotv1.VolumeSnapshot) bool {
			// Only members firedrill recorded count: a volume the selector caught by accident
			// must not keep the group alive.
			return vs.DeletionTimestamp == nil && vs.Labels[LabelVolumeGroupSnapshot] == name
		})
		if alive {
			continue
		}
		if err := d.Groups.VolumeGroupSnapshots(d.Namespace).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("while deleting VolumeGroupSnapshot %s/%s: %w", d.Namespace, name, err))
		}
	}
	return errors.Join(errs...)
}
