package run

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	snapshotclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/firedrill/firedrill/reports/progress"
	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/snapshot/retention"
	"github.com/firedrill/firedrill/restore/snapshot/take"
)

// Factory hands out the clients snapshots need, each built once by the caller: the runner
// never builds one itself.
type Factory interface {
	// Kube returns the Kubernetes clients of a kubeconfig ("" = the default loading rules).
	// subject ("target orders", "group shop") names who needs them in the error.
	Kube(subject, kubeconfig string) (*KubeClients, error)
}

// KubeClients are the Kubernetes clients of one kubeconfig.
type KubeClients struct {
	Snapshots snapshotclient.Interface
	Core      kubernetes.Interface
	// Rest is the configuration they were built from (port-forwarding dials with it).
	Rest *rest.Config
}

// Sink is where snapshot outcomes go as they are known: one call per target, or one per group.
// The CLI renders the returned results and needs none (nil); a daemon records, counts or
// notifies. A sink's error joins the run's error: the snapshot was taken, the outcome was lost.
type Sink interface {
	Snapshot(ctx context.Context, r snapshot.Result) error
	Group(ctx context.Context, r *take.GroupResult) error
}

// Options select what to snapshot and how progress is shown.
type Options struct {
	// Targets are snapshotted one by one when Group is nil.
	Targets []Target
	// Group, when set, is snapshotted under one batch id instead.
	Group *Group
	// History is the drill history retention consults (it never deletes the only snapshot
	// whose last drill passed); required when a target has retention rules.
	History retention.History
	// Progress returns a reporter for one snapshot (a target's or the group's); default none.
	Progress func() progress.Reporter
	Log      *slog.Logger
	// Now is the clock of snapshot ids, timings and retention's keepWithin; default time.Now.
	Now func() time.Time
}

// Results are a run's outcomes: one per target, or the group's.
type Results struct {
	Targets []snapshot.Result
	Group   *take.GroupResult
}

// Run snapshots o.Group, or each of o.Targets, then applies retention after each success. It
// always returns the results, also on failure (a group that failed has Status
// snapshot.ResultError); the error joins every failure (take's, retention's, the sink's), so the
// caller's exit code can be the worst of them.
func Run(ctx context.Context, f Factory, sink Sink, o Options) (*Results, error) {
	r := newRunner(f, sink, o)
	if o.Group != nil {
		res, err := r.group(ctx, o.Group)
		return &Results{Group: res}, err
	}
	res, err := r.targets(ctx, o.Targets)
	return &Results{Targets: res}, err
}

// runner carries one run's dependencies; take and takeGroup are the snapshot core, replaced
// by fakes in tests.
type runner struct {
	factory   Factory
	history   retention.History
	sink      Sink
	progress  func() progress.Reporter
	log       *slog.Logger
	now       func() time.Time
	take      func(context.Context, take.Options) (*snapshot.Metadata, error)
	takeGroup func(context.Context, take.GroupOptions) (*take.GroupResult, error)
}

