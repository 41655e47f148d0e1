package render_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/reports/render"
)

func snapshotResults() []reports.SnapshotResult {
	return []reports.SnapshotResult{
		{Target: "billing", Status: reports.SnapshotResultError, Error: "while taking a snapshot of billing: database unreachable: dial tcp 127.0.0.1:1: connect: connection refused"},
		{Target: "orders", Status: reports.SnapshotStatusComplete,
			Snapshot: &reports.SnapshotMetadata{ID: "20261121T162000Z-a1b2c3", Target: "orders", TakenAt: takenAt, SizeBytes: 3 << 20, Files: 12, FrozenSeconds: 1.5},
			Retention: &reports.SnapshotRetention{Rules: "keepLast 1", Kept: 1, Deleted: []reports.SnapshotDeletion{
				{ID: "20261120T162000Z-0f0f0f", TakenAt: takenAt.Add(-24 * time.Hour), Reason: "keepLast 1: 2nd newest"}}}},
	}
}

// Every target has its row; a failure is printed in full, and so is what retention deleted and
// why.
func TestSnapshotResults(t *testing.T) {
	var b bytes.Buffer
	if err := render.SnapshotResults(&b, snapshotResults(), takenAt.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"billing", "ERROR", "connection refused",
		"orders", "COMPLETE", "20261121T162000Z-a1b2c3", "kept 1, deleted 1",
		"Retention of orders (keepLast 1): kept 1, deleted 1:", "20261120T162000Z-0f0f0f", "keepLast 1: 2nd newest",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// The JSON of a taken snapshot is its metadata (id at the top, as before) plus status and
// retention; a failure is {target, status, error}.
func TestSnapshotResultJSON(t *testing.T) {
	var b bytes.Buffer
	if err := render.JSON(&b, snapshotResults()); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"failure target", got[0]["target"], "billing"},
		{"failure status", got[0]["status"], "error"},
		{"failure has no id", got[0]["id"], nil},
		{"success id", got[1]["id"], "20261121T162000Z-a1b2c3"},
		{"success status", got[1]["status"], "complete"},
		{"success files", got[1]["files"], 12.0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("%v, want %v\n%s", tt.got, tt.want, b.String())
			}
		})
	}
	if !strings.Contains(got[0]["error"].(string), "connection refused") {
		t.Errorf("failure error = %v", got[0]["error"])
	}
	ret, _ := got[1]["retention"].(map[string]any)
	deleted, _ := ret["deleted"].([]any)
	if len(deleted) != 1 || deleted[0].(map[string]any)["reason"] != "keepLast 1: 2nd newest" {
		t.Errorf("retention = %v", got[1]["retention"])
	}
}

// A listing with a damaged snapshot has a STATUS column and the reason; one without keeps its
// columns.
func TestSnapshotsMarkDamaged(t *testing.T) {
	snaps := append([]reports.SnapshotMetadata{{ID: "20261122T162000Z-dddddd", TakenAt: takenAt.Add(24 * time.Hour),
		Status: reports.SnapshotStatusDamaged, Reason: "meta.json is not valid metadata (40 bytes): unexpected end of JSON input"}}, testSnapshots()...)
	var b bytes.Buffer
	if err := render.Snapshots(&b, snaps, takenAt.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"STATUS", "DAMAGED", "COMPLETE", "unexpected end of JSON input"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := render.Snapshots(&b, testSnapshots(), takenAt.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "STATUS") {
		t.Errorf("a listing of complete snapshots grew a STATUS column:\n%s", b.String())
	}
}
