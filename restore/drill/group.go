package drill

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/firedrill/firedrill/reports"
)

// ErrNoCommonBatch means no batch holds a complete snapshot of every member of a group.
var ErrNoCommonBatch = errors.New("no batch holds a complete snapshot of every member")

// RunGroup drills a group as one unit: it picks the newest batch that holds a complete
// snapshot of every member (batchID, when set, instead), then drills each member's snapshot of
// that batch in a throwaway of its own, in turn, handing each result to sink. The group's
// status is the members' by reports.Overall's precedence.
func RunGroup(ctx context.Context, group, batchID string, members []Options, newDrill func(Options) *Drill, sink Sink, now func() time.Time) (*reports.GroupDrillResult, error) {
	gr := &reports.GroupDrillResult{SchemaVersion: reports.SchemaVersion, Group: group, StartedAt: now().UTC(), Members: []*reports.DrillResult{}}
	drills := make([]*Drill, len(members))
	for i := range members {
		drills[i] = newDrill(members[i])
	}
	ids, batch, err := pickBatch(ctx, group, batchID, members, drills)
	gr.BatchID = batch
	if err != nil {
		gr.Status, gr.Error, gr.FinishedAt = reports.StatusError, err.Error(), now().UTC()
		if errors.Is(err, ErrUsage) {
			return gr, err
		}
		return gr, nil
	}
	b := &Batch{}
	var recordErrs []error
	statuses := []reports.Status{}
	for i, o := range members {
		o.SnapshotID = ids[i]
		d := drills[i]
		res, err := d.Run(ctx, o)
		if p, ok := d.Progress.(interface{ Done() }); ok {
			p.Done()
		}
		if err != nil {
			return gr, err
		}
		if sink != nil {
			if rerr := sink.RecordDrill(context.WithoutCancel(ctx), res); rerr != nil {
				recordErrs = append(recordErrs, fmt.Errorf("drill of %s finished (%s) but its result could not be recorded: %w", o.Target, res.Status, rerr))
			}
		}
		b.Results = append(b.Results, res)
		gr.Members = append(gr.Members, res)
		statuses = append(statuses, res.Status)
		if ctx.Err() != nil {
			gr.Error = fmt.Sprintf("interrupted after %d of %d members", i+1, len(members))
			statuses = append(statuses, reports.StatusError)
			break
		}
	}
	gr.Status, gr.FinishedAt = reports.Overall(statuses...), now().UTC()
	b.RecordErr = errors.Join(recordErrs...)
	if err := b.Unrecorded(); err != nil {
		return gr, err
	}
	return gr, b.RecordErr
}

// pickBatch returns each member's snapshot id of the chosen batch.
func pickBatch(ctx context.Context, group, batchID string, members []Options, drills []*Drill) ([]string, string, error) {
	batches := map[string]*groupBatch{}
	for i, d := range drills {
		if d.Source == nil {
			return nil, "", fmt.Errorf("group %s: member %s has no backup source", group, members[i].Target)
		}
		snaps, err := d.Source.List(ctx)
		if err != nil {
			return nil, "", fmt.Errorf("while listing snapshots of %s (group %s): %w", members[i].Target, group, err)
		}
		seen := map[string]bool{}
		for _, m := range snaps {
			if m.BatchID == "" || !m.Restorable() || seen[m.BatchID] {
				continue
			}
			seen[m.BatchID] = true // the newest of the member's snapshots in that batch
			bt := batches[m.BatchID]
			if bt == nil {
				bt = &groupBatch{ids: make([]string, len(members))}
				batches[m.BatchID] = bt
			}
			bt.ids[i] = m.ID
			bt.have++
			if m.TakenAt.After(bt.newest) {
				bt.newest = m.TakenAt
			}
		}
	}
	if batchID != "" {
		bt := batches[batchID]
		if bt == nil || bt.have < len(members) {
			return nil, batchID, fmt.Errorf("%w: batch %s of group %s does not hold a complete snapshot of every member%s", ErrUsage, batchID, group, missing(bt, members))
		}
		return bt.ids, batchID, nil
	}
	var complete []string
	for id, bt := range batches {
		if bt.have == len(members) {
			complete = append(complete, id)
		}
	}
	if len(complete) == 0 {
		return nil, "", fmt.Errorf("%w of group %s (%s): take one with: firedrill snapshot --group %s", ErrNoCommonBatch, group, targetNames(members), group)
	}
	sort.Slice(complete, func(i, j int) bool {
		a, b := batches[complete[i]], batches[complete[j]]
		if !a.newest.Equal(b.newest) {
			return a.newest.After(b.newest)
		}
		return complete[i] > complete[j]
	})
	return batches[complete[0]].ids, complete[0], nil
}

// groupBatch is one batch id's snapshots, by member.
type groupBatch struct {
	ids    []string
	newest time.Time
	have   int
}

// missing says which members a batch lacks.
func missing(bt *groupBatch, members []Options) string {
	var lack []string
	for i, m := range members {
		if bt == nil || bt.ids[i] == "" {
			lack = append(lack, m.Target)
		}
	}
	if len(lack) == 0 {
		return ""
	}
	return " (none of " + strings.Join(lack, ", ") + ")"
}

func targetNames(members []Options) string {
	n := make([]string, len(members))
	for i, m := range members {
		n[i] = m.Target
	}
	return strings.Join(n, ", ")
}
