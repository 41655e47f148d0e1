package scratch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
)

// Recorder keeps drill results (reports/history.Store).
type Recorder interface {
	Save(ctx context.Context, r *reports.DrillResult) (string, error)
}

// Options is one sweep of a scratch root.
type Options struct {
	Root string
	// Targets limits the sweep to these targets' drills; empty: every target's.
	Targets []string
	// IncludeKept also stops and removes --keep'd throwaways (gc --include-kept); without it
	// they are listed and left alone.
	IncludeKept bool
	// Stop stops whatever a dead drill left running on its scratch directory (the runtime's
	// leftover cleanup); it must not remove the directory.
	Stop func(ctx context.Context, dir string) ([]string, error)
	// History receives the interrupted record of a drill that died without one; nil: none.
	History Recorder
	// By names the sweeper in the interrupted record ("drill 1a2b3c4d", "firedrill gc").
	By string
	// OlderThan leaves alone the leftovers of drills that started less than this long ago
	// (without a record: whose files changed less than this long ago); 0: any age. The lock
	// already proves a drill dead; this is for a gc that keeps young leftovers on purpose.
	OlderThan time.Duration
	// DryRun lists what would be removed (Action would-remove): it stops, removes and
	// records nothing.
	DryRun bool
	// Now is the clock OlderThan is measured with; nil: time.Now.
	Now func() time.Time
}

// Sweep finds the drills' scratch directories under the root and removes dead drills' (and,
// with IncludeKept, kept ones'; with OlderThan, only those old enough), after stopping what
// runs on them; a dry run only says what it would remove. It returns every directory
// it found, with what it did; the error is only for a root it could not read. An entry whose
// removal failed has Action failed and says why; its lock file stays for the next sweep.
func Sweep(ctx context.Context, o Options) ([]reports.Leftover, error) {
	entries, err := os.ReadDir(o.Root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("while reading scratch root %s: %w", o.Root, err)
	}
	type item struct {
		target, id string
		hasLock    bool
		hasDir     bool
	}
	items := map[string]*item{}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, tmpLockPrefix) {
			if !o.DryRun {
				removeStaleTemp(filepath.Join(o.Root, name))
			}
			continue
		}
		target, id, isLock, ok := parseName(name)
		if !ok || (len(o.Targets) > 0 && !slices.Contains(o.Targets, target)) {
			continue
		}
		if !isLock && !e.IsDir() {
			continue
		}
		key := target + "\x00" + id
		it := items[key]
		if it == nil {
			it = &item{target: target, id: id}
			items[key] = it
		}
		if isLock {
			it.hasLock = true
		} else {
			it.hasDir = true
		}
	}
	var out []reports.Leftover
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		lo, ok := o.sweepOne(ctx, it.target, it.id, it.hasLock, it.hasDir)
		if ok {
			out = append(out, lo)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Target != out[j].Target {
			return out[i].Target < out[j].Target
		}
		return out[i].ScratchDir < out[j].ScratchDir
	})
	return out, nil
}

// sweepOne handles one drill's directory and lock file; ok is false when there was nothing to
// report (the drill finished while we looked).
func (o Options) sweepOne(ctx context.Context, target, id string, hasLock, hasDir bool) (reports.Leftover, bool) {
	dir := filepath.Join(o.Root, DirName(target, id))
	lockPath := filepath.Join(o.Root, lockName(target, id))
	lo := reports.Leftover{ScratchDir: dir, DrillID: id, Target: target}
	if !hasLock {
		// The lock file is made before the directory: check again, in case we listed the
		// root while a drill was between the two.
		if _, err := os.Lstat(lockPath); err == nil {
			hasLock = true
		}
	}
	if !hasLock {
		if _, err := os.Lstat(dir); err != nil {
			return lo, false
		}
		lo.State = reports.LeftoverOrphan
		if o.young(time.Time{}, dir) {
			lo.Action, lo.Bytes = reports.LeftoverLeft, diskBytes(dir)
			return lo, true
		}
		o.remove(ctx, &lo, dir)
		return lo, true
	}
	f, held, gone, err := tryLock(lockPath)
	switch {
	case gone:
		return lo, false
	case held:
		lo.State, lo.Action = reports.LeftoverLive, reports.LeftoverLeft
		if rec, err := readRecord(lockPath); err == nil {
			describe(&lo, rec)
		}
		if _, err := os.Lstat(dir); err == nil {
			lo.Bytes = diskBytes(dir)
		}
		return lo, true
	case err != nil:
		lo.State, lo.Action, lo.Error = reports.LeftoverDead, reports.LeftoverFailed, err.Error()
		return lo, true
	}
	defer f.Close()
	rec, rerr := readRecord(lockPath)
	if rerr != nil {
		// A lock file cut short (the drill died while writing it): still a dead drill's.
		rec = Record{DrillID: id, Target: target}
	}
	describe(&lo, rec)
	lo.State = reports.LeftoverDead
	if rec.Kept {
		lo.State = reports.LeftoverKept
	}
	// A drill that died before finishing gets its history record, once, kept or not.
	if rerr == nil && rec.FinishedAt == nil && !rec.Recorded && o.History != nil && !o.DryRun {
		if err := o.record(ctx, rec); err != nil {
			lo.Error = err.Error()
		} else {
			rec.Recorded, lo.Recorded = true, true
			_ = writeRecord(f, rec)
		}
	}
	if (rec.Kept && !o.IncludeKept) || o.young(rec.StartedAt, lockPath, dir) {
		lo.Action = reports.LeftoverLeft
		if hasDir {
			lo.Bytes = diskBytes(dir)
		}
		return lo, true
	}
	if !o.remove(ctx, &lo, dir) {
		return lo, true
	}
	if err := os.Remove(lockPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		lo.Action, lo.Error = reports.LeftoverFailed, fmt.Sprintf("while removing lock file %s: %v", lockPath, err)
	}
	return lo, true
}

