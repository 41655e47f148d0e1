package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/firedrill/firedrill/reports/render"
	"github.com/firedrill/firedrill/restore/snapshot/csi"
	snaprun "github.com/firedrill/firedrill/restore/snapshot/run"
)

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
			snaps, err := snaprun.List(cmd.Context(), newClients(), new(snapTarget(t)))
			list, dir := foreignBackups(t)
			if list != nil {
				snaps, err = list(cmd.Context())
			}
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
				if list != nil && t.Restore.Source.Physical() {
					fmt.Fprintf(g.stdout, "No base backups of %s in %s that can reach restore.source.recovery.target %s.\n", t.Name, dir, t.Restore.Source.Recovery.Target)
					return nil
				}
				if list != nil && t.Restore.Source.Files() {
					fmt.Fprintf(g.stdout, "No backups of %s in %s match restore.source.pattern.\n", t.Name, dir)
					return nil
				}
				if list != nil {
					fmt.Fprintf(g.stdout, "No dumps of %s in %s match restore.source.pattern.\n", t.Name, dir)
					return nil
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
