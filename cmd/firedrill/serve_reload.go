package main

import (
	"context"
	"time"

	"github.com/firedrill/firedrill/audit/policy"
)

// ready is /readyz: the configuration is loaded and every target was audited once.
func (d *daemon) ready() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, t := range d.cfg.Targets {
		if !d.firstAudit[t.Name] {
			return false
		}
	}
	return true
}

// reload reads the configuration file again; a bad one keeps the running configuration and
// is reported (log, status page, /api/v1/status).
func (d *daemon) reload(ctx context.Context) {
	cfg, err := policy.Load(d.file)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.reloadErr = err.Error()
		d.log.Error("configuration reload failed: the previous configuration keeps running", "file", d.file, "error", err)
		return
	}
	d.cfg, d.loadedAt, d.reloadErr = cfg, time.Now(), ""
	d.m.SetTargets(metricTargets(cfg))
	d.sched.SetConcurrency(cfg.Serve.Concurrency)
	d.sched.Set(d.jobs(ctx, cfg))
	d.log.Info("configuration reloaded", "file", d.file, "targets", len(cfg.Targets))
}
