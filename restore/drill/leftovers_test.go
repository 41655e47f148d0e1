package drill

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/firedrill/firedrill/reports"
	dirscratch "github.com/firedrill/firedrill/restore/drill/scratch"
	"github.com/firedrill/firedrill/restore/snapshot"
)

type memHistory struct {
	mu  sync.Mutex
	got []reports.DrillResult
}

func (m *memHistory) Save(_ context.Context, r *reports.DrillResult) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.got = append(m.got, *r)
	return "", nil
}

// deadDrill leaves what a drill killed in its clone phase leaves: a released lock, a directory.
func deadDrill(t *testing.T, root, target, id string, kept bool) string {
	t.Helper()
	dir := filepath.Join(root, dirscratch.DirName(target, id))
	l, err := dirscratch.Acquire(root, dirscratch.Record{DrillID: id, Target: target, PID: 99999, StartedAt: time.Now().Add(-time.Hour), Kept: kept, ScratchDir: dir, Phase: "clone"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "clone"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "clone", "PG_VERSION"), []byte("15\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if kept {
		now := time.Now()
		_ = l.Update(func(r *dirscratch.Record) { r.FinishedAt = &now })
	}
	_ = l.Release(false)
	return dir
}

// Every drill starts by removing its own target's dead leftovers, says so in its result,
// records the dead drill as interrupted, and leaves kept throwaways and other targets alone.
func TestRunCleansUpDeadDrillsOfItsTarget(t *testing.T) {
	root := t.TempDir()
	dead := deadDrill(t, root, "orders", "0000dead", false)
	kept := deadDrill(t, root, "orders", "0000cafe", true)
	other := deadDrill(t, root, "payments", "0000beef", false)
	hist := &memHistory{}
	var stopped []string
	d := &Drill{Source: &emptySource{}, History: hist, StopLeftover: func(_ context.Context, dir string) ([]string, error) {
		stopped = append(stopped, dir)
		return nil, nil
	}}
	res, err := d.Run(context.Background(), Options{Target: "orders", Engine: "postgres", Driver: "local", RTO: time.Minute, Runtime: RuntimeOptions{ScratchDir: root}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.CleanedUp) != 1 || res.CleanedUp[0].ScratchDir != dead || res.CleanedUp[0].Action != reports.LeftoverRemoved ||
		res.CleanedUp[0].DrillID != "0000dead" || res.CleanedUp[0].StartedAt == nil || res.CleanedUp[0].Bytes == 0 {
		t.Errorf("cleanedUp = %+v, want the dead drill's directory, removed", res.CleanedUp)
	}
	if len(res.KeptThrowaways) != 1 || res.KeptThrowaways[0].ScratchDir != kept || res.KeptThrowaways[0].Action != reports.LeftoverLeft {
		t.Errorf("keptThrowaways = %+v, want the kept one, left", res.KeptThrowaways)
	}
	for dir, want := range map[string]bool{dead: false, kept: true, other: true} {
		if _, err := os.Stat(dir); (err == nil) != want {
			t.Errorf("%s exists = %v, want %v", dir, err == nil, want)
		}
	}
	if len(stopped) != 1 || stopped[0] != dead {
		t.Errorf("servers stopped on %v, want only %s", stopped, dead)
	}
	if len(hist.got) != 1 || hist.got[0].ID != "0000dead" || !hist.got[0].Interrupted || hist.got[0].Status != reports.StatusError {
		t.Errorf("history = %+v, want one interrupted record of drill 0000dead", hist.got)
	}
}

// The lock is held while the drill runs and gone with its directory afterwards.
func TestRunHoldsAndReleasesItsLock(t *testing.T) {
	root := t.TempDir()
	// The throwaway's user (a sandbox uid, as root) must be able to reach the scratch root.
	for _, d := range []string{root, filepath.Dir(root)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	seen := make(chan []reports.Leftover, 1)
	src := &lockPeekSource{root: root, seen: seen}
	res, err := (&Drill{Source: src}).Run(context.Background(), Options{Target: "orders", Engine: "postgres", Driver: "local", RTO: time.Minute, Runtime: RuntimeOptions{ScratchDir: root}})
	if err != nil {
		t.Fatal(err)
	}
	during := <-seen
	if len(during) != 1 || during[0].State != reports.LeftoverLive || during[0].DrillID != res.ID || during[0].Phase != "clone" {
		t.Errorf("during the clone a sweep saw %+v, want drill %s live in phase clone", during, res.ID)
	}
	if left, _ := os.ReadDir(root); len(left) != 0 {
		t.Errorf("left in the scratch root after the drill: %v", left)
	}
}

// lockPeekSource has one snapshot; its Materialize sweeps the scratch root (as a concurrent drill of
// the same target would) and then fails.
type lockPeekSource struct {
	root string
	seen chan []reports.Leftover
}

func (s *lockPeekSource) List(context.Context) ([]snapshot.Metadata, error) {
	return []snapshot.Metadata{{ID: "20261130T000000Z-abcdef", TakenAt: time.Now().Add(-time.Minute)}}, nil
}

func (s *lockPeekSource) Get(context.Context, string) (*snapshot.Metadata, error) {
	return nil, snapshot.ErrNotFound
}

func (s *lockPeekSource) Materialize(ctx context.Context, _ MaterializeRequest) (*Copy, error) {
	found, err := dirscratch.Sweep(ctx, dirscratch.Options{Root: s.root, Stop: func(context.Context, string) ([]string, error) {
		return nil, errors.New("a live drill's server must not be stopped")
	}})
	if err != nil {
		return nil, err
	}
	s.seen <- found
	return nil, errors.New("clone refused by the test")
}
