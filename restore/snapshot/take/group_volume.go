package take

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/snapshot/csi"
)

// How a group's members were cut (GroupResult.Method).
const (
	MethodVolumeGroupSnapshot = "volume-group-snapshot"
	MethodFreezeAll           = "freeze-all"
)

// When to use a VolumeGroupSnapshot (GroupOptions.VolumeGroupSnapshot).
const (
	// VolumeGroupAuto uses one where the cluster supports it, freeze-all ordering elsewhere.
	VolumeGroupAuto = "auto"
	// VolumeGroupRequired fails the group where the cluster cannot cut it atomically.
	VolumeGroupRequired = "required"
	// VolumeGroupDisabled always uses freeze-all ordering.
	VolumeGroupDisabled = "disabled"
)

// GroupOptions is one snapshot of a group.
type GroupOptions struct {
	Name      string
	Members   []Options
	MaxFreeze time.Duration
	// VolumeGroup, when set, is asked whether one VolumeGroupSnapshot can cut every member's
	// volumes (all members on driver csi, in its namespace); its Namespace defaults to theirs.
	VolumeGroup *csi.GroupDriver
	// VolumeGroupSnapshot is auto (default), required or disabled.
	VolumeGroupSnapshot string
}

// TakeGroupWith snapshots a group under one batch id. Where the cluster supports a
// VolumeGroupSnapshot for the members' volumes, every member is frozen, the volumes are cut in
// one VolumeGroupSnapshot and every member is thawed at the cut; otherwise (or with
// VolumeGroupSnapshot disabled) the members are frozen, cut one VolumeSnapshot or copy each, and
// thawed (freeze-all ordering). Either way the frozen window is bounded by MaxFreeze, and a
// failure in any member thaws every member and deletes the partial batch.
func TakeGroupWith(ctx context.Context, o GroupOptions) (*GroupResult, error) {
	if len(o.Members) == 0 {
		return nil, fmt.Errorf("%w: group %s has no members", ErrUnsupported, o.Name)
	}
	for i := range o.Members {
		o.Members[i].defaults()
		if err := Supported(o.Members[i].Engine, o.Members[i].Mode, o.Members[i].DriverName()); err != nil {
			return nil, fmt.Errorf("while checking group %s member %s: %w", o.Name, o.Members[i].Target, err)
		}
	}
	gd, sup, why, err := volumeGroup(ctx, o)
	if err != nil {
		return nil, err
	}
	if gd == nil {
		res, err := takeFreezeAll(ctx, o.Name, o.Members, o.MaxFreeze)
		if res != nil {
			res.Fallback = why
		}
		return res, err
	}
	return takeVolumeGroup(ctx, o, gd, sup)
}

// volumeGroup decides whether the group is cut by one VolumeGroupSnapshot: it returns the group
// driver and what it detected, or nil and why not.
func volumeGroup(ctx context.Context, o GroupOptions) (*csi.GroupDriver, csi.Support, string, error) {
	mode := o.VolumeGroupSnapshot
	if mode == "" {
		mode = VolumeGroupAuto
	}
	if mode == VolumeGroupDisabled || o.VolumeGroup == nil {
		if mode == VolumeGroupRequired {
			return nil, csi.Support{}, "", fmt.Errorf("%w: group %s requires a VolumeGroupSnapshot but has no Kubernetes client for it", ErrUnsupported, o.Name)
		}
		return nil, csi.Support{}, "", nil
	}
	gd := *o.VolumeGroup
	why := func() string {
		for _, m := range o.Members {
			if m.CSI == nil {
				return fmt.Sprintf("member %s uses driver %s, not csi", m.Target, m.DriverName())
			}
			if gd.Namespace == "" {
				gd.Namespace = m.CSI.Namespace
			}
			if m.CSI.Namespace != gd.Namespace {
				return fmt.Sprintf("member %s's PVCs are in namespace %s, not %s: a VolumeGroupSnapshot selects PVCs of one namespace", m.Target, m.CSI.Namespace, gd.Namespace)
			}
		}
		if gd.ReadyTimeout == 0 {
			gd.ReadyTimeout = o.Members[0].CSI.ReadyTimeout
		}
		if gd.Now == nil {
			gd.Now = o.Members[0].Now
		}
		return ""
	}()
	var sup csi.Support
	if why == "" {
		var pvcs []string
		for _, m := range o.Members {
			for _, v := range m.Volumes {
				pvcs = append(pvcs, v.Name)
			}
		}
		var err error
		if sup, err = gd.Detect(ctx, pvcs); err != nil {
			return nil, sup, "", fmt.Errorf("%w: while detecting VolumeGroupSnapshot support for group %s: %w", ErrUnreachable, o.Name, err)
		}
		why = sup.Reason
	}
	if why != "" {
		if mode == VolumeGroupRequired {
			return nil, sup, "", fmt.Errorf("%w: group %s requires a VolumeGroupSnapshot (groups[].csi.volumeGroupSnapshot: required), but %s", ErrUnsupported, o.Name, why)
		}
		return nil, sup, "VolumeGroupSnapshot not used: " + why, nil
	}
	return &gd, sup, "", nil
}

