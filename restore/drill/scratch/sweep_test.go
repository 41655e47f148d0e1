package scratch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/reports/history"
)

func TestParseName(t *testing.T) {
	tests := []struct {
		name       string
		target, id string
		lock, ok   bool
	}{
		{"firedrill-drill-orders-1a2b3c4d", "orders", "1a2b3c4d", false, true},
		{".firedrill-drill-orders-1a2b3c4d.lock", "orders", "1a2b3c4d", true, true},
		{"firedrill-drill-orders-eu-1a2b3c4d", "orders-eu", "1a2b3c4d", false, true},
		{".firedrill-drill-orders-eu-1a2b3c4d.lock", "orders-eu", "1a2b3c4d", true, true},
		{"firedrill-drill-orders-1a2b3c4d.lock", "", "", false, false}, // a lock is a dot file
		{".firedrill-drill-orders-1a2b3c4d", "", "", false, false},
		{"firedrill-drill-orders-xyz", "", "", false, false},
		{"firedrill-drill--1a2b3c4d", "", "", false, false},
		{"fd-sock-123", "", "", false, false},
		{".firedrill-lock-123", "", "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target, id, lock, ok := parseName(tt.name)
			if target != tt.target || id != tt.id || lock != tt.lock || ok != tt.ok {
				t.Errorf("parseName(%q) = %q %q %v %v, want %q %q %v %v", tt.name, target, id, lock, ok, tt.target, tt.id, tt.lock, tt.ok)
			}
		})
	}
}

// drillState is what a test drill leaves in the scratch root.
type drillState int

const (
	live        drillState = iota // its process holds the lock
	killed                        // died mid-drill: lock released, never finished
	finished                      // returned, but its directory stayed (a failed removal)
	keptAlive                     // --keep, finished: the throwaway stays for inspection
	keptKilled                    // --keep, killed before it finished
	orphan                        // a directory with no lock file
	lockOnly                      // killed after taking the lock, before making the directory
	otherTarget                   // a dead drill of another target
)