func newRunner(f Factory, sink Sink, o Options) *runner {
	r := &runner{factory: f, history: o.History, sink: sink, progress: o.Progress, log: o.Log, now: o.Now,
		take: take.Take, takeGroup: take.TakeGroupWith}
	if r.progress == nil {
		r.progress = func() progress.Reporter { return progress.New(nil, false, r.log) }
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r
}

// targets snapshots every target in turn, whatever failed before, and applies each successful
// target's retention. It returns one result per target and every failure joined.
func (r *runner) targets(ctx context.Context, targets []Target) ([]snapshot.Result, error) {
	results := make([]snapshot.Result, 0, len(targets))
	var errs []error
	for i := range targets {
		t := &targets[i]
		var res snapshot.Result
		if ctx.Err() != nil {
			res = snapshot.Result{Target: t.Name, Status: snapshot.ResultError, Error: "not attempted: interrupted"}
		} else {
			var err error
			res, err = r.target(ctx, t)
			if err != nil {
				errs = append(errs, err)
			}
		}
		results = append(results, res)
		if err := r.record(ctx, func(ctx context.Context) error { return r.sink.Snapshot(ctx, res) }); err != nil {
			errs = append(errs, fmt.Errorf("while recording the snapshot result of %s: %w", t.Name, err))
		}
	}
	return results, errors.Join(errs...)
}

// target snapshots one target and, after a success, applies its retention.
func (r *runner) target(ctx context.Context, t *Target) (snapshot.Result, error) {
	pr := r.progress()
	meta, err := r.takeOne(ctx, t, pr)
	pr.Done()
	if err != nil {
		err = fmt.Errorf("while taking a snapshot of %s: %w", t.Name, err)
		return snapshot.Result{Target: t.Name, Status: snapshot.ResultError, Error: err.Error()}, err
	}
	meta.Status = snapshot.StatusComplete
	rep, err := r.retain(ctx, t)
	return snapshot.Result{Target: t.Name, Status: snapshot.StatusComplete, Snapshot: meta, Retention: rep}, err
}

// takeOne takes one snapshot of a target.
func (r *runner) takeOne(ctx context.Context, t *Target, pr progress.Reporter) (*snapshot.Metadata, error) {
	o, err := takeOptions(r.factory, t, pr, r.log, r.now)
	if err != nil {
		return nil, err
	}
	pr.Phase("snapshot " + t.Name)
	return r.take(ctx, o)
}

// group snapshots a group under one batch id (all members or none) and applies every member's
// retention after a success. A group that failed has a result too, saying why.
func (r *runner) group(ctx context.Context, g *Group) (*take.GroupResult, error) {
	pr := r.progress()
	res, err := r.takeAll(ctx, g, pr)
	pr.Done()
	if err != nil {
		err = fmt.Errorf("while taking a snapshot of group %s: %w", g.Name, err)
		res = &take.GroupResult{Group: g.Name, Status: snapshot.ResultError, Error: err.Error(), Snapshots: []snapshot.Metadata{}}
		return res, errors.Join(err, r.recordGroup(ctx, res))
	}
	res.Status = snapshot.StatusComplete
	var errs []error
	for i := range g.Members {
		t := &g.Members[i]
		rep, rerr := r.retain(ctx, t)
		if rerr != nil {
			errs = append(errs, rerr)
		}
		if rep != nil {
			if res.Retention == nil {
				res.Retention = map[string]*snapshot.Retention{}
			}
			res.Retention[t.Name] = rep
		}
	}
	return res, errors.Join(append(errs, r.recordGroup(ctx, res))...)
}

// takeAll takes a group's snapshot under one batch id.
func (r *runner) takeAll(ctx context.Context, g *Group, pr progress.Reporter) (*take.GroupResult, error) {
	members := make([]take.Options, 0, len(g.Members))
	for i := range g.Members {
		o, err := takeOptions(r.factory, &g.Members[i], pr, r.log, r.now)
		if err != nil {
			return nil, err
		}
		members = append(members, o)
	}
	gd, err := groupDriver(r.factory, g, r.now)
	if err != nil {
		return nil, err
	}
	pr.Phase("snapshot group " + g.Name)
	return r.takeGroup(ctx, take.GroupOptions{Name: g.Name, Members: members, MaxFreeze: g.MaxFreeze,
		VolumeGroup: gd, VolumeGroupSnapshot: g.VolumeGroupSnapshot})
}

func (r *runner) recordGroup(ctx context.Context, res *take.GroupResult) error {
	err := r.record(ctx, func(ctx context.Context) error { return r.sink.Group(ctx, res) })
	if err != nil {
		return fmt.Errorf("while recording the snapshot result of group %s: %w", res.Group, err)
	}
	return nil
}

// record hands an outcome to the sink, if any. An interrupted run still records what it did.
func (r *runner) record(ctx context.Context, put func(context.Context) error) error {
	if r.sink == nil {
		return nil
	}
	return put(context.WithoutCancel(ctx))
}
