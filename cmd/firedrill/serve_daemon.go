package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/reports/metrics"
	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/schedule"
)

// daemon is firedrill serve: the configuration (reloaded on SIGHUP), the scheduler of every
// target's audits and drills, what the last audits found, and the metrics.
type daemon struct {
	log   *slog.Logger
	file  string
	reg   *prometheus.Registry
	m     *metrics.Metrics
	sched *schedule.Scheduler

	mu         sync.Mutex
	cfg        *policy.Config
	loadedAt   time.Time
	reloadErr  string
	audits     map[string]auditSeen
	firstAudit map[string]bool // targets audited at least once since the config loaded
	outcomes   []checks.Status // what this process's audits and drills found (--once's exit)
}

type auditSeen struct {
	at       time.Time
	findings []checks.Finding
}

func newDaemon(cfg *policy.Config, log *slog.Logger) (*daemon, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := metrics.New(reg, metricTargets(cfg), metrics.WithVersion(version))
	if err != nil {
		return nil, fmt.Errorf("while registering metrics: %w", err)
	}
	d := &daemon{log: log, file: cfg.File, reg: reg, m: m, sched: schedule.New(nil, cfg.Serve.Concurrency, log),
		cfg: cfg, loadedAt: time.Now(), audits: map[string]auditSeen{}, firstAudit: map[string]bool{}}
	d.sched.Set(d.jobs(context.Background(), cfg))
	return d, nil
}

// config is the configuration in force.
func (d *daemon) config() *policy.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// audit audits one target and keeps what it found.
func (d *daemon) audit(ctx context.Context, name string) {
	cfg := d.config()
	t, ok := cfg.Target(name)
	if !ok {
		return // removed by a reload
	}
	start := time.Now()
	rep := runAudit(ctx, cfg, []policy.Target{*t}, d.log)
	if ctx.Err() != nil {
		return
	}
	var fs []checks.Finding
	for _, tr := range rep.Targets {
		fs = append(fs, tr.Findings...)
	}
	d.m.ObserveAudit(name, fs, time.Since(start))
	if err := recordAudit(ctx, cfg, name, start, fs); err != nil {
		d.log.Error("the audit's evidence could not be recorded", "target", name, "error", err)
	}
	d.observeNewestSnapshot(ctx, t)
	for _, f := range fs {
		if f.Status == checks.Error {
			d.m.AuditError(name, f.Check)
		}
	}
	d.mu.Lock()
	d.audits[name] = auditSeen{at: time.Now().UTC(), findings: fs}
	d.firstAudit[name] = true
	d.outcomes = append(d.outcomes, checks.Decisive(checks.Pass, checks.Worst(fs)))
	d.mu.Unlock()
	if err := d.notifyAudit(ctx, cfg, name, fs); err != nil {
		d.log.Warn("could not send the audit's notifications", "target", name, "error", err)
	}
}

// observeNewestSnapshot exports the newest snapshot's freeze time and recovery point (snapshots
// are taken by 'firedrill snapshot', a CronJob or cron; serve only reads them).
func (d *daemon) observeNewestSnapshot(ctx context.Context, t *policy.Target) {
	st, err := store(newClients(), t)
	if err != nil {
		return
	}
	snaps, err := st.List(ctx)
	if err != nil || len(snaps) == 0 {
		return
	}
	d.m.ObserveSnapshot(&reports.SnapshotResult{Target: t.Name, Status: reports.SnapshotStatusComplete, Snapshot: &snaps[0]})
}

// drill drills one target with the same runner as 'firedrill drill', its result recorded in
// the history, the metrics and the notifications.
func (d *daemon) drill(ctx context.Context, name string) {
	cfg := d.config()
	t, ok := cfg.Target(name)
	if !ok {
		return
	}
	sink := d.drillSinks(cfg)
	newDrill := drillFactory(cfg, func() drill.Progress { return nil }, d.log.With("target", name))
	b, err := drill.RunTargets(ctx, []drill.Options{targetDrill(cfg, t, "", false)}, newDrill, sink)
	switch {
	case err != nil:
		d.log.Error("the drill could not run", "target", name, "error", err)
	case b.RecordErr != nil:
		d.log.Error("the drill's result could not be recorded everywhere", "target", name, "error", b.RecordErr)
	case len(b.Results) == 1:
		d.log.Info("drill finished", "target", name, "status", b.Results[0].Status, "id", b.Results[0].ID)
	}
}
