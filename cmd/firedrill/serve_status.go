package main

import (
	"context"
	"fmt"
	"io/fs"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/reports/history"
)

// Status is what the status page and /api/v1/status show (web.StatusSource).
func (d *daemon) Status(ctx context.Context) (*reports.ServeStatus, error) {
	d.mu.Lock()
	cfg, loadedAt, reloadErr := d.cfg, d.loadedAt, d.reloadErr
	audits := make(map[string]auditSeen, len(d.audits))
	for k, v := range d.audits {
		audits[k] = v
	}
	d.mu.Unlock()
	next, running := d.sched.NextRuns(), map[string]bool{}
	for _, name := range d.sched.Running() {
		running[name] = true
	}
	st := &reports.ServeStatus{SchemaVersion: reports.SchemaVersion, GeneratedAt: time.Now().UTC(), ConfigFile: cfg.File,
		ConfigLoadedAt: loadedAt.UTC(), ReloadError: reloadErr, Targets: []reports.TargetStatus{}}
	hist := history.New(cfg.History.Dir)
	for _, t := range cfg.Targets {
		ts := reports.TargetStatus{Target: t.Name, Engine: t.Engine, RPOSeconds: t.Objectives.RPO.Seconds(),
			RTOSeconds: t.Objectives.RTO.Seconds(), Findings: []checks.Finding{}}
		if a, ok := audits[t.Name]; ok {
			at := a.at
			ts.LastAudit, ts.Findings = &at, a.findings
			for _, f := range a.findings {
				switch f.Check {
				case "backup-age":
					st := f.Status
					ts.RPOStatus = &st
					ts.BackupAgeSeconds = newestAge(f.Evidence["sources"])
				case "copies-3-2-1":
					if v, ok := number(f.Evidence["copies"]); ok {
						n := int(v)
						ts.Copies = &n
					}
					if v, ok := number(f.Evidence["minCopies"]); ok {
						n := int(v)
						ts.CopiesRequired = &n
					}
				}
			}
		}
		if runs, err := hist.List(ctx, t.Name); err == nil && len(runs) > 0 {
			ts.LastDrill = reports.Summarize(&runs[0])
			met := checks.Pass
			if !runs[0].RTO.Met {
				met = checks.Fail
			}
			ts.RTOStatus = &met
		}
		if n, ok := next["drill/"+t.Name]; ok {
			n = n.UTC()
			ts.NextDrill = &n
		}
		switch {
		case running["drill/"+t.Name]:
			ts.Running = "drill"
		case running["audit/"+t.Name]:
			ts.Running = "audit"
		}
		st.Targets = append(st.Targets, ts)
	}
	return st, nil
}

// Drill is one drill's result from the history (web.StatusSource).
func (d *daemon) Drill(ctx context.Context, target, id string) (*reports.DrillResult, error) {
	runs, err := history.New(d.config().History.Dir).List(ctx, target)
	if err != nil {
		return nil, err
	}
	for i := range runs {
		if runs[i].ID == id {
			return &runs[i], nil
		}
	}
	return nil, fmt.Errorf("drill %s of target %s: %w", id, target, fs.ErrNotExist)
}

// newestAge is the smallest ageSeconds of the backup-age check's source rows.
func newestAge(rows any) *float64 {
	var list []map[string]any
	switch r := rows.(type) {
	case []map[string]any:
		list = r
	case []any:
		for _, x := range r {
			if m, ok := x.(map[string]any); ok {
				list = append(list, m)
			}
		}
	}
	var best *float64
	for _, row := range list {
		if v, ok := number(row["ageSeconds"]); ok && (best == nil || v < *best) {
			best = &v
		}
	}
	return best
}

// number reads a JSON-ish number from evidence.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case time.Duration:
		return n.Seconds(), true
	}
	return 0, false
}
