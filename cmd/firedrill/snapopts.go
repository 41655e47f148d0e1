package main

import (
	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/restore/snapshot/retention"
	snaprun "github.com/firedrill/firedrill/restore/snapshot/run"
)

// snapTarget maps a configured (validated, defaulted) target to the snapshot runner's.
func snapTarget(t *policy.Target) snaprun.Target {
	s := t.Snapshot
	return snaprun.Target{
		Name: t.Name, Engine: t.Engine, Mode: s.Mode, DSN: t.DSN, Driver: s.Driver,
		MaxFreeze: s.MaxFreeze.Duration, FastCheckpoint: *s.FastCheckpoint,
		Local: snaprun.LocalSnapshot{DataDir: s.Local.DataDir, Repository: s.Local.Repository, Parallel: s.Local.Parallel},
		CSI: snaprun.CSISnapshot{Namespace: s.CSI.Namespace, PVC: s.CSI.PVC, WALPVC: s.CSI.WALPVC, ClassName: s.CSI.ClassName,
			ReadyTimeout: s.CSI.ReadyTimeout.Duration, Kubeconfig: s.CSI.Kubeconfig},
		Retention: retention.Policy{KeepLast: t.Retention.KeepLast, KeepWithin: t.Retention.KeepWithin.Duration},
	}
}

// snapTargets maps configured targets.
func snapTargets(ts []policy.Target) []snaprun.Target {
	out := make([]snaprun.Target, len(ts))
	for i := range ts {
		out[i] = snapTarget(&ts[i])
	}
	return out
}

// snapGroup maps a configured group, its members in the group's order (validated: each is a
// target of cfg).
func snapGroup(cfg *policy.Config, g *policy.Group) *snaprun.Group {
	out := &snaprun.Group{Name: g.Name, MaxFreeze: g.MaxFreeze.Duration, VolumeGroupSnapshot: g.CSI.VolumeGroupSnapshot,
		Namespace: g.CSI.Namespace, ClassName: g.CSI.GroupSnapshotClassName, Selector: g.CSI.Selector}
	for _, name := range g.Targets {
		if t, ok := cfg.Target(name); ok {
			out.Members = append(out.Members, snapTarget(t))
		}
	}
	return out
}
