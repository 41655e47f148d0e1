package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	snapshotclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/reports/history"
	"github.com/firedrill/firedrill/reports/progress"
	"github.com/firedrill/firedrill/reports/render"
	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/snapshot/csi"
	"github.com/firedrill/firedrill/restore/snapshot/retention"
	"github.com/firedrill/firedrill/restore/snapshot/take"
)

func newSnapshotCmd(g *globals) *cobra.Command {
	var target, group string
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Take an application-consistent snapshot of a target or a group",
		Long: `Take an application-consistent snapshot of one target (--target), of a group of targets
under one batch id (--group), or of every target.

Each engine freezes through one held connection, for at most snapshot.maxFreeze (default 60s):
  postgres  online: pg_backup_start/pg_backup_stop in one session; backup_label and
            tablespace_map are kept with the snapshot. crash-consistent (csi only): CHECKPOINT,
            then one atomic volume snapshot.
  mariadb   online: FLUSH TABLES WITH READ LOCK on one connection, the binary log position
  mysql     read under the lock; crash-consistent (csi only): FLUSH LOGS, no lock, InnoDB only.
            The local driver refuses these engines: InnoDB files change under the lock.
  redis     BGSAVE, waiting until LASTSAVE moves on and rdb_last_bgsave_status is ok.
  mongodb   fsyncLock / fsyncUnlock.
On timeout, error, Ctrl-C or SIGTERM the database is thawed first, then the error reported, and
no partial snapshot is left.

Drivers: local copies the data directory (copy-on-write clones where the filesystem supports
them) and writes its metadata last, atomically. csi creates a VolumeSnapshot per volume (data,
and walPVC in the same freeze), thaws as soon as status.creationTime is set, then waits for
readyToUse (snapshot.csi.readyTimeout).

A group freezes every member, cuts every member, then thaws every member; if any member fails,
every member is thawed and the whole batch deleted. After a successful snapshot, the target's
retention rules (retention.keepLast, retention.keepWithin) delete what they no longer keep,
never the only snapshot whose last drill passed; they count complete snapshots only and never
delete a damaged or foreign one (see 'firedrill snapshots --help'). The result lists each
deletion and why (-o json: retention.deleted[] with id, takenAt, reason).

With several targets every one is attempted, whatever failed before: each gets a row (status,
id or error; -o json: an array of results, an object for one target, also on failure), and the
exit code is the worst outcome.

` + exitCodesHelp,
		Example: `  firedrill snapshot --target orders
  firedrill snapshot --group shop --output json
  firedrill snapshot --target orders --output json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if target != "" && group != "" {
				return usageError{errors.New("--target and --group cannot be combined")}
			}
			f, cfg, log, err := g.open()
			if err != nil {
				return err
			}
			cl := newClients()
			ctx := cmd.Context()
			if group != "" {
				gr, ok := cfg.Group(group)
				if !ok {
					return usageError{fmt.Errorf("no group %q in %s", group, cfg.File)}
				}
				return snapshotGroup(ctx, g, f, cl, cfg, gr, log)
			}
			targets, err := pickTargets(cfg, target)
			if err != nil {
				return err
			}
			results, err := snapshotTargets(ctx, g, cl, cfg, targets, log)
			var perr error
			if f == render.FormatJSON {
				if len(results) == 1 {
					perr = render.JSON(g.stdout, results[0])
				} else {
					perr = render.JSON(g.stdout, results)
				}
			} else {
				perr = render.SnapshotResults(g.stdout, results, time.Now())
			}
			return errors.Join(err, perr)
		},
	}
	cmd.Flags().StringVarP(&target, "target", "t", "", "target to snapshot (default: every target)")
	cmd.Flags().StringVarP(&group, "group", "g", "", "group (from groups:) to snapshot together under one batch id")
	return cmd
}

// snapshotTargets snapshots every target in turn, whatever failed before, and applies each
// successful target's retention. It returns one result per target and every failure joined:
// exitCode makes the worst of them the command's exit code (a configuration problem 2, else 3).
func snapshotTargets(ctx context.Context, g *globals, cl *clients, cfg *policy.Config, targets []policy.Target, log *slog.Logger) ([]snapshot.Result, error) {
	results := make([]snapshot.Result, 0, len(targets))
	var errs []error
	for i := range targets {
		t := &targets[i]
		if ctx.Err() != nil {
			results = append(results, snapshot.Result{Target: t.Name, Status: snapshot.ResultError, Error: "not attempted: interrupted"})
			continue
		}
		pr := g.progress(log)
		meta, err := takeSnapshotWith(ctx, cl, t, pr, log)
		pr.Done()
		if err != nil {
			err = fmt.Errorf("while taking a snapshot of %s: %w", t.Name, err)
			errs = append(errs, err)
			results = append(results, snapshot.Result{Target: t.Name, Status: snapshot.ResultError, Error: err.Error()})
			continue
		}
		meta.Status = snapshot.StatusComplete
		rep, rerr := retain(ctx, cl, cfg, t, log)
		if rerr != nil {
			errs = append(errs, rerr)
		}
		results = append(results, snapshot.Result{Target: t.Name, Status: snapshot.StatusComplete, Snapshot: meta, Retention: rep})
	}
	return results, errors.Join(errs...)
}

// snapshotGroup snapshots a group under one batch id (all members or none), applies every
// member's retention after a success, and prints the result, also when it failed.
func snapshotGroup(ctx context.Context, g *globals, f render.Format, cl *clients, cfg *policy.Config, gr *policy.Group, log *slog.Logger) error {
	pr := g.progress(log)
	res, err := takeGroup(ctx, cl, cfg, gr, pr, log)
	pr.Done()
	if err != nil {
		err = fmt.Errorf("while taking a snapshot of group %s: %w", gr.Name, err)
		res = &take.GroupResult{Group: gr.Name, Status: snapshot.ResultError, Error: err.Error(), Snapshots: []snapshot.Metadata{}}
		if f == render.FormatJSON {
			return errors.Join(err, render.JSON(g.stdout, res))
		}
		fmt.Fprintf(g.stdout, "Group %s: no snapshot taken (every member was thawed and the batch deleted):\n  %s\n", gr.Name, err)
		return err
	}
	res.Status = snapshot.StatusComplete
	var rerrs []error
	for _, name := range gr.Targets {
		t, ok := cfg.Target(name)
		if !ok {
			continue
		}
		rep, rerr := retain(ctx, cl, cfg, t, log)
		if rerr != nil {
			rerrs = append(rerrs, rerr)
		}
		if rep != nil {
			if res.Retention == nil {
				res.Retention = map[string]*snapshot.Retention{}
			}
			res.Retention[name] = rep
		}
	}
	rerr := errors.Join(rerrs...)
	if f == render.FormatJSON {
		return errors.Join(render.JSON(g.stdout, res), rerr)
	}
	fmt.Fprintf(g.stdout, "Group %s, batch %s: %d snapshots by %s; frozen %s in all (max %s).\n",
		res.Group, res.BatchID, len(res.Snapshots), res.Method, render.Dur(res.FrozenSeconds), render.Dur(res.MaxFreezeSeconds))
	if res.Fallback != "" {
		fmt.Fprintf(g.stdout, "No VolumeGroupSnapshot: %s\n", res.Fallback)
	}
	if err := render.Snapshots(g.stdout, res.Snapshots, time.Now()); err != nil {
		return errors.Join(err, rerr)
	}
	for _, name := range gr.Targets {
		if rep := res.Retention[name]; rep != nil {
			render.RetentionNote(g.stdout, name, rep)
		}
	}
	return rerr
}

// retain applies a target's retention rules after a successful snapshot and reports what they
// deleted and why (nil when the target has no rules).
func retain(ctx context.Context, cl *clients, cfg *policy.Config, t *policy.Target, log *slog.Logger) (*snapshot.Retention, error) {
	plan, err := applyRetention(ctx, cl, cfg, t)
	for _, d := range plan {
		switch {
		case d.Deleted:
			log.Info("retention deleted a snapshot", "target", t.Name, "snapshot", d.Snapshot.ID, "takenAt", d.Snapshot.TakenAt, "reason", d.Detail)
		case d.Keep && d.Reason == retention.ReasonVerified:
			log.Info("retention kept the only snapshot whose last drill passed", "target", t.Name, "snapshot", d.Snapshot.ID)
		}
	}
	if err != nil {
		err = fmt.Errorf("the snapshot of %s was taken, but retention failed: %w", t.Name, err)
	}
	return retention.Report(retentionPolicy(t), plan, err), err
}

// retentionPolicy is a target's configured retention rules.
func retentionPolicy(t *policy.Target) retention.Policy {
	return retention.Policy{KeepLast: t.Retention.KeepLast, KeepWithin: t.Retention.KeepWithin.Duration}
}

func newSnapshotsCmd(g *globals) *cobra.Command {
	var target string
	cmd := &cobra.Command{
		Use:   "snapshots",
		Short: "List a target's snapshots, newest first, with damaged ones marked",
		Long: `List a target's snapshots, newest first, from its driver: the local repository, or
the VolumeSnapshots firedrill made (only those whose every volume is readyToUse).

Each has a status: complete (restorable), or, in a local repository, damaged (its meta.json is
missing, unreadable or inconsistent) or foreign (its meta.json names another target), with the
reason. Damaged and foreign snapshots are never restored or counted as the target's backups, and
retention never deletes them: look, then remove them by hand. A drill whose newest snapshot is
damaged fails (snapshot-integrity) unless --snapshot picks another; the audit fails
backup-integrity while any is there. Snapshots being taken (.partial-*) are not listed.

` + exitCodesHelp,
		Example: `  firedrill snapshots --target orders
  firedrill snapshots --target orders -o json | jq -r '.[0].id'`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, cfg, _, err := g.open()
			if err != nil {
				return err
			}
			if target == "" && len(cfg.Targets) > 1 {
				return usageError{fmt.Errorf("--target is required: %s has %d targets", cfg.File, len(cfg.Targets))}
			}
			targets, err := pickTargets(cfg, target)
			if err != nil {
				return err
			}
			t := &targets[0]
			st, err := store(newClients(), t)
			if err != nil {
				return err
			}
			snaps, err := listAll(cmd.Context(), st)
			if err != nil {
				return err
			}
			if f == render.FormatJSON {
				return render.JSON(g.stdout, snaps)
			}
			if len(snaps) == 0 {
				where := t.Snapshot.Local.Repository
				if t.Snapshot.Driver == csi.DriverName {
					where = "namespace " + t.Snapshot.CSI.Namespace
				}
				fmt.Fprintf(g.stdout, "No snapshots of %s in %s yet: take one with 'firedrill snapshot --target %s'.\n", t.Name, where, t.Name)
				return nil
			}
			return render.Snapshots(g.stdout, snaps, time.Now())
		},
	}
	cmd.Flags().StringVarP(&target, "target", "t", "", "target whose snapshots to list (required with several targets)")
	return cmd
}

// takeGroup snapshots a configured group under one batch id.
func takeGroup(ctx context.Context, cl *clients, cfg *policy.Config, g *policy.Group, pr progress.Reporter, log *slog.Logger) (*take.GroupResult, error) {
	members := make([]take.Options, 0, len(g.Targets))
	for _, name := range g.Targets {
		t, _ := cfg.Target(name) // validated
		o, err := takeOptions(cl, t, pr, log)
		if err != nil {
			return nil, err
		}
		members = append(members, o)
	}
	gd, err := cl.groupDriver(cfg, g)
	if err != nil {
		return nil, err
	}
	pr.Phase("snapshot group " + g.Name)
	return take.TakeGroupWith(ctx, take.GroupOptions{Name: g.Name, Members: members, MaxFreeze: g.MaxFreeze.Duration,
		VolumeGroup: gd, VolumeGroupSnapshot: g.CSI.VolumeGroupSnapshot})
}

// takeOptions maps a configured target to a snapshot.
func takeOptions(cl *clients, t *policy.Target, pr progress.Reporter, log *slog.Logger) (take.Options, error) {
	dsn, err := t.DSN()
	if err != nil {
		return take.Options{}, err
	}
	o := take.Options{
		Target: t.Name, Engine: t.Engine, Mode: t.Snapshot.Mode, DSN: dsn,
		MaxFreeze: t.Snapshot.MaxFreeze.Duration, Fast: *t.Snapshot.FastCheckpoint,
		Status: pr.Status, Now: time.Now, Log: log.With("target", t.Name),
	}
	switch t.Snapshot.Driver {
	case csi.DriverName:
		d, err := cl.csiDriver(t)
		if err != nil {
			return take.Options{}, err
		}
		o.CSI = d
		o.Volumes = []csi.PVC{{Role: csi.RoleData, Name: t.Snapshot.CSI.PVC}}
		if t.Snapshot.CSI.WALPVC != "" {
			o.Volumes = append(o.Volumes, csi.PVC{Role: csi.RoleWAL, Name: t.Snapshot.CSI.WALPVC})
		}
	default:
		o.DataDir, o.Repository = t.Snapshot.Local.DataDir, repository(t)
		if t.Engine == "postgres" && t.Snapshot.Mode == "online" {
			// Backup mode blocks no writes, and a file copy of a large database takes as long
			// as it takes: no freeze bound.
			o.MaxFreeze = 0
		}
	}
	return o, nil
}

// listAll lists every snapshot of a store, damaged ones included where the driver can tell
// (the local repository); every snapshot has a status.
func listAll(ctx context.Context, st snapshotStore) ([]snapshot.Metadata, error) {
	var snaps []snapshot.Metadata
	var err error
	if all, ok := st.(interface {
		ListAll(ctx context.Context) ([]snapshot.Metadata, error)
	}); ok {
		snaps, err = all.ListAll(ctx)
	} else {
		snaps, err = st.List(ctx)
	}
	if err != nil {
		return nil, err
	}
	for i := range snaps {
		if snaps[i].Status == "" {
			snaps[i].Status = snapshot.StatusComplete
		}
	}
	if snaps == nil {
		snaps = []snapshot.Metadata{}
	}
	return snaps, nil
}

// snapshotStore is where a target's snapshots are listed and deleted, for either driver.
type snapshotStore interface {
	List(ctx context.Context) ([]snapshot.Metadata, error)
	Delete(ctx context.Context, id string) error
}

// store returns the target's snapshot store.
func store(cl *clients, t *policy.Target) (snapshotStore, error) {
	if t.Snapshot.Driver == csi.DriverName {
		d, err := cl.csiDriver(t)
		if err != nil {
			return nil, err
		}
		return d.Target(t.Name), nil
	}
	return repository(t), nil
}

// applyRetention deletes the target's snapshots its retention rules no longer keep.
func applyRetention(ctx context.Context, cl *clients, cfg *policy.Config, t *policy.Target) ([]retention.Decision, error) {
	p := retentionPolicy(t)
	if !p.Enabled() {
		return nil, nil
	}
	st, err := store(cl, t)
	if err != nil {
		return nil, err
	}
	return retention.Apply(ctx, t.Name, st, history.New(cfg.History.Dir), p, time.Now())
}

// clients builds each external client once per command and hands out what callers use.
type clients struct {
	mu    sync.Mutex
	kubes map[string]*kubeClients // by kubeconfig path ("" = default rules)
}

// kubeClients are the Kubernetes clients of one kubeconfig, built once.
type kubeClients struct {
	snapshots snapshotclient.Interface
	core      kubernetes.Interface
}

func newClients() *clients { return &clients{kubes: map[string]*kubeClients{}} }

// kube returns the clients for a kubeconfig path, building them on first use.
func (c *clients) kube(target, kubeconfig string) (*kubeClients, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.kubes[kubeconfig]; ok {
		return k, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("%w: while loading the Kubernetes configuration for %s (set snapshot.csi.kubeconfig, $KUBECONFIG, or run in a pod): %w", take.ErrUnreachable, target, err)
	}
	rc.UserAgent = "firedrill"
	k := &kubeClients{}
	if k.snapshots, err = snapshotclient.NewForConfig(rc); err != nil {
		return nil, fmt.Errorf("while building the Kubernetes snapshot client: %w", err)
	}
	if k.core, err = kubernetes.NewForConfig(rc); err != nil {
		return nil, fmt.Errorf("while building the Kubernetes client: %w", err)
	}
	c.kubes[kubeconfig] = k
	return k, nil
}

// csiDriver returns the csi driver of a target.
func (c *clients) csiDriver(t *policy.Target) (*csi.Driver, error) {
	cs := t.Snapshot.CSI
	k, err := c.kube("target "+t.Name, cs.Kubeconfig)
	if err != nil {
		return nil, err
	}
	return &csi.Driver{
		API: k.snapshots.SnapshotV1(), Groups: k.snapshots.GroupsnapshotV1(), Namespace: cs.Namespace, ClassName: cs.ClassName,
		ReadyTimeout: cs.ReadyTimeout.Duration, Now: time.Now,
	}, nil
}

// groupDriver returns the VolumeGroupSnapshot driver of a group whose members all use the csi
// driver, or nil (freeze-all ordering) otherwise.
func (c *clients) groupDriver(cfg *policy.Config, g *policy.Group) (*csi.GroupDriver, error) {
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
	k, err := c.kube("group "+g.Name, first.Snapshot.CSI.Kubeconfig)
	if err != nil {
		return nil, err
	}
	return &csi.GroupDriver{
		API: k.snapshots.GroupsnapshotV1(), Snapshots: k.snapshots.SnapshotV1(), Discovery: k.snapshots.Discovery(), Volumes: k.core.CoreV1(),
		Namespace: g.CSI.Namespace, ClassName: g.CSI.GroupSnapshotClassName, Selector: g.CSI.Selector,
		ReadyTimeout: first.Snapshot.CSI.ReadyTimeout.Duration, Now: time.Now,
	}, nil
}
