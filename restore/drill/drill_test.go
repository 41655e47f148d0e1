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

// emptySource has no snapshots; the drill must not even reach it for unsupported targets.
type emptySource struct{ listed bool }

func (e *emptySource) List(context.Context) ([]snapshot.Metadata, error) {
	e.listed = true
	return nil, nil
}

func (e *emptySource) Get(context.Context, string) (*snapshot.Metadata, error) {
	return nil, snapshot.ErrNotFound
}

func (e *emptySource) Materialize(context.Context, MaterializeRequest) (*Copy, error) {
	return nil, errors.New("no")
}

func TestRunRefusesWhatItCannotDrill(t *testing.T) {
	tests := []struct {
		name, engine, driver, want string
	}{
		{"redis", "redis", "local", "engine redis are not supported"},
		{"mariadb over csi", "mariadb", "csi", "engine mariadb are not supported"},
		{"postgres over csi on the local runtime", "postgres", "csi", "drills of csi snapshots are not supported by restore.runtime local"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &emptySource{}
			res, err := (&Drill{Source: src}).Run(context.Background(), Options{Target: "x", Engine: tt.engine, Driver: tt.driver, RTO: time.Minute, Runtime: RuntimeOptions{ScratchDir: t.TempDir()}})
			if err != nil {
				t.Fatalf("Run error %v; want a result with status error", err)
			}
			if res.Status != reports.StatusError || !strings.Contains(res.Error, tt.want) {
				t.Errorf("status %s error %q, want error containing %q", res.Status, res.Error, tt.want)
			}
			if src.listed {
				t.Errorf("the drill listed snapshots of a target it cannot drill")
			}
		})
	}
}

func TestRunWithoutSnapshotsIsAnError(t *testing.T) {
	res, err := (&Drill{Source: &emptySource{}}).Run(context.Background(), Options{Target: "orders", Engine: "postgres", Driver: "local", RTO: time.Minute, Runtime: RuntimeOptions{ScratchDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != reports.StatusError || !strings.Contains(res.Error, "firedrill snapshot --target orders") || res.Snapshot != nil {
		t.Errorf("status %s error %q snapshot %v", res.Status, res.Error, res.Snapshot)
	}
	if res.RTO.Met {
		t.Errorf("an incomplete drill met the RTO")
	}
}

func TestUnknownSnapshotIDIsAUsageError(t *testing.T) {
	_, err := (&Drill{Source: &emptySource{}}).Run(context.Background(), Options{Target: "orders", Engine: "postgres", SnapshotID: "nope", RTO: time.Minute, Runtime: RuntimeOptions{ScratchDir: t.TempDir()}})
	if !errors.Is(err, ErrUsage) {
		t.Errorf("err = %v, want ErrUsage", err)
	}
}
