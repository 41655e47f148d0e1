package drill

import (
	"context"
	"errors"
	"fmt"

	"github.com/firedrill/firedrill/reports"
)

// Sink is where drill outcomes go: the history today; metrics, the evidence chain and
// notifications later. The CLI and a daemon run the same runner with their own sink.
type Sink interface {
	RecordDrill(ctx context.Context, r *reports.DrillResult) error
}

// Batch is the outcome of drilling targets in turn.
type Batch struct {
	// Results has one result per target drilled, in order; an interruption ends it early.
	Results []*reports.DrillResult
	// RecordErr joins the errors of the results the sink could not record (each of them is
	// still in Results).
	RecordErr error
}

// Status is the batch's overall status, by reports.Overall's precedence.
func (b *Batch) Status() reports.Status {
	statuses := make([]reports.Status, 0, len(b.Results))
	for _, r := range b.Results {
		statuses = append(statuses, r.Status)
	}
	return reports.Overall(statuses...)
}

// Unrecorded is the error a batch ends with besides its results' statuses: RecordErr, unless a
// drill proved a failure. A proven failure outranks a result that could not be recorded: the
// failure decides the outcome, and the caller still says RecordErr alongside it.
func (b *Batch) Unrecorded() error {
	if b.RecordErr == nil || b.Status() == reports.StatusFail {
		return nil
	}
	return b.RecordErr
}

// RunTargets drills each target's options in turn with the Drill newDrill builds for it (its
// source, runtimes and progress; a Progress with a Done method is told when its drill ended)
// and hands every result to sink (nil: none), also an interrupted drill's. It stops after the
// drill during which ctx ended, and at once, with the results so far, on a request that cannot
// be served as asked (ErrUsage): that result is not recorded.
func RunTargets(ctx context.Context, targets []Options, newDrill func(Options) *Drill, sink Sink) (*Batch, error) {
	b := &Batch{Results: make([]*reports.DrillResult, 0, len(targets))}
	var recordErrs []error
	for _, o := range targets {
		d := newDrill(o)
		res, err := d.Run(ctx, o)
		if p, ok := d.Progress.(interface{ Done() }); ok {
			p.Done()
		}
		if err != nil {
			return b, err
		}
		if sink != nil {
			// Recorded even when interrupted: what the drill did (and left) must be known.
			if rerr := sink.RecordDrill(context.WithoutCancel(ctx), res); rerr != nil {
				recordErrs = append(recordErrs, fmt.Errorf("drill finished (%s) but its result could not be recorded: %w", res.Status, rerr))
			}
		}
		b.Results = append(b.Results, res)
		if ctx.Err() != nil {
			break
		}
	}
	b.RecordErr = errors.Join(recordErrs...)
	return b, nil
}
