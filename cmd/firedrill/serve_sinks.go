package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/reports/history"
	"github.com/firedrill/firedrill/reports/metrics"
	"github.com/firedrill/firedrill/restore/drill"
)

// secret reads a secret from an environment variable or a file (trailing newline dropped);
// both empty: none.
func secret(env, file string) (string, error) {
	switch {
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok || v == "" {
			return "", fmt.Errorf("environment variable %s is not set", env)
		}
		return v, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("while reading %s: %w", file, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return "", nil
}

// sinks hands each drill result to every sink; errors are joined, every sink is tried.
type sinks []drill.Sink

func (s sinks) RecordDrill(ctx context.Context, r *reports.DrillResult) error {
	var errs []error
	for _, k := range s {
		if err := k.RecordDrill(ctx, r); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// metricsSink observes drill results.
type metricsSink struct{ m *metrics.Metrics }

func (s metricsSink) RecordDrill(_ context.Context, r *reports.DrillResult) error {
	s.m.ObserveDrill(r)
	return nil
}

// outcomeSink remembers the statuses a --once run produced.
type outcomeSink struct{ d *daemon }

func (s outcomeSink) RecordDrill(_ context.Context, r *reports.DrillResult) error {
	st := checks.Pass
	switch reports.Overall(r.Status) {
	case reports.StatusFail:
		st = checks.Fail
	case reports.StatusError:
		st = checks.Error
	}
	s.d.noteOutcome(st)
	return nil
}

// drillSinks are where serve's drill results go: the metrics, the history (what the status page
// and drill-recency read), the evidence chain, the notifications.
func (d *daemon) drillSinks(cfg *policy.Config) drill.Sink {
	// The metrics first: once the history (what the status API reads) has a drill, /metrics has it too.
	s := sinks{metricsSink{d.m}, outcomeSink{d}, history.New(cfg.History.Dir), evidenceSink{cfg}}
	return append(s, d.notifiers(cfg)...)
}

func (d *daemon) noteOutcome(s checks.Status) {
	d.mu.Lock()
	d.outcomes = append(d.outcomes, s)
	d.mu.Unlock()
}

// outcome is a --once run's exit: a failure outranks "could not check".
func (d *daemon) outcome(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch checks.Decisive(append([]checks.Status{checks.Pass}, d.outcomes...)...) {
	case checks.Fail:
		return errChecksFailed
	case checks.Error:
		return errCouldNotCheck
	}
	return nil
}