// fakeDrill makes a drill's lock file and directory in root as state says; the returned lock
// is held for a live drill (release it at the end of the test).
func fakeDrill(t *testing.T, root, target, id string, state drillState) *Lock {
	t.Helper()
	started := time.Date(2026, 11, 30, 4, 0, 0, 0, time.UTC)
	rec := Record{DrillID: id, Target: target, Engine: "postgres", PID: 4242, StartedAt: started,
		ScratchDir: filepath.Join(root, DirName(target, id)), Phase: "clone", SnapshotID: "20261130T030000Z-aaaaaa",
		Kept: state == keptAlive || state == keptKilled}
	dir := filepath.Join(root, DirName(target, id))
	var l *Lock
	if state != orphan {
		var err error
		if l, err = Acquire(root, rec); err != nil {
			t.Fatal(err)
		}
	}
	if state != lockOnly {
		if err := os.MkdirAll(filepath.Join(dir, "clone", "data"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "clone", "data", "16384"), make([]byte, 64<<10), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	switch state {
	case live:
		return l
	case finished, keptAlive:
		now := time.Now().UTC()
		if err := l.Update(func(r *Record) { r.FinishedAt = &now }); err != nil {
			t.Fatal(err)
		}
	}
	if l != nil {
		// The process is gone: the kernel drops its lock, the file stays.
		if err := l.Release(false); err != nil {
			t.Fatal(err)
		}
	}
	return nil
}

type stopper struct {
	calls []string
	err   error
}

func (s *stopper) stop(_ context.Context, dir string) ([]string, error) {
	s.calls = append(s.calls, dir)
	if s.err != nil {
		return nil, s.err
	}
	return []string{"stopped process 1 running on " + dir}, nil
}

func TestSweep(t *testing.T) {
	tests := []struct {
		state       drillState
		includeKept bool
		wantState   string
		wantAction  string
		removed     bool // the directory and lock file are gone
		recorded    bool // an interrupted record was written
		stopped     bool
	}{
		{live, false, reports.LeftoverLive, reports.LeftoverLeft, false, false, false},
		{live, true, reports.LeftoverLive, reports.LeftoverLeft, false, false, false},
		{killed, false, reports.LeftoverDead, reports.LeftoverRemoved, true, true, true},
		{finished, false, reports.LeftoverDead, reports.LeftoverRemoved, true, false, true},
		{keptAlive, false, reports.LeftoverKept, reports.LeftoverLeft, false, false, false},
		{keptAlive, true, reports.LeftoverKept, reports.LeftoverRemoved, true, false, true},
		{keptKilled, false, reports.LeftoverKept, reports.LeftoverLeft, false, true, false},
		{keptKilled, true, reports.LeftoverKept, reports.LeftoverRemoved, true, true, true},
		{orphan, false, reports.LeftoverOrphan, reports.LeftoverRemoved, true, false, true},
		{lockOnly, false, reports.LeftoverDead, reports.LeftoverRemoved, true, true, false},
	}
	names := map[drillState]string{live: "live", killed: "killed", finished: "finished", keptAlive: "kept", keptKilled: "kept and killed", orphan: "orphan", lockOnly: "lock only"}
	for _, tt := range tests {
		name := names[tt.state]
		if tt.includeKept {
			name += " with --include-kept"
		}
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			hist := history.New(t.TempDir())
			l := fakeDrill(t, root, "orders", "0000abcd", tt.state)
			if l != nil {
				defer l.Release(true)
			}
			fakeDrill(t, root, "payments", "0000ffff", killed) // another target's: never touched
			st := &stopper{}
			found, err := Sweep(context.Background(), Options{Root: root, Targets: []string{"orders"}, IncludeKept: tt.includeKept, Stop: st.stop, History: hist, By: "drill 11111111"})
			if err != nil {
				t.Fatal(err)
			}
			if len(found) != 1 {
				t.Fatalf("found %+v, want the orders drill only", found)
			}
			lo := found[0]
			if lo.State != tt.wantState || lo.Action != tt.wantAction || lo.Error != "" {
				t.Errorf("state %s action %s error %q, want %s %s", lo.State, lo.Action, lo.Error, tt.wantState, tt.wantAction)
			}
			if lo.DrillID != "0000abcd" || lo.Target != "orders" || lo.ScratchDir != filepath.Join(root, "firedrill-drill-orders-0000abcd") {
				t.Errorf("leftover %+v does not name the drill", lo)
			}
			if tt.state != orphan && (lo.StartedAt == nil || lo.PID != 4242) {
				t.Errorf("leftover %+v lacks what the lock record says", lo)
			}
			if tt.state != lockOnly && lo.Bytes < 64<<10 {
				t.Errorf("bytes = %d, want at least the 64 KiB file", lo.Bytes)
			}
			_, dirErr := os.Stat(lo.ScratchDir)
			_, lockErr := os.Stat(filepath.Join(root, ".firedrill-drill-orders-0000abcd.lock"))
			if gone := errors.Is(dirErr, os.ErrNotExist) && (tt.state == orphan || errors.Is(lockErr, os.ErrNotExist)); gone != tt.removed {
				t.Errorf("directory/lock removed = %v (%v, %v), want %v", gone, dirErr, lockErr, tt.removed)
			}
			if tt.state == orphan && !errors.Is(lockErr, os.ErrNotExist) {
				t.Errorf("an orphan sweep made a lock file")
			}
			if got := len(st.calls) == 1 && st.calls[0] == lo.ScratchDir; got != tt.stopped {
				t.Errorf("Stop calls %v, want stopped=%v", st.calls, tt.stopped)
			}
			if tt.stopped && (len(lo.Stopped) != 1 || !strings.Contains(lo.Stopped[0], "stopped process")) {
				t.Errorf("stopped = %v, want what Stop said", lo.Stopped)
			}
			rs, err := hist.List(context.Background(), "orders")
			if err != nil {
				t.Fatal(err)
			}
			if got := len(rs) == 1; got != tt.recorded || lo.Recorded != tt.recorded {
				t.Fatalf("history %+v (leftover recorded=%v), want recorded=%v", rs, lo.Recorded, tt.recorded)
			}
			if tt.recorded {
				r := rs[0]
				if r.ID != "0000abcd" || r.Status != reports.StatusError || !r.Interrupted || !r.StartedAt.Equal(*lo.StartedAt) ||
					!strings.Contains(r.Error, "interrupted") || !strings.Contains(r.Error, "drill 11111111") || !strings.Contains(r.Error, "phase clone") ||
					r.Snapshot == nil || r.Snapshot.ID != "20261130T030000Z-aaaaaa" {
					t.Errorf("interrupted record = %+v", r)
				}
			}
			if _, err := os.Stat(filepath.Join(root, "firedrill-drill-payments-0000ffff")); err != nil {
				t.Errorf("another target's leftover was touched: %v", err)
			}
			// A second sweep writes no second record and finds nothing more to do.
			again, err := Sweep(context.Background(), Options{Root: root, Targets: []string{"orders"}, IncludeKept: tt.includeKept, Stop: st.stop, History: hist})
			if err != nil {
				t.Fatal(err)
			}
			if tt.removed && len(again) != 0 {
				t.Errorf("second sweep found %+v after removal", again)
			}
			if len(again) == 1 && again[0].Recorded {
				t.Errorf("second sweep recorded the drill again")
			}
		})
	}
}

