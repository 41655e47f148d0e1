package main

import (
	"context"
	"fmt"
	"time"

	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/reports/history"
	"github.com/firedrill/firedrill/reports/render"
	"github.com/firedrill/firedrill/restore/drill"
)

// gcResult is the JSON of 'firedrill gc' (README, "firedrill gc"): fields are added, never
// renamed. Removed, RemovedBytes and Failed count scratch directories; Objects are the
// runtimes' objects (containers, Kubernetes objects).
type gcResult struct {
	Leftovers    []reports.Leftover  `json:"leftovers"`
	Removed      int                 `json:"removed"`
	RemovedBytes int64               `json:"removedBytes"`
	Failed       int                 `json:"failed"`
	Objects      []drill.SweptObject `json:"objects"`
	DryRun       bool                `json:"dryRun,omitempty"`
}

func runGC(ctx context.Context, g *globals, o gcOptions) error {
	f, cfg, log, err := g.open()
	if err != nil {
		return err
	}
	targets, err := pickTargets(cfg, o.target)
	if err != nil {
		return err
	}
	gts := make([]drill.GCTarget, 0, len(targets))
	for _, t := range targets {
		gts = append(gts, drill.GCTarget{Name: t.Name, ScratchDir: t.Restore.Local.ScratchDir,
			Runtime: drillOptions(&t, "", false).Runtime})
	}
	d := &drill.Drill{Now: time.Now, Log: log, History: history.New(cfg.History.Dir), Runtimes: newWiring(cfg).runtimes()}
	found, gcErr := d.GC(ctx, gts, o.GCOptions)
	res := gcResult{Leftovers: found.Leftovers, Objects: found.Objects, DryRun: o.DryRun}
	if res.Leftovers == nil {
		res.Leftovers = []reports.Leftover{}
	}
	if res.Objects == nil {
		res.Objects = []drill.SweptObject{}
	}
	for _, lo := range found.Leftovers {
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
		err = renderGC(g, res)
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
}

// renderGC writes the scratch directories' table, then the runtimes' objects'.
func renderGC(g *globals, res gcResult) error {
	if len(res.Leftovers) > 0 || len(res.Objects) == 0 {
		if err := render.Leftovers(g.stdout, res.Leftovers); err != nil {
			return err
		}
	}
	if len(res.Objects) == 0 {
		return nil
	}
	if len(res.Leftovers) > 0 {
		fmt.Fprintln(g.stdout)
	}
	objs := make([]render.LeftoverObject, 0, len(res.Objects))
	for _, o := range res.Objects {
		objs = append(objs, render.LeftoverObject{Runtime: o.Runtime, Target: o.Target, Object: o.Object, Action: o.Action})
	}
	return render.LeftoverObjects(g.stdout, objs)
}
