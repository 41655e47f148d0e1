package local_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/snapshot/local"
	"github.com/firedrill/firedrill/restore/snapshot/retention"
)

// takeAt takes a snapshot of fx whose backup ends at at; like a real one, it was started (its
// id's time) a little before.
func takeAt(t *testing.T, repo *local.Repository, fx *fixture, at time.Time) *snapshot.Metadata {
	t.Helper()
	repo.Now = func() time.Time { return at.Add(-10 * time.Second) }
	m, err := repo.Create(context.Background(), fx.request(newFreezer(at)))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return m
}

// statuses maps each listed id to "status: reason".
func statuses(ms []snapshot.Metadata) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		out[m.ID] = m.Status + ": " + m.Reason
	}
	return out
}

func ids(ms []snapshot.Metadata) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

// An unreadable snapshot is listed as damaged, with the reason, in its place by time; it is
// neither in List nor restorable by Get.
func TestListAllReportsDamaged(t *testing.T) {
	metaOf := func(t *testing.T, repo *local.Repository, id string) string {
		return filepath.Join(repo.Path(id), "meta.json")
	}
	tests := []struct {
		name   string
		damage func(t *testing.T, repo *local.Repository, newest *snapshot.Metadata) (id string)
		reason string
	}{
		{"truncated meta.json", func(t *testing.T, repo *local.Repository, newest *snapshot.Metadata) string {
			if err := os.Truncate(metaOf(t, repo, newest.ID), 40); err != nil {
				t.Fatal(err)
			}
			return newest.ID
		}, "is not valid metadata"},
		{"empty meta.json", func(t *testing.T, repo *local.Repository, newest *snapshot.Metadata) string {
			if err := os.Truncate(metaOf(t, repo, newest.ID), 0); err != nil {
				t.Fatal(err)
			}
			return newest.ID
		}, "is not valid metadata"},
		{"meta.json deleted", func(t *testing.T, repo *local.Repository, newest *snapshot.Metadata) string {
			if err := os.Remove(metaOf(t, repo, newest.ID)); err != nil {
				t.Fatal(err)
			}
			return newest.ID
		}, "no meta.json"},
		{"meta.json of another snapshot", func(t *testing.T, repo *local.Repository, newest *snapshot.Metadata) string {
			b, _ := os.ReadFile(metaOf(t, repo, newest.ID))
			b = []byte(strings.ReplaceAll(string(b), newest.ID, "20261121T000000Z-000000"))
			if err := os.WriteFile(metaOf(t, repo, newest.ID), b, 0o600); err != nil {
				t.Fatal(err)
			}
			return newest.ID
		}, `names snapshot "20261121T000000Z-000000"`},
		{"manifest gone", func(t *testing.T, repo *local.Repository, newest *snapshot.Metadata) string {
			if err := os.Remove(filepath.Join(repo.Path(newest.ID), "manifest.sha256")); err != nil {
				t.Fatal(err)
			}
			return newest.ID
		}, "manifest.sha256 cannot be read"},
		{"an id folder with no metadata", func(t *testing.T, repo *local.Repository, _ *snapshot.Metadata) string {
			id := "20261121T190000Z-abcdef"
			if err := os.MkdirAll(filepath.Join(repo.Dir, id, "data"), 0o700); err != nil {
				t.Fatal(err)
			}
			return id
		}, "no meta.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			repo := newRepo(t)
			older := takeAt(t, repo, fx, testNow)
			newest := takeAt(t, repo, fx, testNow.Add(time.Hour))
			bad := tc.damage(t, repo, newest)
			// Not a snapshot: neither named like one nor holding metadata.
			if err := os.MkdirAll(filepath.Join(repo.Dir, "lost+found"), 0o700); err != nil {
				t.Fatal(err)
			}

			all, err := repo.ListAll(context.Background())
			if err != nil {
				t.Fatalf("ListAll: %v", err)
			}
			got := statuses(all)
			if len(all) == 0 || all[0].ID != bad {
				t.Fatalf("ListAll = %v, want the damaged %s first (newest)", ids(all), bad)
			}
			if st := got[bad]; !strings.HasPrefix(st, snapshot.StatusDamaged+": ") || !strings.Contains(st, tc.reason) {
				t.Errorf("%s is %q, want damaged: …%s…", bad, st, tc.reason)
			}
			if st := got[older.ID]; st != snapshot.StatusComplete+": " {
				t.Errorf("the good snapshot is %q, want complete", st)
			}
			if _, ok := got["lost+found"]; ok {
				t.Error("lost+found is listed as a snapshot")
			}
			if all[0].TakenAt.IsZero() {
				t.Error("a damaged snapshot has no time to order it by")
			}

			list, err := repo.List(context.Background())
			if err != nil || slices.Contains(ids(list), bad) || !slices.Contains(ids(list), older.ID) {
				t.Errorf("List = %v, %v; want the good one and not %s", ids(list), err, bad)
			}
			_, err = repo.Get(context.Background(), bad)
			var de *snapshot.DamagedError
			if !errors.Is(err, snapshot.ErrDamaged) || !errors.Is(err, snapshot.ErrNotFound) || !errors.As(err, &de) || de.Snapshot.Status != snapshot.StatusDamaged {
				t.Errorf("Get(%s) error = %v, want a DamagedError (ErrDamaged and ErrNotFound)", bad, err)
			}
			if _, err := repo.Clone(context.Background(), bad, filepath.Join(t.TempDir(), "clone"), nil); !errors.Is(err, snapshot.ErrDamaged) {
				t.Errorf("Clone of the damaged snapshot: %v, want ErrDamaged", err)
			}
			if err := repo.Delete(context.Background(), bad); !errors.Is(err, snapshot.ErrDamaged) {
				t.Errorf("Delete of the damaged snapshot: %v, want ErrDamaged (retention must never remove evidence)", err)
			}
		})
	}
}

