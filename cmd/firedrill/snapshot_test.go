package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/snapshot/take"
)

// TestRenderGroup: a group that failed says no snapshot was taken and why; one taken lists its
// members' retention in the group's order (the result holds them in a map).
func TestRenderGroup(t *testing.T) {
	taken := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		res     *take.GroupResult
		members []string
		want    []string // in this order
		absent  []string
	}{{
		name: "failed",
		res: &take.GroupResult{Group: "shop", Status: snapshot.ResultError, Snapshots: []snapshot.Metadata{},
			Error: "while taking a snapshot of group shop: member billing: unreachable"},
		want:   []string{"Group shop: no snapshot taken (every member was thawed and the batch deleted):\n  while taking a snapshot of group shop: member billing: unreachable\n"},
		absent: []string{"batch b", "Retention"},
	}, {
		name: "taken, retention in the group's order",
		res: &take.GroupResult{Group: "shop", Status: snapshot.StatusComplete, BatchID: "b1", Method: take.MethodFreezeAll,
			Snapshots: []snapshot.Metadata{{ID: "s1", Target: "orders", TakenAt: taken}, {ID: "s2", Target: "billing", TakenAt: taken}},
			Retention: map[string]*snapshot.Retention{
				"orders":  {Rules: "keepLast 1", Kept: 1, Deleted: []snapshot.Deletion{}},
				"billing": {Rules: "keepLast 2", Kept: 2, Deleted: []snapshot.Deletion{}},
			}},
		members: []string{"orders", "billing", "items"},
		want: []string{"Group shop, batch b1: 2 snapshots by " + take.MethodFreezeAll, "s1", "s2",
			"Retention of orders (keepLast 1): kept 1, deleted nothing.", "Retention of billing (keepLast 2): kept 2, deleted nothing."},
		absent: []string{"Retention of items", "No VolumeGroupSnapshot"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := renderGroup(&b, tc.res, tc.members); err != nil {
				t.Fatal(err)
			}
			out, at := b.String(), 0
			for _, w := range tc.want {
				i := strings.Index(out[at:], w)
				if i < 0 {
					t.Fatalf("output lacks %q after offset %d:\n%s", w, at, out)
				}
				at += i + len(w)
			}
			for _, a := range tc.absent {
				if strings.Contains(out, a) {
					t.Errorf("output has %q:\n%s", a, out)
				}
			}
		})
	}
}
