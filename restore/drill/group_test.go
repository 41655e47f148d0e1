package drill

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/snapshot"
)

// batchSource lists fixed snapshots; Materialize refuses, so a drill ends (status error) right
// after selecting, with the snapshot it selected in its result.
type batchSource struct{ snaps []snapshot.Metadata }

func (s *batchSource) List(context.Context) ([]snapshot.Metadata, error) { return s.snaps, nil }
func (s *batchSource) Get(_ context.Context, id string) (*snapshot.Metadata, error) {
	for i := range s.snaps {
		if s.snaps[i].ID == id {
			return &s.snaps[i], nil
		}
	}
	return nil, snapshot.ErrNotFound
}
func (s *batchSource) Materialize(context.Context, MaterializeRequest) (*Copy, error) {
	return nil, errors.New("materialize refused by the test")
}

type recordingSink struct{ got []string }

func (r *recordingSink) RecordDrill(_ context.Context, res *reports.DrillResult) error {
	r.got = append(r.got, res.Target)
	return nil
}

func TestRunGroupPicksTheNewestCommonBatch(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	snap := func(id, batch string, age time.Duration) snapshot.Metadata {
		return snapshot.Metadata{ID: id, BatchID: batch, TakenAt: t0.Add(-age)}
	}
	orders := &batchSource{[]snapshot.Metadata{snap("o3", "b3", 0), snap("o2", "b2", time.Hour), snap("o1", "b1", 2*time.Hour)}}
	billing := &batchSource{[]snapshot.Metadata{snap("x2", "b2", time.Hour), snap("x1", "b1", 2*time.Hour), snap("xs", "", 0)}}
	sources := map[string]Source{"orders": orders, "billing": billing}
	members := []Options{{Target: "orders", Engine: "postgres", RTO: time.Minute}, {Target: "billing", Engine: "postgres", RTO: time.Minute}}
	newDrill := func(o Options) *Drill {
		return &Drill{Source: sources[o.Target], Runtimes: map[string]RuntimeFactory{"local": func(context.Context, RuntimeOptions) (Runtime, error) { return &fakeRuntime{}, nil }}}
	}
	tests := []struct {
		name, batch, wantBatch string
		wantIDs                []string
		wantErr                error
	}{
		{"newest batch both members have", "", "b2", []string{"o2", "x2"}, nil},
		{"a batch asked for", "b1", "b1", []string{"o1", "x1"}, nil},
		{"a batch one member lacks", "b3", "b3", nil, ErrUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range members {
				members[i].Runtime.ScratchDir = t.TempDir()
			}
			sink := &recordingSink{}
			gr, err := RunGroup(t.Context(), "shop", tt.batch, members, newDrill, sink, func() time.Time { return t0 })
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if gr.BatchID != tt.wantBatch {
				t.Errorf("batch %q, want %q", gr.BatchID, tt.wantBatch)
			}
			if tt.wantErr != nil {
				if !strings.Contains(gr.Error, "billing") || len(sink.got) != 0 {
					t.Errorf("error %q should name the member without the batch; recorded %v", gr.Error, sink.got)
				}
				return
			}
			if len(gr.Members) != 2 || strings.Join(sink.got, ",") != "orders,billing" {
				t.Fatalf("members %d, recorded %v", len(gr.Members), sink.got)
			}
			for i, m := range gr.Members {
				if m.Snapshot == nil || m.Snapshot.ID != tt.wantIDs[i] {
					t.Errorf("member %s drilled %+v, want snapshot %s", m.Target, m.Snapshot, tt.wantIDs[i])
				}
			}
			if gr.Status != reports.StatusError {
				t.Errorf("group status %s, want error (every member's materialize was refused)", gr.Status)
			}
		})
	}
}

func TestRunGroupWithoutACommonBatch(t *testing.T) {
	a := &batchSource{[]snapshot.Metadata{{ID: "a1", BatchID: "b1", TakenAt: time.Now()}}}
	b := &batchSource{[]snapshot.Metadata{{ID: "x1", BatchID: "b2", TakenAt: time.Now()}}}
	srcs := map[string]Source{"a": a, "b": b}
	gr, err := RunGroup(t.Context(), "shop", "", []Options{{Target: "a"}, {Target: "b"}},
		func(o Options) *Drill { return &Drill{Source: srcs[o.Target]} }, nil, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if gr.Status != reports.StatusError || !strings.Contains(gr.Error, "firedrill snapshot --group shop") || len(gr.Members) != 0 {
		t.Errorf("status %s error %q members %d", gr.Status, gr.Error, len(gr.Members))
	}
}
