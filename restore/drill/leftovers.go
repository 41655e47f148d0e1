package drill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/firedrill/firedrill/reports"
	dirscratch "github.com/firedrill/firedrill/restore/drill/scratch"
	"github.com/firedrill/firedrill/restore/runtime/local"
	"github.com/firedrill/firedrill/restore/snapshot"
)

// scratchRoot is where a target's drills make their scratch directories.
func scratchRoot(dir string) string {
	if dir == "" {
		return os.TempDir()
	}
	return dir
}

// stopLeftover stops what a dead drill left on its scratch directory: the local process the
// scratch sweep always looks for, and the runtimes' own leftovers (a container) where a runtime
// can tell (nil runtimes are skipped).
func (d *Drill) stopLeftover(rts ...Runtime) func(ctx context.Context, dir string) ([]string, error) {
	stop := local.CleanupLeftover
	if d.StopLeftover != nil {
		stop = d.StopLeftover
	}
	var stoppers []LeftoverStopper
	for _, rt := range rts {
		if ls, ok := rt.(LeftoverStopper); ok {
			stoppers = append(stoppers, ls)
		}
	}
	if len(stoppers) == 0 {
		return stop
	}
	// The runtimes' leftovers (a container) go too, whatever the local sweep found.
	return func(ctx context.Context, dir string) ([]string, error) {
		stopped, err := stop(ctx, dir)
		errs := []error{err}
		for _, ls := range stoppers {
			more, rerr := ls.StopLeftover(ctx, dir)
			stopped = append(stopped, more...)
			errs = append(errs, rerr)
		}
		return stopped, errors.Join(errs...)
	}
}

// sweep removes what dead drills of o's target left in the scratch root (stopping any server
// still running there), records those drills as interrupted, and says so. Kept throwaways are
// left alone and listed.
func (d *Drill) sweep(ctx context.Context, o Options, id string, rt Runtime, log *slog.Logger) (cleaned, kept []reports.Leftover) {
	found, err := dirscratch.Sweep(ctx, dirscratch.Options{
		Root: scratchRoot(o.Runtime.ScratchDir), Targets: []string{o.Target},
		Stop: d.stopLeftover(rt), History: d.History, By: "drill " + id,
	})
	if err != nil {
		log.Warn("could not look for dead drills' leftovers", "error", err)
	}
	if ts, ok := rt.(TargetSweeper); ok {
		// What outlived its scratch directory (a container whose directory a sweep removed).
		removed, err := ts.SweepTarget(ctx, o.Target, GCOptions{})
		if err != nil {
			log.Warn("could not remove dead drills' leftover containers", "error", err)
		}
		for _, what := range removed {
			log.Warn("removed a dead drill's leftover", "stopped", what)
		}
	}
	said := false
	for _, lo := range found {
		switch {
		case lo.Action == reports.LeftoverRemoved || lo.Action == reports.LeftoverFailed:
			cleaned = append(cleaned, lo)
		case lo.State == reports.LeftoverKept:
			kept = append(kept, lo)
			continue
		default:
			continue // a live drill of the same target: not ours to touch
		}
		if !said {
			d.Progress.Phase("cleanup")
			said = true
		}
		msg := LeftoverLine(lo)
		d.Progress.Status(msg)
		attrs := []any{"scratchDir", lo.ScratchDir, "deadDrill", lo.DrillID, "bytes", lo.Bytes, "state", lo.State}
		if lo.StartedAt != nil {
			attrs = append(attrs, "startedAt", *lo.StartedAt)
		}
		if len(lo.Stopped) > 0 {
			attrs = append(attrs, "stopped", lo.Stopped)
		}
		if lo.Action == reports.LeftoverFailed {
			log.Error("could not remove a dead drill's leftover", append(attrs, "error", lo.Error)...)
			continue
		}
		log.Warn("removed a dead drill's leftover", attrs...)
	}
	for _, lo := range kept {
		log.Info("left a kept throwaway alone (remove it with: firedrill gc --include-kept)", "scratchDir", lo.ScratchDir, "keptDrill", lo.DrillID)
	}
	return cleaned, kept
}

// LeftoverLine says in one line what was found and done.
func LeftoverLine(lo reports.Leftover) string {
	what := fmt.Sprintf("%s (%s drill %s, %s)", lo.ScratchDir, lo.State, lo.DrillID, reports.HumanBytes(lo.Bytes))
	switch lo.Action {
	case reports.LeftoverRemoved:
		return "removed " + what
	case reports.LeftoverFailed:
		return "could not remove " + what + ": " + lo.Error
	}
	return "left " + what
}

// acquireLock takes the lock on this drill's scratch directory before it exists: from here
// on, a sweep sees a live drill, and after a kill -9 a dead one with its record.
func (r *run) acquireLock(meta *snapshot.Metadata) error {
	root := scratchRoot(r.o.Runtime.ScratchDir)
	taken := meta.TakenAt.UTC()
	l, err := dirscratch.Acquire(root, dirscratch.Record{
		DrillID: r.res.ID, Target: r.o.Target, Engine: r.o.Engine, PID: os.Getpid(), StartedAt: r.res.StartedAt,
		Kept: r.o.Keep, ScratchDir: filepath.Join(root, dirscratch.DirName(r.o.Target, r.res.ID)),
		Phase: r.phase, SnapshotID: meta.ID, SnapshotTakenAt: &taken,
	})
	if err != nil {
		return fmt.Errorf("while locking the drill's scratch directory: %w", err)
	}
	r.lock = l
	return nil
}