// young reports whether a leftover is younger than o.OlderThan: by its drill's start, or,
// when that is unknown, by the newest change to its files.
func (o Options) young(started time.Time, paths ...string) bool {
	if o.OlderThan <= 0 {
		return false
	}
	if started.IsZero() {
		for _, p := range paths {
			if fi, err := os.Lstat(p); err == nil && fi.ModTime().After(started) {
				started = fi.ModTime()
			}
		}
		if started.IsZero() {
			return false
		}
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	return now().Sub(started) < o.OlderThan
}

// remove stops what runs on dir and removes it; it reports whether that worked. A dry run
// only says it would (and reports false: the lock file stays too).
func (o Options) remove(ctx context.Context, lo *reports.Leftover, dir string) bool {
	if o.DryRun {
		if _, err := os.Lstat(dir); err == nil {
			lo.Bytes = diskBytes(dir)
		}
		lo.Action = reports.LeftoverWouldRemove
		return false
	}
	if _, err := os.Lstat(dir); err == nil {
		lo.Bytes = diskBytes(dir)
		if o.Stop != nil {
			stopped, err := o.Stop(ctx, dir)
			lo.Stopped = stopped
			if err != nil {
				lo.Action, lo.Error = reports.LeftoverFailed, fmt.Sprintf("while stopping what runs on %s: %v", dir, err)
				return false
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			lo.Action, lo.Error = reports.LeftoverFailed, fmt.Sprintf("while removing %s: %v", dir, err)
			return false
		}
	}
	lo.Action = reports.LeftoverRemoved
	return true
}

// record writes the history record of a drill that died without writing its own.
func (o Options) record(ctx context.Context, rec Record) error {
	phase := rec.Phase
	if phase == "" {
		phase = "(before its first phase)"
	}
	by := o.By
	if by == "" {
		by = "a later sweep"
	}
	r := &reports.DrillResult{
		SchemaVersion: reports.SchemaVersion, ID: rec.DrillID, Target: rec.Target, Engine: rec.Engine,
		StartedAt: rec.StartedAt.UTC(), Status: reports.StatusError, Interrupted: true,
		Error: fmt.Sprintf("interrupted: firedrill (pid %d) ended in phase %s without finishing the drill (killed or crashed); %s found what it left in %s",
			rec.PID, phase, by, rec.ScratchDir),
		Phases: []reports.Phase{}, Checks: []checks.Finding{},
	}
	if rec.SnapshotID != "" {
		r.Snapshot = &reports.SnapshotRef{ID: rec.SnapshotID}
		if rec.SnapshotTakenAt != nil {
			r.Snapshot.TakenAt = rec.SnapshotTakenAt.UTC()
			r.Snapshot.AgeSeconds = rec.StartedAt.Sub(*rec.SnapshotTakenAt).Seconds()
		}
	}
	if _, err := o.History.Save(context.WithoutCancel(ctx), r); err != nil {
		return fmt.Errorf("while recording dead drill %s as interrupted: %w", rec.DrillID, err)
	}
	return nil
}

func describe(lo *reports.Leftover, rec Record) {
	if !rec.StartedAt.IsZero() {
		t := rec.StartedAt.UTC()
		lo.StartedAt = &t
	}
	lo.PID, lo.Phase, lo.Kept = rec.PID, rec.Phase, rec.Kept
}

// removeStaleTemp removes a lock file that never got its name (its drill died between the two
// steps), unless a live drill holds it.
func removeStaleTemp(path string) {
	f, held, gone, err := tryLock(path)
	if held || gone || err != nil {
		return
	}
	defer f.Close()
	_ = os.Remove(path)
}

// diskBytes is how much disk dir takes (allocated blocks, as du counts them).
func diskBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			n += allocated(fi)
		}
		return nil
	})
	return n
}

// allocated is the disk space a file takes (its size, when the file system does not say).
func allocated(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}
