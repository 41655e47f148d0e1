package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/firedrill/firedrill/reports/history"
	"github.com/firedrill/firedrill/reports/progress"
	"github.com/firedrill/firedrill/reports/render"
	"github.com/firedrill/firedrill/restore/snapshot"
	snaprun "github.com/firedrill/firedrill/restore/snapshot/run"
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
			o := snaprun.Options{Log: log, Progress: func() progress.Reporter { return g.progress(log) }, History: history.New(cfg.History.Dir)}
			var members []string
			if group != "" {
				pg, ok := cfg.Group(group)
				if !ok {
					return usageError{fmt.Errorf("no group %q in %s", group, cfg.File)}
				}
				o.Group, members = snapGroup(cfg, pg), pg.Targets
			} else {
				targets, err := pickTargets(cfg, target)
				if err != nil {
					return err
				}
				o.Targets = snapTargets(targets)
			}
			res, err := snaprun.Run(cmd.Context(), newClients(), snapshotEvidence{cfg, time.Now()}, o)
			switch {
			case res.Group != nil && f == render.FormatJSON:
				return errors.Join(err, render.JSON(g.stdout, res.Group))
			case res.Group != nil:
				return errors.Join(err, renderGroup(g.stdout, res.Group, members))
			case f == render.FormatJSON && len(res.Targets) == 1:
				return errors.Join(err, render.JSON(g.stdout, res.Targets[0]))
			case f == render.FormatJSON:
				return errors.Join(err, render.JSON(g.stdout, res.Targets))
			}
			return errors.Join(err, render.SnapshotResults(g.stdout, res.Targets, time.Now()))
		},
	}
	cmd.Flags().StringVarP(&target, "target", "t", "", "target to snapshot (default: every target)")
	cmd.Flags().StringVarP(&group, "group", "g", "", "group (from groups:) to snapshot together under one batch id")
	return cmd
}

// renderGroup prints a group's snapshot as a table, then each member's retention in the
// group's order, or why no snapshot was taken.
func renderGroup(w io.Writer, res *take.GroupResult, members []string) error {
	if res.Status == snapshot.ResultError {
		fmt.Fprintf(w, "Group %s: no snapshot taken (every member was thawed and the batch deleted):\n  %s\n", res.Group, res.Error)
		return nil
	}
	fmt.Fprintf(w, "Group %s, batch %s: %d snapshots by %s; frozen %s in all (max %s).\n",
		res.Group, res.BatchID, len(res.Snapshots), res.Method, render.Dur(res.FrozenSeconds), render.Dur(res.MaxFreezeSeconds))
	if res.Fallback != "" {
		fmt.Fprintf(w, "No VolumeGroupSnapshot: %s\n", res.Fallback)
	}
	if err := render.Snapshots(w, res.Snapshots, time.Now()); err != nil {
		return err
	}
	for _, name := range members {
		if rep := res.Retention[name]; rep != nil {
			render.RetentionNote(w, name, rep)
		}
	}
	return nil
}