// takeVolumeGroup cuts every member's volumes in one VolumeGroupSnapshot.
func takeVolumeGroup(ctx context.Context, o GroupOptions, gd *csi.GroupDriver, sup csi.Support) (*GroupResult, error) {
	members := o.Members
	batch := newBatchID(members[0].Now())
	var req []csi.GroupMember
	// closeAll releases the members opened so far after err; what releasing one returned is
	// joined into err, never dropped.
	closeAll := func(err error) error {
		for _, m := range req {
			if cerr := m.Freezer.Close(ctx); cerr != nil {
				err = errors.Join(err, fmt.Errorf("and while releasing member %s (it may still be frozen or in backup mode): %w", m.Target, cerr))
			}
		}
		return err
	}
	gctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	run := &groupRun{n: len(members), now: members[0].Now}
	if o.MaxFreeze > 0 {
		run.max, run.expire = o.MaxFreeze, func() { cancel(ErrFreezeTimeout) }
	}
	for i := range members {
		members[i].BatchID = batch
		fz, err := open(ctx, &members[i])
		if err != nil {
			return nil, closeAll(fmt.Errorf("while connecting to group %s member %s: %w", o.Name, members[i].Target, err))
		}
		req = append(req, csi.GroupMember{
			Target: members[i].Target, Engine: members[i].Engine, Mode: members[i].Mode,
			Volumes: members[i].Volumes, Freezer: &memberFreezer{Freezer: fz.freezer, run: run}, Attributes: fz.info,
		})
	}
	members[0].Log.Info("taking group snapshot", "group", o.Name, "method", MethodVolumeGroupSnapshot,
		"class", sup.ClassName, "csiDriver", sup.CSIDriver, "namespace", gd.Namespace, "batch", batch)
	out, err := gd.Create(gctx, csi.GroupRequest{Group: o.Name, BatchID: batch, ClassName: sup.ClassName, Members: req, Status: members[0].Status})
	run.stopTimer()
	res := &GroupResult{Group: o.Name, BatchID: batch, Method: MethodVolumeGroupSnapshot,
		VolumeGroupSnapshot: csi.VolumeGroupSnapshotName(o.Name, batch),
		FrozenSeconds:       run.window().Seconds(), MaxFreezeSeconds: o.MaxFreeze.Seconds()}
	if err != nil {
		if errors.Is(context.Cause(gctx), ErrFreezeTimeout) {
			err = fmt.Errorf("%w (%s): %w", ErrFreezeTimeout, o.MaxFreeze, err)
		}
		return res, fmt.Errorf("%w: %s (batch %s, VolumeGroupSnapshot %s; every member was thawed and the partial batch deleted): %w", ErrGroupFailed, o.Name, batch, res.VolumeGroupSnapshot, err)
	}
	res.Snapshots = make([]snapshot.Metadata, len(out.Snapshots))
	for i, m := range out.Snapshots {
		res.Snapshots[i] = *m
	}
	if len(out.Extra) > 0 {
		members[0].Log.Warn("the group snapshot's PVC selector matched volumes of no member; they were cut too and are deleted with the group snapshot",
			"group", o.Name, "volumeSnapshots", out.Extra)
	}
	return res, nil
}
