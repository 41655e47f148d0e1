package run

import (
	"context"
	"log/slog"
	"time"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/reports/progress"
	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/snapshot/csi"
	"github.com/firedrill/firedrill/restore/snapshot/local"
	"github.com/firedrill/firedrill/restore/snapshot/take"
)

// Take takes one snapshot of a configured target, without retention (the demo's first
// snapshot). log may be nil.
func Take(ctx context.Context, f Factory, t *policy.Target, pr progress.Reporter, log *slog.Logger) (*snapshot.Metadata, error) {
	return newRunner(nil, f, nil, Options{Log: log}).takeOne(ctx, t, pr)
}

// takeOptions maps a configured target to a snapshot.
func takeOptions(f Factory, t *policy.Target, pr progress.Reporter, log *slog.Logger, now func() time.Time) (take.Options, error) {
	dsn, err := t.DSN()
	if err != nil {
		return take.Options{}, err
	}
	o := take.Options{
		Target: t.Name, Engine: t.Engine, Mode: t.Snapshot.Mode, DSN: dsn,
		MaxFreeze: t.Snapshot.MaxFreeze.Duration, Fast: *t.Snapshot.FastCheckpoint,
		Status: pr.Status, Now: now, Log: log.With("target", t.Name),
	}
	switch t.Snapshot.Driver {
	case csi.DriverName:
		d, err := csiDriver(f, t, now)
		if err != nil {
			return take.Options{}, err
		}
		o.CSI = d
		o.Volumes = []csi.PVC{{Role: csi.RoleData, Name: t.Snapshot.CSI.PVC}}
		if t.Snapshot.CSI.WALPVC != "" {
			o.Volumes = append(o.Volumes, csi.PVC{Role: csi.RoleWAL, Name: t.Snapshot.CSI.WALPVC})
		}
	default:
		// A copy under backup mode is not bounded by maxFreeze: take decides that from the
		// engine's registry entry (engine.InBackupMode), not the runner.
		o.DataDir, o.Repository = t.Snapshot.Local.DataDir, Repository(t)
	}
	return o, nil
}

// Repository is the local snapshot repository of a target.
func Repository(t *policy.Target) *local.Repository {
	return local.NewForTarget(t.Snapshot.Local.Repository, t.Name, t.Snapshot.Local.Parallel)
}

// csiDriver is the csi driver of a target, on the clients of its kubeconfig.
func csiDriver(f Factory, t *policy.Target, now func() time.Time) (*csi.Driver, error) {
	cs := t.Snapshot.CSI
	k, err := f.Kube("target "+t.Name, cs.Kubeconfig)
	if err != nil {
		return nil, err
	}
	return &csi.Driver{
		API: k.Snapshots.SnapshotV1(), Groups: k.Snapshots.GroupsnapshotV1(), Namespace: cs.Namespace, ClassName: cs.ClassName,
		ReadyTimeout: cs.ReadyTimeout.Duration, Now: now,
	}, nil
}

// groupDriver is the VolumeGroupSnapshot driver of a group whose members all use the csi
// driver, or nil (freeze-all ordering) otherwise.
func groupDriver(f Factory, cfg *policy.Config, g *policy.Group, now func() time.Time) (*csi.GroupDriver, error) {
	if g.CSI.VolumeGroupSnapshot == policy.GroupSnapshotDisabled {
		return nil, nil
	}
	var first *policy.Target
	for _, name := range g.Targets {
		t, _ := cfg.Target(name) // validated
		if t.Snapshot.Driver != csi.DriverName {
			return nil, nil
		}
		if first == nil {
			first = t
		}
	}
	if first == nil {
		return nil, nil
	}
	k, err := f.Kube("group "+g.Name, first.Snapshot.CSI.Kubeconfig)
	if err != nil {
		return nil, err
	}
	return &csi.GroupDriver{
		API: k.Snapshots.GroupsnapshotV1(), Snapshots: k.Snapshots.SnapshotV1(), Discovery: k.Snapshots.Discovery(), Volumes: k.Core.CoreV1(),
		Namespace: g.CSI.Namespace, ClassName: g.CSI.GroupSnapshotClassName, Selector: g.CSI.Selector,
		ReadyTimeout: first.Snapshot.CSI.ReadyTimeout.Duration, Now: now,
	}, nil
}
