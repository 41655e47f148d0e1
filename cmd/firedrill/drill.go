package main

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/reports/history"
	"github.com/firedrill/firedrill/reports/render"
	"github.com/firedrill/firedrill/restore/drill"
)

func newDrillCmd(g *globals) *cobra.Command {
	var (
		target     string
		snapshotID string
		keep       bool
		group      string
		batch      string
	)
	cmd := &cobra.Command{
		Use:   "drill",
		Short: "Restore the newest snapshot into a throwaway database and verify it",
		Long: `Run a restore drill of one target (--target) or of every target, in turn:

  select   the newest complete snapshot (or --snapshot ID)
  clone    copy it into a private scratch directory, verifying every file's SHA-256
  start    write back backup_label/tablespace_map, start a throwaway server of the snapshot's
           major version with a configuration of its own (no archiving, no replication, unix
           socket only; in a sandbox of its own namespaces, uid and root filesystem that
           shows it nothing of production: see the README; with restore.runtime: docker, in
           a container with no network, no capabilities and a read-only root), wait for recovery
  check    snapshot integrity, recovery, amcheck, row counts, your SQL assertions,
           freshness against the RPO, checksum failures
  rto      the time from start to "verified and usable" against objectives.rto
  teardown stop the server cleanly, pg_checksums --check the stopped copy, delete everything

Teardown always happens, also on failure, Ctrl-C or SIGTERM, unless --keep asks to leave the
scratch copy (and, after a successful drill, the running server) for inspection.
Each result is also written to the history directory (history.dir).
Before it starts, a drill removes what dead drills of its target left in the scratch directory
(a killed drill's copy, its server, its shared memory), says so, and records them as
interrupted; kept throwaways are left alone ('firedrill gc' sweeps every target on demand).
With --group, the members' snapshots of one batch (one freeze, or one VolumeGroupSnapshot) are
drilled in turn, each in a throwaway of its own, and reported as one result.
A proven failure outranks "could not check": a drill with a failed check exits 1 even if
another check could not run.

` + exitCodesHelp,
		Example: `  firedrill drill --target orders
  firedrill drill --group shop --output json
  firedrill drill --target orders --output json > result.json
  firedrill drill --target orders --snapshot 20261121T161502Z-a1b2c3 --keep`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, cfg, log, err := g.open()
			if err != nil {
				return err
			}
			if group != "" {
				if target != "" || snapshotID != "" {
					return usageError{errors.New("--group drills its members' snapshots of one batch: it cannot be combined with --target or --snapshot (use --batch)")}
				}
				return drillGroup(cmd.Context(), g, f, cfg, log, group, batch, keep)
			}
			if batch != "" {
				return usageError{errors.New("--batch needs --group")}
			}
			if snapshotID != "" && target == "" && len(cfg.Targets) > 1 {
				return usageError{fmt.Errorf("--snapshot needs --target: %s has %d targets", cfg.File, len(cfg.Targets))}
			}
			targets, err := pickTargets(cfg, target)
			if err != nil {
				return err
			}
			if targets, err = drillable(targets, target != ""); err != nil {
				return err
			}
			opts := make([]drill.Options, len(targets))
			for i := range targets {
				opts[i] = targetDrill(cfg, &targets[i], snapshotID, keep)
			}
			newDrill := drillFactory(cfg, func() drill.Progress { return g.progress(log) }, log)
			b, err := drill.RunTargets(cmd.Context(), opts, newDrill, cliDrillSink(cfg))
			if err != nil {
				return err
			}
			if err := printDrills(g, f, b.Results); err != nil {
				return err
			}
			if err := b.Unrecorded(); err != nil {
				return err
			}
			if b.RecordErr != nil {
				// A proven failure outranks a result that could not be recorded: exit 1, and say both.
				fmt.Fprintf(g.stderr, "firedrill: %s\n", indentLines(b.RecordErr.Error()))
			}
			return resultsErr(b.Results)
		},
	}
	cmd.Flags().StringVarP(&target, "target", "t", "", "target to drill (default: every target, in turn)")
	cmd.Flags().StringVar(&snapshotID, "snapshot", "", "snapshot id to restore instead of the newest (see 'firedrill snapshots')")
	cmd.Flags().StringVar(&group, "group", "", "drill a group as one unit: every member's snapshot of the newest batch they all have, one throwaway each, one result")
	cmd.Flags().StringVar(&batch, "batch", "", "with --group: the batch id to drill instead of the newest common one")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the scratch copy (and the server of a passing drill) and print where they are")
	return cmd
}

func printDrills(g *globals, f render.Format, results []*reports.DrillResult) error {
	if f == render.FormatJSON {
		if len(results) == 1 {
			return render.JSON(g.stdout, results[0])
		}
		return render.JSON(g.stdout, results)
	}
	for i, r := range results {
		if i > 0 {
			fmt.Fprintln(g.stdout)
		}
		if err := render.Drill(g.stdout, r); err != nil {
			return err
		}
	}
	return nil
}

// targetDrill is the drill of one configured target.
func targetDrill(cfg *policy.Config, t *policy.Target, snapshotID string, keep bool) drill.Options {
	o := drillOptions(t, snapshotID, keep)
	o.Runtime.ProductionPaths = productionPaths(cfg, t)
	return o
}

// drillFactory builds each target's Drill as its turn comes: its repository, a progress of its
// own, the history (for what dead drills left) and the runtimes.
func drillFactory(cfg *policy.Config, pr func() drill.Progress, log *slog.Logger) func(drill.Options) *drill.Drill {
	w := newWiring(cfg)
	return func(o drill.Options) *drill.Drill {
		t, _ := cfg.Target(o.Target) // the options were built from cfg's targets
		hist := history.New(cfg.History.Dir)
		return &drill.Drill{Source: w.source(t), Now: time.Now, Progress: pr(), Log: log, History: hist, Baselines: hist, Runtimes: w.runtimes()}
	}
}