// A snapshot whose metadata names another target is foreign in that target's repository: never
// complete, never restorable. A repository that does not know its target keeps the old
// behaviour.
func TestForeignTarget(t *testing.T) {
	fx := newFixture(t)
	repo := newRepo(t)
	repo.Target = "orders"
	own := takeAt(t, repo, fx, testNow)
	// billing's snapshot written into orders' repository (a shared repository, or a copy).
	req := fx.request(newFreezer(testNow.Add(time.Hour)))
	req.Target = "billing"
	repo.Now = func() time.Time { return testNow.Add(time.Hour - time.Minute) }
	foreign, err := repo.Create(context.Background(), req)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	// Metadata edited to name another target: the same.
	edited := takeAt(t, repo, fx, testNow.Add(2*time.Hour))
	p := filepath.Join(repo.Path(edited.ID), "meta.json")
	var m map[string]any
	b, _ := os.ReadFile(p)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["target"] = "payments"
	b, _ = json.Marshal(m)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}

	all, err := repo.ListAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := statuses(all)
	tests := []struct {
		id, want string
	}{
		{own.ID, "complete: "},
		{foreign.ID, `foreign: meta.json names target "billing", not "orders"`},
		{edited.ID, `foreign: meta.json names target "payments", not "orders"`},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if !strings.HasPrefix(got[tt.id], tt.want) {
				t.Errorf("%s = %q, want %q…", tt.id, got[tt.id], tt.want)
			}
		})
	}
	if list, _ := repo.List(context.Background()); !slices.Equal(ids(list), []string{own.ID}) {
		t.Errorf("List = %v, want only orders' own %s", ids(list), own.ID)
	}
	if _, err := repo.Get(context.Background(), foreign.ID); !errors.Is(err, snapshot.ErrDamaged) || !strings.Contains(err.Error(), "billing") {
		t.Errorf("Get of billing's snapshot as orders = %v, want ErrDamaged naming billing", err)
	}
	if _, err := repo.Clone(context.Background(), edited.ID, filepath.Join(t.TempDir(), "c"), nil); !errors.Is(err, snapshot.ErrDamaged) {
		t.Errorf("Clone of a foreign snapshot = %v, want ErrDamaged", err)
	}

	anyTarget := local.New(repo.Dir, 1)
	if list, _ := anyTarget.List(context.Background()); len(list) != 3 {
		t.Errorf("a repository without a target lists %v, want all three", ids(list))
	}
}

