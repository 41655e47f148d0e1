package run

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/snapshot/csi"
	"github.com/firedrill/firedrill/restore/snapshot/retention"
)

// Store is where a target's snapshots are listed and deleted, for either driver.
type Store interface {
	List(ctx context.Context) ([]snapshot.Metadata, error)
	Delete(ctx context.Context, id string) error
}

// StoreOf returns a target's snapshot store: its local repository, or its VolumeSnapshots.
func StoreOf(f Factory, t *Target) (Store, error) {
	if t.Driver == csi.DriverName {
		d, err := csiDriver(f, t, time.Now)
		if err != nil {
			return nil, err
		}
		return d.Target(t.Name), nil
	}
	return Repository(t), nil
}

// List lists every snapshot of a target, newest first, damaged and foreign ones included
// where the driver can tell (the local repository); every snapshot has a status.
func List(ctx context.Context, f Factory, t *Target) ([]snapshot.Metadata, error) {
	st, err := StoreOf(f, t)
	if err != nil {
		return nil, err
	}
	var snaps []snapshot.Metadata
	if all, ok := st.(interface {
		ListAll(ctx context.Context) ([]snapshot.Metadata, error)
	}); ok {
		snaps, err = all.ListAll(ctx)
	} else {
		snaps, err = st.List(ctx)
	}
	if err != nil {
		return nil, err
	}
	for i := range snaps {
		if snaps[i].Status == "" {
			snaps[i].Status = snapshot.StatusComplete
		}
	}
	if snaps == nil {
		snaps = []snapshot.Metadata{}
	}
	return snaps, nil
}

// retain applies a target's retention rules after a successful snapshot and reports what they
// deleted and why (nil when the target has no rules).
func (r *runner) retain(ctx context.Context, t *Target) (*snapshot.Retention, error) {
	p := t.Retention
	plan, err := r.applyRetention(ctx, t, p)
	for _, d := range plan {
		switch {
		case d.Deleted:
			r.log.Info("retention deleted a snapshot", "target", t.Name, "snapshot", d.Snapshot.ID, "takenAt", d.Snapshot.TakenAt, "reason", d.Detail)
		case d.Keep && d.Reason == retention.ReasonVerified:
			r.log.Info("retention kept the only snapshot whose last drill passed", "target", t.Name, "snapshot", d.Snapshot.ID)
		}
	}
	if err != nil {
		err = fmt.Errorf("the snapshot of %s was taken, but retention failed: %w", t.Name, err)
	}
	return retention.Report(p, plan, err), err
}

// applyRetention deletes the target's snapshots its retention rules no longer keep; the drill
// history says which snapshot a drill last proved.
func (r *runner) applyRetention(ctx context.Context, t *Target, p retention.Policy) ([]retention.Decision, error) {
	if !p.Enabled() {
		return nil, nil
	}
	st, err := StoreOf(r.factory, t)
	if err != nil {
		return nil, err
	}
	if r.history == nil {
		return nil, errors.New("no drill history to consult: nothing was deleted")
	}
	return retention.Apply(ctx, t.Name, st, r.history, p, r.now())
}
