package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/firedrill/firedrill/reports/compliance"
	"github.com/firedrill/firedrill/reports/evidence"
	"github.com/firedrill/firedrill/reports/history"
	"github.com/firedrill/firedrill/reports/render"
)

func newHistoryCmd(g *globals) *cobra.Command {
	var target string
	cmd := &cobra.Command{
		Use:   "history",
		Short: "List past drills with their outcome, RTO against the objective, and the trend",
		Long: `history lists every target's past drills (or --target's), oldest first: when each ran, its
outcome, the RTO achieved against the objective, and a sparkline of the RTO over time (scaled
to the slowest drill, whose RTO is printed beside it with the objective).

Drills are read from the evidence records under history.evidenceDir; a target with none is read from
the drill results kept there by earlier versions (the "from" at the end of its line says which).

` + exitCodesHelp,
		Example: `  firedrill history
  firedrill history --target orders -o json`,
		RunE: func(cmd *cobra.Command, _ []string) error { return runHistory(cmd, g, target) },
	}
	cmd.Flags().StringVarP(&target, "target", "t", "", "only this target (default: every target)")
	return cmd
}

func runHistory(cmd *cobra.Command, g *globals, target string) error {
	f, cfg, _, err := g.open()
	if err != nil {
		return err
	}
	targets, err := pickTargets(cfg, target)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	store, old := evidence.NewDirStore(cfg.History.EvidenceDir, nil), history.New(cfg.History.Dir)
	var byTarget [][]compliance.HistoryEntry
	all := []compliance.HistoryEntry{}
	for _, t := range targets {
		recs, err := store.List(ctx, t.Name)
		if err != nil {
			return fmt.Errorf("while reading the evidence of %s: %w", t.Name, err)
		}
		es := compliance.FromEvidence(recs)
		if len(es) == 0 {
			results, err := old.List(ctx, t.Name)
			if err != nil {
				return err
			}
			es = compliance.FromResults(results)
		}
		byTarget = append(byTarget, es)
		all = append(all, es...)
	}
	if f == render.FormatJSON {
		return render.JSON(g.stdout, all)
	}
	if len(all) == 0 {
		fmt.Fprintf(g.stdout, "no drills recorded in %s\n", cfg.History.Dir)
		return nil
	}
	return compliance.WriteHistory(g.stdout, byTarget)
}
