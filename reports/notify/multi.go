package notify

import (
	"context"
	"errors"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
)

// Sink is what Multi combines: a drill sink that also records audits.
type Sink interface {
	RecordDrill(ctx context.Context, r *reports.DrillResult) error
	RecordAudit(ctx context.Context, target string, findings []checks.Finding) error
}

// Multi returns a Sink that hands each outcome to every sink in turn, whatever the others did,
// and joins their errors (errors.Join).
func Multi(sinks ...Sink) Sink { return multi(sinks) }

type multi []Sink

func (m multi) RecordDrill(ctx context.Context, r *reports.DrillResult) error {
	errs := make([]error, 0, len(m))
	for _, s := range m {
		errs = append(errs, s.RecordDrill(ctx, r))
	}
	return errors.Join(errs...)
}

func (m multi) RecordAudit(ctx context.Context, target string, findings []checks.Finding) error {
	errs := make([]error, 0, len(m))
	for _, s := range m {
		errs = append(errs, s.RecordAudit(ctx, target, findings))
	}
	return errors.Join(errs...)
}
