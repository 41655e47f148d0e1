package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/reports/history"
	"github.com/firedrill/firedrill/reports/render"
	"github.com/firedrill/firedrill/restore/drill"
)

// gcResult is the JSON of 'firedrill gc' (README, "firedrill gc"): fields are added, never renamed.
type gcResult struct {
	Leftovers    []reports.Leftover `json:"leftovers"`
	Removed      int                `json:"removed"`
	RemovedBytes int64              `json:"removedBytes"`
	Failed       int                `json:"failed"`
}

func newGCCmd(g *globals) *cobra.Command {
	var (
		target      string
		includeKept bool
	)
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove what dead drills left in the scratch directories",
		Long: `Find the drills' scratch directories under each target's restore.local.scratchDir and
remove those of drills that are no longer running (killed, crashed): stop any server left
running on them, release its shared memory, delete the copy of production data, and record
the dead drill in the history as interrupted. Every drill does this for its own target before
it starts; gc does it for every target (or --target) on demand.

Drills still running are listed and left alone. Throwaways kept with 'drill --keep' are listed
and left alone unless --include-kept: then their servers are stopped and they are removed too.

Exit codes: 0 nothing left that should go; 2 usage or configuration error; 3 something could
not be stopped or removed (see its row).`,
		Example: `  firedrill gc
  firedrill gc --target orders --include-kept --output json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, cfg, log, err := g.open()
			if err != nil {
				return err
			}
			targets, err := pickTargets(cfg, target)
			if err != nil {
				return err
			}
			gts := make([]drill.GCTarget, 0, len(targets))
			for _, t := range targets {
				gts = append(gts, drill.GCTarget{Name: t.Name, ScratchDir: t.Restore.Local.ScratchDir,
					Runtime: drillOptions(&t, "", false).Runtime})
			}
			d := &drill.Drill{Now: time.Now, Log: log, History: history.New(cfg.History.Dir), Runtimes: newWiring(cfg).runtimes()}
			found, gcErr := d.GC(cmd.Context(), gts, includeKept)
			res := gcResult{Leftovers: found}
			if res.Leftovers == nil {
				res.Leftovers = []reports.Leftover{}
			}
			for _, lo := range found {
				switch lo.Action {
				case reports.LeftoverRemoved:
					res.Removed++
					res.RemovedBytes += lo.Bytes
				case reports.LeftoverFailed:
					res.Failed++
				}
			}
			if f == render.FormatJSON {
				err = render.JSON(g.stdout, res)
			} else {
				err = render.Leftovers(g.stdout, found)
			}
			if err != nil {
				return err
			}
			if gcErr != nil {
				return gcErr
			}
			if res.Failed > 0 {
				return fmt.Errorf("%d scratch director(ies) could not be removed (see the table)", res.Failed)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&target, "target", "t", "", "only this target's scratch directories (default: every target's)")
	cmd.Flags().BoolVar(&includeKept, "include-kept", false, "also stop and remove throwaways kept with 'drill --keep'")
	return cmd
}