// releaseLock gives up the lock when the drill returns: with the lock file when the scratch
// directory is gone; else (kept, or a removal that failed) marked finished, so that a sweep
// removes the directory later without recording the drill as interrupted.
func (r *run) releaseLock() error {
	if r.lock == nil {
		return nil
	}
	dir := filepath.Join(scratchRoot(r.o.Runtime.ScratchDir), dirscratch.DirName(r.o.Target, r.res.ID))
	if _, err := os.Lstat(dir); os.IsNotExist(err) {
		return r.lock.Release(true)
	}
	now := r.d.Now().UTC()
	uerr := r.lock.Update(func(rec *dirscratch.Record) { rec.FinishedAt = &now })
	return errors.Join(uerr, r.lock.Release(false))
}

// GCTarget is one target whose scratch root 'firedrill gc' sweeps.
type GCTarget struct {
	Name       string
	ScratchDir string
	// Runtime is the target's restore runtime: its own leftovers (containers) go too.
	Runtime RuntimeOptions
}

// GCOptions choose what 'firedrill gc' removes. The zero value is what a drill's own sweep
// does: every dead drill's leftovers, whatever their age, kept ones left alone.
type GCOptions struct {
	// IncludeKept also stops and removes what drills run with --keep left.
	IncludeKept bool
	// OlderThan leaves alone leftovers of drills younger than this; 0: any age. A scratch
	// directory's lock proves its drill dead, but a runtime's objects (Kubernetes) have no
	// lock: only their age tells a crashed drill from one still running elsewhere.
	OlderThan time.Duration
	// DryRun lists what would be removed; nothing is stopped, removed or recorded.
	DryRun bool
}

// SweptObject is one object a runtime removed (or, dry run, would remove) beyond the scratch
// directories: a container, a Kubernetes object.
type SweptObject struct {
	Runtime string `json:"runtime"`
	Target  string `json:"target"`
	// Object names it as its runtime does ("Pod firedrill-scratch/firedrill-1a2b3c4d").
	Object string `json:"object"`
	// Action is removed or would-remove (reports.Leftover*).
	Action string `json:"action"`
}

// GCResult is what a gc found and did.
type GCResult struct {
	// Leftovers are the scratch directories found, with what was done to each.
	Leftovers []reports.Leftover
	// Objects are the runtimes' objects removed (or, dry run, that would be).
	Objects []SweptObject
}

// GC sweeps the scratch roots of targets: dead drills' leftovers are stopped and removed (and
// their drills recorded as interrupted), live drills are listed, kept throwaways are listed or,
// with o.IncludeKept, stopped and removed too. Then each target's runtime removes what
// outlived its scratch directory. o.OlderThan and o.DryRun apply to both.
func (d *Drill) GC(ctx context.Context, targets []GCTarget, o GCOptions) (GCResult, error) {
	byRoot := map[string][]string{}
	rtsByRoot := map[string][]Runtime{}
	var roots []string
	var errs []error
	type sweeper struct {
		kind string
		ts   TargetSweeper
	}
	sweepers := map[string]sweeper{}
	for _, t := range targets {
		root := scratchRoot(t.ScratchDir)
		if _, ok := byRoot[root]; !ok {
			roots = append(roots, root)
		}
		if !slices.Contains(byRoot[root], t.Name) {
			byRoot[root] = append(byRoot[root], t.Name)
		}
		t.Runtime.Target = t.Name
		rt, err := d.runtime(ctx, t.Runtime)
		if err != nil {
			errs = append(errs, fmt.Errorf("while reaching target %s's restore runtime to remove its leftovers: %w", t.Name, err))
			continue
		}
		rtsByRoot[root] = append(rtsByRoot[root], rt)
		if ts, ok := rt.(TargetSweeper); ok {
			kind := t.Runtime.Kind
			if kind == "" {
				kind = "local"
			}
			sweepers[t.Name] = sweeper{kind: kind, ts: ts}
		}
	}
	var res GCResult
	for _, root := range roots {
		found, err := dirscratch.Sweep(ctx, dirscratch.Options{
			Root: root, Targets: byRoot[root], IncludeKept: o.IncludeKept, OlderThan: o.OlderThan, DryRun: o.DryRun, Now: d.Now,
			Stop: d.stopLeftover(rtsByRoot[root]...), History: d.History, By: "firedrill gc",
		})
		res.Leftovers = append(res.Leftovers, found...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	action := reports.LeftoverRemoved
	if o.DryRun {
		action = reports.LeftoverWouldRemove
	}
	// What outlived its scratch directory (a kept drill's container once gc removed the
	// directory, or a container whose directory a crash removed), and what has none
	// (Kubernetes objects).
	for _, name := range slices.Sorted(maps.Keys(sweepers)) {
		s := sweepers[name]
		removed, err := s.ts.SweepTarget(ctx, name, o)
		for _, what := range removed {
			res.Objects = append(res.Objects, SweptObject{Runtime: s.kind, Target: name, Object: what, Action: action})
			d.logger().Info("a dead drill's leftover", "target", name, "object", what, "action", action)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("while removing target %s's leftovers in its %s runtime: %w", name, s.kind, err))
		}
	}
	return res, errors.Join(errs...)
}

// logger is d.Log, or a logger that discards when none was given.
func (d *Drill) logger() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log
}
