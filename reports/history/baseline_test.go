package history

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/reports"
)

// TestBaselineRoundTrip: no baseline is nil without error; a saved one reads back; it is not
// a drill result to List; a damaged one is an error that says how to recover.
func TestBaselineRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := New(filepath.Join(t.TempDir(), "history"))
	if b, err := s.Baseline(ctx, "orders"); b != nil || err != nil {
		t.Fatalf("Baseline before any = %v, %v; want nil, nil", b, err)
	}
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	want := &reports.Baseline{Target: "orders", Snapshot: "s1", Drill: "d1", VerifiedAt: at, Files: map[string]string{"base/5/1": "ab"}}
	if err := s.SaveBaseline(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Baseline(ctx, "orders")
	if err != nil || got.Snapshot != "s1" || got.Drill != "d1" || !got.VerifiedAt.Equal(at) || got.Files["base/5/1"] != "ab" {
		t.Fatalf("Baseline = %+v, %v; want %+v", got, err, want)
	}
	if _, err := s.Save(ctx, &reports.DrillResult{ID: "d1", Target: "orders", StartedAt: at}); err != nil {
		t.Fatal(err)
	}
	if runs, err := s.List(ctx, "orders"); err != nil || len(runs) != 1 {
		t.Fatalf("List = %d results, %v; want the one drill, not the baseline", len(runs), err)
	}
	if files, _ := filepath.Glob(filepath.Join(s.Dir, "*", "*")); len(files) != 1 {
		t.Errorf("history directory holds %v, want the one drill result", files)
	}
	if err := os.WriteFile(s.baselinePath("orders"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Baseline(ctx, "orders"); err == nil || !strings.Contains(err.Error(), "delete it") {
		t.Fatalf("damaged baseline: %v, want an error saying to delete it", err)
	}
}
