package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/reports/render"
	"github.com/firedrill/firedrill/restore/drill"
)

// drillGroup drills a group's members from one batch, as one unit.
func drillGroup(ctx context.Context, g *globals, f render.Format, cfg *policy.Config, log *slog.Logger, name, batch string, keep bool) error {
	grp, ok := cfg.Group(name)
	if !ok {
		names := make([]string, 0, len(cfg.Groups))
		for _, gr := range cfg.Groups {
			names = append(names, gr.Name)
		}
		return usageError{fmt.Errorf("no group %q in %s (groups: %s)", name, cfg.File, strings.Join(names, ", "))}
	}
	members := make([]drill.Options, 0, len(grp.Targets))
	for _, n := range grp.Targets {
		t, _ := cfg.Target(n) // validated at load
		members = append(members, targetDrill(cfg, t, "", keep))
	}
	newDrill := drillFactory(cfg, func() drill.Progress { return g.progress(log) }, log)
	gr, err := drill.RunGroup(ctx, name, batch, members, newDrill, cliDrillSink(cfg), time.Now)
	if gr == nil || errors.Is(err, drill.ErrUsage) {
		return err
	}
	if perr := printGroup(g, f, gr); perr != nil {
		return perr
	}
	if err != nil {
		fmt.Fprintf(g.stderr, "firedrill: %s\n", indentLines(err.Error()))
		if gr.Status != reports.StatusFail {
			return err
		}
	}
	return resultsErr([]*reports.DrillResult{{Status: gr.Status}})
}

func printGroup(g *globals, f render.Format, gr *reports.GroupDrillResult) error {
	if f == render.FormatJSON {
		return render.JSON(g.stdout, gr)
	}
	fmt.Fprintf(g.stdout, "Drill of group %q, batch %s: %s\n", gr.Group, orNone(gr.BatchID), strings.ToUpper(string(gr.Status)))
	if gr.Error != "" {
		fmt.Fprintf(g.stdout, "  error: %s\n", gr.Error)
	}
	for _, m := range gr.Members {
		fmt.Fprintln(g.stdout)
		if err := render.Drill(g.stdout, m); err != nil {
			return err
		}
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
