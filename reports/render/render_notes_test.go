package render

import (
	"strings"
	"testing"

	"github.com/firedrill/firedrill/reports"
)

// The table says where a Kubernetes drill ran, what the reader must know, and what --keep left
// in the cluster.
func TestDrillShowsPodNotesAndKeptObjects(t *testing.T) {
	r := &reports.DrillResult{ID: "1a2b", Target: "orders", Status: reports.StatusPass,
		Runtime: &reports.Runtime{Kind: "kubernetes", Namespace: "firedrill-scratch", Pod: "firedrill-1a2b"},
		Notes:   []string{"snapshot s1 carries no backup label: it is drilled as crash-consistent"},
		Kept:    &reports.Kept{ScratchDir: "/tmp/x", Objects: []string{"PersistentVolumeClaim firedrill-scratch/firedrill-1a2b-data"}}}
	var b strings.Builder
	if err := Drill(&b, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"firedrill-scratch/firedrill-1a2b", "crash-consistent", "left in the cluster: PersistentVolumeClaim firedrill-scratch/firedrill-1a2b-data", "firedrill gc --include-kept"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table does not say %q:\n%s", want, b.String())
		}
	}
}