// A leftover whose server cannot be stopped stays, with its lock file, for the next sweep;
// its drill is recorded once.
func TestSweepStopFailureKeepsTheLeftover(t *testing.T) {
	root := t.TempDir()
	hist := history.New(t.TempDir())
	fakeDrill(t, root, "orders", "0000abcd", killed)
	st := &stopper{err: errors.New("leftover process 7 still runs 10s after SIGKILL")}
	found, err := Sweep(context.Background(), Options{Root: root, Stop: st.stop, History: hist})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].Action != reports.LeftoverFailed || !strings.Contains(found[0].Error, "still runs") || !found[0].Recorded {
		t.Fatalf("found %+v, want one failed leftover saying why, its drill recorded", found)
	}
	if _, err := os.Stat(found[0].ScratchDir); err != nil {
		t.Errorf("the directory was removed although its server could not be stopped: %v", err)
	}
	st.err = nil
	found, err = Sweep(context.Background(), Options{Root: root, Stop: st.stop, History: hist})
	if err != nil || len(found) != 1 || found[0].Action != reports.LeftoverRemoved || found[0].Recorded {
		t.Fatalf("second sweep: %+v %v, want removed, not recorded again", found, err)
	}
	if rs, _ := hist.List(context.Background(), "orders"); len(rs) != 1 {
		t.Errorf("history has %d records, want 1", len(rs))
	}
	if left, _ := os.ReadDir(root); len(left) != 0 {
		t.Errorf("left in the root: %v", left)
	}
}

