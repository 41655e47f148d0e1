package run

import (
	"context"
	"log/slog"
	"time"

	"github.com/firedrill/firedrill/reports/progress"
	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/snapshot/csi"
	"github.com/firedrill/firedrill/restore/snapshot/local"
	"github.com/firedrill/firedrill/restore/snapshot/take"
)

// Take takes one snapshot of a configured target, without retention (the demo's first
// snapshot). log may be nil.
func Take(ctx context.Context, f Factory, t *Target, pr progress.Reporter, log *slog.Logger) (*snapshot.Metadata, error) {
	return newRunner(f, nil, Options{Log: log}).takeOne(ctx, t, pr)
}

// takeOptions maps a target to a snapshot.
func takeOptions(f Factory, t *Target, pr progress.Reporter, log *slog.Logger, now func() time.Time) (take.Options, error) {
	dsn, err := t.DSN()
	if err != nil {
		return take.Options{}, err
	}
	o := take.Options{
		Target: t.Name, Engine: t.Engine, Mode: t.Mode, DSN: dsn,
		MaxFreeze: t.MaxFreeze, Fast: t.FastCheckpoint,
		Status: pr.Status, Now: now, Log: log.With("target", t.Name),
	}
	switch t.Driver {
	case csi.DriverName:
		d, err := csiDriver(f, t, now)
		if err != nil {
			return take.Options{}, err
		}
		o.CSI = d
		o.Volumes = []csi.PVC{{Role: csi.RoleData, Name: t.CSI.PVC}}
		if t.CSI.WALPVC != "" {
			o.Volumes = append(o.Volumes, csi.PVC{Role: csi.RoleWAL, Name: t.CSI.WALPVC})
		}
	default:
		// A copy under backup mode is not bounded by maxFreeze: take decides that from the
		// engine's registry entry (engine.InBackupMode), not the runner.
		o.DataDir, o.Repository = t.Local.DataDir, Repository(t)
	}
	return o, nil
}

// Repository is the local snapshot repository of a target.
func Repository(t *Target) *local.Repository {
	return local.NewForTarget(t.Local.Repository, t.Name, t.Local.Parallel)
}

// csiDriver is the csi driver of a target, on the clients of its kubeconfig.
func csiDriver(f Factory, t *Target, now func() time.Time) (*csi.Driver, error) {
	cs := t.CSI
	k, err := f.Kube("target "+t.Name, cs.Kubeconfig)
	if err != nil {
		return nil, err
	}
	return &csi.Driver{
		API: k.Snapshots.SnapshotV1(), Groups: k.Snapshots.GroupsnapshotV1(), Namespace: cs.Namespace, ClassName: cs.ClassName,
		ReadyTimeout: cs.ReadyTimeout, Now: now,
	}, nil
}

// groupDriver is the VolumeGroupSnapshot driver of a group whose members all use the csi
// driver, or nil (freeze-all ordering) otherwise.
func groupDriver(f Factory, g *Group, now func() time.Time) (*csi.GroupDriver, error) {
	if g.VolumeGroupSnapshot == take.VolumeGroupDisabled || len(g.Members) == 0 {
		return nil, nil
	}
	for i := range g.Members {
		if g.Members[i].Driver != csi.DriverName {
			return nil, nil
		}
	}
	first := &g.Members[0]
	k, err := f.Kube("group "+g.Name, first.CSI.Kubeconfig)
	if err != nil {
		return nil, err
	}
	return &csi.GroupDriver{
		API: k.Snapshots.GroupsnapshotV1(), Snapshots: k.Snapshots.SnapshotV1(), Discovery: k.Snapshots.Discovery(), Volumes: k.Core.CoreV1(),
		Namespace: g.Namespace, ClassName: g.ClassName, Selector: g.Selector,
		ReadyTimeout: first.CSI.ReadyTimeout, Now: now,
	}, nil
}
