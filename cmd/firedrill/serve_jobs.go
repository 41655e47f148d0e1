package main

import (
	"context"
	"time"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports/history"
	"github.com/firedrill/firedrill/reports/metrics"
	"github.com/firedrill/firedrill/restore/schedule"
)

// metricTargets are the configured targets as the metrics know them.
func metricTargets(cfg *policy.Config) []metrics.Target {
	out := make([]metrics.Target, 0, len(cfg.Targets))
	for _, t := range cfg.Targets {
		mt := metrics.Target{Name: t.Name, Engine: t.Engine, RPO: t.Objectives.RPO.Duration, RTO: t.Objectives.RTO.Duration,
			Phases: []string{"select", "clone", "start-and-recovery", "teardown"}}
		enabled, _ := checks.BuildFor(t.Checks, t.Engine)
		for _, c := range enabled {
			mt.Checks = append(mt.Checks, c.Name())
		}
		for _, s := range t.Audit.Sources {
			mt.Sources = append(mt.Sources, s.Name)
		}
		out = append(out, mt)
	}
	return out
}

// jobs are every target's audit (every audit.interval) and, with a schedule, its drill.
func (d *daemon) jobs(ctx context.Context, cfg *policy.Config) []schedule.Job {
	var jobs []schedule.Job
	for i := range cfg.Targets {
		t := cfg.Targets[i]
		jobs = append(jobs, schedule.Job{Name: "audit/" + t.Name, Key: "audit/" + t.Name,
			Next: schedule.Every(t.Audit.Interval.Duration), Run: func(ctx context.Context) { d.audit(ctx, t.Name) }})
		if t.Schedule == "" {
			continue
		}
		sched, err := policy.CronParser.Parse(t.Schedule) // validated at load
		if err != nil {
			continue
		}
		var last time.Time
		if runs, err := history.New(cfg.History.Dir).List(ctx, t.Name); err == nil && len(runs) > 0 {
			last = runs[0].StartedAt
		}
		jobs = append(jobs, schedule.Job{Name: "drill/" + t.Name, Key: "drill/" + t.Name, Limited: true, Last: last,
			Jitter: cfg.Serve.Jitter.Duration, Next: schedule.Cron(sched), Run: func(ctx context.Context) { d.drill(ctx, t.Name) }})
	}
	return jobs
}