// A snapshot being taken is a hidden .partial folder under the repository's lock: not damaged,
// not listed. Nor is one whose taker died (the next snapshot removes it).
func TestPartialInProgressIsNotDamaged(t *testing.T) {
	fx := newFixture(t)
	repo := newRepo(t)
	done := takeAt(t, repo, fx, testNow)

	fr := newFreezer(testNow.Add(time.Hour))
	var during []snapshot.Metadata
	var listErr error
	var partials []string
	fr.onFreeze = func() {
		for _, e := range repoEntries(t, repo.Dir) {
			if strings.HasPrefix(e, ".partial-") {
				partials = append(partials, e)
			}
		}
		during, listErr = repo.ListAll(context.Background())
	}
	repo.Now = func() time.Time { return testNow.Add(time.Hour - time.Minute) }
	next, err := repo.Create(context.Background(), fx.request(fr))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if len(partials) != 1 {
		t.Fatalf("no snapshot in progress was seen (entries %v)", partials)
	}
	if listErr != nil || !slices.Equal(ids(during), []string{done.ID}) || during[0].Status != snapshot.StatusComplete {
		t.Errorf("ListAll while a snapshot is taken = %v (%v), %v; want only %s, complete", ids(during), statuses(during), listErr, done.ID)
	}

	// A dead taker's leftovers: the lock is free, the folder stays until the next snapshot.
	stale := filepath.Join(repo.Dir, ".partial-20261121T200000Z-dead00")
	if err := os.MkdirAll(filepath.Join(stale, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	all, err := repo.ListAll(context.Background())
	if err != nil || !slices.Equal(ids(all), []string{next.ID, done.ID}) {
		t.Errorf("ListAll with a stale partial = %v (%v), %v; want the two complete snapshots", ids(all), statuses(all), err)
	}
}

// Retention counts and deletes complete snapshots only, and says what it deleted and why: a
// damaged newest snapshot neither takes the keepLast place of the newest good one nor is deleted.
func TestRetentionReport(t *testing.T) {
	fx := newFixture(t)
	repo := newRepo(t)
	var taken []*snapshot.Metadata
	for i := range 4 {
		taken = append(taken, takeAt(t, repo, fx, testNow.Add(time.Duration(i)*time.Hour)))
	}
	damaged := taken[3]
	if err := os.Truncate(filepath.Join(repo.Path(damaged.ID), "meta.json"), 10); err != nil {
		t.Fatal(err)
	}
	now := testNow.Add(4 * time.Hour)
	tests := []struct {
		name        string
		policy      retention.Policy
		wantKept    []string
		wantDeleted map[string]string // id -> reason
	}{
		{"keepLast 1", retention.Policy{KeepLast: 1}, []string{taken[2].ID},
			map[string]string{taken[1].ID: "keepLast 1: 2nd newest", taken[0].ID: "keepLast 1: 3rd newest"}},
		{"keepWithin", retention.Policy{KeepWithin: 150 * time.Minute}, []string{taken[2].ID},
			map[string]string{taken[1].ID: "keepWithin 2h30m: 3h old", taken[0].ID: "keepWithin 2h30m: 4h old"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := local.New(t.TempDir()+"/repo", 2)
			r.Fsync = false
			if err := os.CopyFS(r.Dir, os.DirFS(repo.Dir)); err != nil {
				t.Fatal(err)
			}
			plan, err := retention.Apply(context.Background(), "orders", r, nil, tc.policy, now)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			rep := retention.Report(tc.policy, plan, err)
			got := map[string]string{}
			for _, d := range rep.Deleted {
				got[d.ID] = d.Reason
				if d.TakenAt.IsZero() {
					t.Errorf("deletion of %s has no takenAt", d.ID)
				}
			}
			if len(got) != len(tc.wantDeleted) {
				t.Errorf("deleted %v, want %v", got, tc.wantDeleted)
			}
			for id, why := range tc.wantDeleted {
				if got[id] != why {
					t.Errorf("deletion of %s: reason %q, want %q", id, got[id], why)
				}
			}
			if rep.Kept != len(tc.wantKept) || rep.Rules != tc.policy.String() {
				t.Errorf("report kept %d under %q, want %d under %q", rep.Kept, rep.Rules, len(tc.wantKept), tc.policy.String())
			}
			all, err := r.ListAll(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if want := append([]string{damaged.ID}, tc.wantKept...); !slices.Equal(ids(all), want) {
				t.Errorf("left %v, want the damaged %s (never deleted) and the newest good %v", statuses(all), damaged.ID, tc.wantKept)
			}
		})
	}
}

// Ids name whole seconds: a snapshot started in the second its predecessor ended, whose
// metadata is then lost, is still listed as the newer of the two.
func TestDamagedOrderedWithinTheSecond(t *testing.T) {
	fx := newFixture(t)
	repo := newRepo(t)
	sec := testNow.Truncate(time.Second)
	repo.Now = func() time.Time { return sec.Add(100 * time.Millisecond) }
	prev, err := repo.Create(context.Background(), fx.request(newFreezer(sec.Add(500*time.Millisecond))))
	if err != nil {
		t.Fatal(err)
	}
	repo.Now = func() time.Time { return sec.Add(600 * time.Millisecond) }
	next, err := repo.Create(context.Background(), fx.request(newFreezer(sec.Add(900*time.Millisecond))))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(repo.Path(next.ID), "meta.json")); err != nil {
		t.Fatal(err)
	}
	all, err := repo.ListAll(context.Background())
	if err != nil || !slices.Equal(ids(all), []string{next.ID, prev.ID}) {
		t.Errorf("ListAll = %v, %v; want the damaged %s first", statuses(all), err, next.ID)
	}
}
