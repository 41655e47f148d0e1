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

// optionsSweeper records the options each SweepTarget got and says what it (would have)
// removed, as the Kubernetes runtime does.
type optionsSweeper struct {
	fakeRuntime
	got []GCOptions
}

func (s *optionsSweeper) SweepTarget(_ context.Context, target string, o GCOptions) ([]string, error) {
	s.got = append(s.got, o)
	return []string{"Pod firedrill-scratch/firedrill-0000dead of " + target}, nil
}

// gc hands its options to the scratch sweep and to every target's runtime, and lists the
// runtime's objects in its result with the action taken.
func TestGCPassesItsOptions(t *testing.T) {
	tests := []struct {
		name       string
		opts       GCOptions
		dirAction  string // the dead drill's scratch directory
		keptAction string
		objAction  string
	}{
		{"plain", GCOptions{}, reports.LeftoverRemoved, reports.LeftoverLeft, reports.LeftoverRemoved},
		{"include kept", GCOptions{IncludeKept: true}, reports.LeftoverRemoved, reports.LeftoverRemoved, reports.LeftoverRemoved},
		{"dry run", GCOptions{IncludeKept: true, DryRun: true}, reports.LeftoverWouldRemove, reports.LeftoverWouldRemove, reports.LeftoverWouldRemove},
		{"older than its drills", GCOptions{IncludeKept: true, OlderThan: 2 * time.Hour}, reports.LeftoverLeft, reports.LeftoverLeft, reports.LeftoverRemoved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			dead := deadDrill(t, root, "orders", "0000dead", false) // started an hour ago
			kept := deadDrill(t, root, "orders", "0000cafe", true)
			fake := &optionsSweeper{}
			hist := &memHistory{}
			d := &Drill{Now: time.Now, History: hist, StopLeftover: func(context.Context, string) ([]string, error) { return nil, nil },
				Runtimes: map[string]RuntimeFactory{"kubernetes": func(context.Context, RuntimeOptions) (Runtime, error) { return fake, nil }}}
			res, err := d.GC(t.Context(), []GCTarget{{Name: "orders", ScratchDir: root, Runtime: RuntimeOptions{Kind: "kubernetes"}}}, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(fake.got) != 1 || fake.got[0] != tt.opts {
				t.Errorf("the runtime's sweep got %+v, want %+v", fake.got, tt.opts)
			}
			actions := map[string]string{}
			for _, lo := range res.Leftovers {
				actions[lo.ScratchDir] = lo.Action
			}
			if actions[dead] != tt.dirAction || actions[kept] != tt.keptAction {
				t.Errorf("dead drill %s, kept drill %s; want %s, %s", actions[dead], actions[kept], tt.dirAction, tt.keptAction)
			}
			want := SweptObject{Runtime: "kubernetes", Target: "orders", Object: "Pod firedrill-scratch/firedrill-0000dead of orders", Action: tt.objAction}
			if len(res.Objects) != 1 || res.Objects[0] != want {
				t.Errorf("objects %+v, want [%+v]", res.Objects, want)
			}
			if _, err := os.Stat(dead); (err == nil) != (tt.dirAction != reports.LeftoverRemoved) {
				t.Errorf("dead drill's directory: %v after %s", err, tt.dirAction)
			}
			if recorded := len(hist.got) > 0; recorded == tt.opts.DryRun {
				t.Errorf("history records %d, dry run %v", len(hist.got), tt.opts.DryRun)
			}
		})
	}
}

// A drill's own sweep asks its runtime with the zero options: any age, kept drills left, for
// real.
func TestDrillSweepPassesZeroOptions(t *testing.T) {
	fake := &optionsSweeper{}
	d := &Drill{Now: time.Now, StopLeftover: func(context.Context, string) ([]string, error) { return nil, nil }}
	d.sweep(t.Context(), Options{Target: "orders", Runtime: RuntimeOptions{ScratchDir: t.TempDir()}}, "11111111", fake, d.logger())
	if len(fake.got) != 1 || fake.got[0] != (GCOptions{}) {
		t.Errorf("the runtime's sweep got %+v, want the zero options", fake.got)
	}
}