// A drill that releases its lock normally (directory gone, lock file removed while held) is
// never mistaken for a dead one, and a lock file that never got its name is cleaned away.
func TestLockLifecycle(t *testing.T) {
	root := t.TempDir()
	l, err := Acquire(root, Record{DrillID: "0000abcd", Target: "orders", PID: os.Getpid(), StartedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Acquire(root, Record{DrillID: "0000abcd", Target: "orders"}); err == nil {
		t.Errorf("a second lock with the same drill id was granted")
	}
	if err := l.Update(func(r *Record) { r.Phase = "check:amcheck" }); err != nil {
		t.Fatal(err)
	}
	rec, err := readRecord(l.Path())
	if err != nil || rec.Phase != "check:amcheck" || rec.PID != os.Getpid() {
		t.Errorf("record %+v, %v: want the updated phase and the pid", rec, err)
	}
	if _, held, _, err := tryLock(l.Path()); !held || err != nil {
		t.Errorf("tryLock of a live drill's lock: held=%v err=%v, want held", held, err)
	}
	if err := l.Release(true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(l.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file still there after Release(true): %v", err)
	}
	// A temp lock file of a drill killed while naming it.
	stale := filepath.Join(root, tmpLockPrefix+"123")
	if err := os.WriteFile(stale, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	found, err := Sweep(context.Background(), Options{Root: root})
	if err != nil || len(found) != 0 {
		t.Errorf("sweep = %+v, %v; want nothing to report", found, err)
	}
	if left, _ := os.ReadDir(root); len(left) != 0 {
		t.Errorf("left in the root: %v", left)
	}
	if found, err := Sweep(context.Background(), Options{Root: filepath.Join(root, "missing")}); err != nil || found != nil {
		t.Errorf("sweep of a missing root = %v, %v; want nothing", found, err)
	}
}

func TestSweepEveryTarget(t *testing.T) {
	root := t.TempDir()
	fakeDrill(t, root, "orders", "0000abcd", killed)
	fakeDrill(t, root, "payments", "0000ffff", killed)
	found, err := Sweep(context.Background(), Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, lo := range found {
		targets = append(targets, lo.Target+":"+lo.Action)
	}
	if want := []string{"orders:removed", "payments:removed"}; !slices.Equal(targets, want) {
		t.Errorf("swept %v, want %v", targets, want)
	}
}

// A dry run reports what a sweep would remove and changes nothing: no server stopped, no
// directory or lock file removed, no interrupted record written (a later real sweep does it).
func TestSweepDryRun(t *testing.T) {
	tests := []struct {
		state       drillState
		includeKept bool
		wantAction  string
	}{
		{live, true, reports.LeftoverLeft},
		{killed, false, reports.LeftoverWouldRemove},
		{finished, false, reports.LeftoverWouldRemove},
		{keptAlive, false, reports.LeftoverLeft},
		{keptKilled, true, reports.LeftoverWouldRemove},
		{orphan, false, reports.LeftoverWouldRemove},
		{lockOnly, false, reports.LeftoverWouldRemove},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("state %d include kept %v", tt.state, tt.includeKept), func(t *testing.T) {
			root := t.TempDir()
			hist := history.New(t.TempDir())
			if l := fakeDrill(t, root, "orders", "0000abcd", tt.state); l != nil {
				defer l.Release(true)
			}
			stale := filepath.Join(root, tmpLockPrefix+"123")
			if err := os.WriteFile(stale, []byte("{"), 0o600); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadDir(root)
			st := &stopper{}
			found, err := Sweep(t.Context(), Options{Root: root, IncludeKept: tt.includeKept, DryRun: true, Stop: st.stop, History: hist})
			if err != nil {
				t.Fatal(err)
			}
			if len(found) != 1 || found[0].Action != tt.wantAction || found[0].Recorded || found[0].Error != "" {
				t.Fatalf("found %+v, want one leftover with action %s, not recorded", found, tt.wantAction)
			}
			if tt.state != lockOnly && found[0].Bytes < 64<<10 {
				t.Errorf("bytes = %d, want the size it would free", found[0].Bytes)
			}
			if len(st.calls) != 0 {
				t.Errorf("a dry run stopped %v", st.calls)
			}
			if after, _ := os.ReadDir(root); len(after) != len(before) {
				t.Errorf("a dry run changed the root: %v, was %v", after, before)
			}
			if rs, _ := hist.List(t.Context(), "orders"); len(rs) != 0 {
				t.Errorf("a dry run wrote history: %+v", rs)
			}
		})
	}
}

// --older-than leaves young leftovers alone, dated by the drill's start or, with no record,
// by the files' last change.
func TestSweepOlderThan(t *testing.T) {
	started := time.Date(2026, 11, 30, 4, 0, 0, 0, time.UTC) // fakeDrill's StartedAt
	tests := []struct {
		name       string
		state      drillState
		now        time.Time
		olderThan  time.Duration
		wantAction string
	}{
		{"no limit", killed, started.Add(time.Minute), 0, reports.LeftoverRemoved},
		{"dead, young", killed, started.Add(time.Hour), 2 * time.Hour, reports.LeftoverLeft},
		{"dead, old enough", killed, started.Add(3 * time.Hour), 2 * time.Hour, reports.LeftoverRemoved},
		{"kept with include-kept, young", keptAlive, started.Add(time.Hour), 2 * time.Hour, reports.LeftoverLeft},
		{"orphan, just made", orphan, time.Now(), 2 * time.Hour, reports.LeftoverLeft},
		{"orphan, old enough", orphan, time.Now().Add(3 * time.Hour), 2 * time.Hour, reports.LeftoverRemoved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			fakeDrill(t, root, "orders", "0000abcd", tt.state)
			found, err := Sweep(t.Context(), Options{Root: root, IncludeKept: true, OlderThan: tt.olderThan, Now: func() time.Time { return tt.now }})
			if err != nil {
				t.Fatal(err)
			}
			if len(found) != 1 || found[0].Action != tt.wantAction {
				t.Fatalf("found %+v, want action %s", found, tt.wantAction)
			}
			_, statErr := os.Stat(found[0].ScratchDir)
			if gone := errors.Is(statErr, os.ErrNotExist); gone != (tt.wantAction == reports.LeftoverRemoved) {
				t.Errorf("directory gone = %v, want %v", gone, tt.wantAction == reports.LeftoverRemoved)
			}
			if tt.wantAction == reports.LeftoverLeft && found[0].Bytes < 64<<10 {
				t.Errorf("bytes = %d, want its size listed", found[0].Bytes)
			}
		})
	}
}
