package main

import (
	"context"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/reports/history"
	"github.com/firedrill/firedrill/reports/push"
	"github.com/firedrill/firedrill/restore/drill"
)

// cliDrillSink is where 'firedrill drill' records results: the history (what serve, the audit
// and the status page read), and serve.pushgateway when set (a drill in a Kubernetes Job is
// seen by Prometheus without serve).
func cliDrillSink(cfg *policy.Config) drill.Sink {
	s := sinks{history.New(cfg.History.Dir), evidenceSink{cfg}}
	if cfg.Serve.Pushgateway != "" {
		s = append(s, pushSink{cfg: cfg})
	}
	return s
}

type pushSink struct{ cfg *policy.Config }

func (p pushSink) RecordDrill(ctx context.Context, r *reports.DrillResult) error {
	return push.Push(ctx, p.cfg.Serve.Pushgateway, "firedrill-drill", r, metricTargets(p.cfg))
}
