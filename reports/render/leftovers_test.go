package render

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/reports"
)

func leftoverFixtures() []reports.Leftover {
	started := time.Date(2026, 11, 30, 4, 12, 0, 0, time.UTC)
	return []reports.Leftover{
		{ScratchDir: "/var/tmp/firedrill/firedrill-drill-orders-1a2b3c4d", DrillID: "1a2b3c4d", Target: "orders", StartedAt: &started,
			PID: 4242, Phase: "clone", Bytes: 137 << 20, State: reports.LeftoverDead, Action: reports.LeftoverRemoved,
			Stopped: []string{"removed shared memory segment 65538 (key 5432001, 148 bytes) left by postmaster 4300"}, Recorded: true},
		{ScratchDir: "/var/tmp/firedrill/firedrill-drill-orders-cafe0001", DrillID: "cafe0001", Target: "orders", StartedAt: &started,
			Bytes: 90 << 20, Kept: true, State: reports.LeftoverKept, Action: reports.LeftoverLeft},
		{ScratchDir: "/var/tmp/firedrill/firedrill-drill-payments-0000beef", DrillID: "0000beef", Target: "payments",
			Bytes: 4096, State: reports.LeftoverOrphan, Action: reports.LeftoverFailed, Error: "while removing /var/tmp/…: operation not permitted"},
	}
}

func TestLeftovers(t *testing.T) {
	for _, width := range []int{0, 80, 140} {
		t.Run("width "+strconv.Itoa(width), func(t *testing.T) {
			var b bytes.Buffer
			if err := Leftovers(WithWidth(&b, width), leftoverFixtures()); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			for _, want := range []string{"TARGET", "STATE", "ACTION", "DEAD", "REMOVED", "KEPT", "LEFT", "ORPHAN", "FAILED", "137.0 MiB", "history", "permitted", "2b3c4d", "fe0001"} {
				if !strings.Contains(out, want) {
					t.Errorf("width %d: table lacks %q:\n%s", width, want, out)
				}
			}
			if width > 0 {
				for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
					if textWidth(l) > width {
						t.Errorf("line wider than %d: %q", width, l)
					}
				}
			}
		})
	}
	var b bytes.Buffer
	if err := Leftovers(&b, nil); err != nil || !strings.Contains(b.String(), "nothing to remove") {
		t.Errorf("empty: %q, %v", b.String(), err)
	}
}

// A drill's table says what it cleaned up before it started and which kept copies it left.
func TestDrillSaysWhatItCleanedUp(t *testing.T) {
	los := leftoverFixtures()
	r := &reports.DrillResult{ID: "0000aaaa", Target: "orders", Status: reports.StatusPass,
		CleanedUp: []reports.Leftover{los[0], los[2]}, KeptThrowaways: []reports.Leftover{los[1]}}
	var b bytes.Buffer
	if err := Drill(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"cleaned up:", "firedrill-drill-orders-1a2b3c4d of dead drill 1a2b3c4d (137.0 MiB), started 2026-11-30T04:12:00Z",
		"not removed:", "operation not permitted",
		"kept throwaway:", "firedrill-drill-orders-cafe0001 of drill cafe0001 left alone (firedrill gc --include-kept removes it)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("drill table lacks %q:\n%s", want, out)
		}
	}
}

func TestLeftoverObjects(t *testing.T) {
	objs := []LeftoverObject{
		{Runtime: "kubernetes", Target: "orders", Object: "Pod firedrill-scratch/firedrill-1a2b3c4d", Action: reports.LeftoverRemoved},
		{Runtime: "kubernetes", Target: "orders", Object: "VolumeSnapshotContent firedrill-1a2b3c4d-data", Action: reports.LeftoverWouldRemove},
		{Runtime: "docker", Target: "payments", Object: "container 0123456789ab (drill 0000beef)", Action: reports.LeftoverRemoved},
	}
	for _, width := range []int{0, 80} {
		t.Run("width "+strconv.Itoa(width), func(t *testing.T) {
			var b bytes.Buffer
			if err := LeftoverObjects(WithWidth(&b, width), objs); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			for _, want := range []string{"RUNTIME", "OBJECT", "kubernetes", "docker", "REMOVED", "WOULD-REMOVE", "1a2b3c4d-data", "0000beef"} {
				if !strings.Contains(out, want) {
					t.Errorf("width %d: table lacks %q:\n%s", width, want, out)
				}
			}
			for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
				if width > 0 && textWidth(l) > width {
					t.Errorf("line wider than %d: %q", width, l)
				}
			}
		})
	}
	var b bytes.Buffer
	if err := LeftoverObjects(&b, nil); err != nil || b.Len() != 0 {
		t.Errorf("empty: %q, %v", b.String(), err)
	}
}
