package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/firedrill/firedrill/reports/render"
	"github.com/firedrill/firedrill/restore/snapshot"
)

func newSnapshotCmd(g *globals) *cobra.Command {
	var target string
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Take an application-consistent snapshot of a target",
		Long: `Take an application-consistent snapshot of one target (--target) or of every target.

PostgreSQL online mode runs pg_backup_start and pg_backup_stop in one held session, copies the
data directory (copy-on-write clones where the filesystem supports them), keeps the returned
backup_label and tablespace_map byte for byte, and copies every WAL segment from the backup's
start to its stop, so the snapshot is self-contained. A temporary replication slot holds that
WAL until it is copied. Metadata is written last, atomically: an interrupted snapshot is never
listed, and backup mode is always ended.

` + exitCodesHelp,
		Example: `  firedrill snapshot --target orders
  firedrill snapshot --target orders --output json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := g.format()
			if err != nil {
				return err
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			targets, err := pickTargets(cfg, target)
			if err != nil {
				return err
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			var taken []snapshot.Metadata
			for i := range targets {
				pr := g.progress(log)
				meta, err := takeSnapshot(cmd.Context(), &targets[i], pr, log)
				pr.Done()
				if err != nil {
					return fmt.Errorf("while taking a snapshot of %s: %w", targets[i].Name, err)
				}
				taken = append(taken, *meta)
			}
			if f == render.FormatJSON {
				if len(taken) == 1 {
					return render.JSON(g.stdout, taken[0])
				}
				return render.JSON(g.stdout, taken)
			}
			return render.Snapshots(g.stdout, taken, time.Now())
		},
	}
	cmd.Flags().StringVarP(&target, "target", "t", "", "target to snapshot (default: every target)")
	return cmd
}

func newSnapshotsCmd(g *globals) *cobra.Command {
	var target string
	cmd := &cobra.Command{
		Use:   "snapshots",
		Short: "List a target's complete snapshots, newest first",
		Example: `  firedrill snapshots --target orders
  firedrill snapshots --target orders -o json | jq -r '.[0].id'`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := g.format()
			if err != nil {
				return err
			}
			cfg, err := g.loadConfig()
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
			snaps, err := repository(t).List(cmd.Context())
			if err != nil {
				return err
			}
			if snaps == nil {
				snaps = []snapshot.Metadata{}
			}
			if f == render.FormatJSON {
				return render.JSON(g.stdout, snaps)
			}
			if len(snaps) == 0 {
				fmt.Fprintf(g.stdout, "No snapshots of %s in %s yet: take one with 'firedrill snapshot --target %s'.\n", t.Name, t.Snapshot.Local.Repository, t.Name)
				return nil
			}
			return render.Snapshots(g.stdout, snaps, time.Now())
		},
	}
	cmd.Flags().StringVarP(&target, "target", "t", "", "target whose snapshots to list (required with several targets)")
	return cmd
}
