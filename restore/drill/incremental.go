package drill

import (
	"context"
	"fmt"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/engine/postgres"
)

// Baselines keeps, per target, the last snapshot that passed a full drill and its data files'
// SHA-256s: what an incremental drill (checks.amcheck.mode: incremental) compares with.
type Baselines interface {
	// Baseline returns the target's baseline; nil, nil: none yet.
	Baseline(ctx context.Context, target string) (*reports.Baseline, error)
	SaveBaseline(ctx context.Context, b *reports.Baseline) error
}

// scope decides how much of the copy amcheck reads. In incremental mode it compares the copy's
// files (hashed while cloning, matched against the snapshot's manifest) with the baseline's;
// it runs in full, and says why, when there is nothing sound to lean on.
func (r *run) scope(ctx context.Context) (*checks.Incremental, *reports.Verification) {
	cfg, cp := r.o.Checks.Amcheck, r.copy
	if !cfg.On() {
		return nil, nil
	}
	full := func(reason string) (*checks.Incremental, *reports.Verification) {
		v := &reports.Verification{Mode: checks.AmcheckFull, Reason: reason}
		if cp != nil && cp.FileHashes != nil {
			v.DataFiles = len(cp.FileHashes)
		}
		return nil, v
	}
	if !cfg.Incremental() {
		return full("")
	}
	if cp == nil || cp.FileHashes == nil {
		return full("the backup's source keeps no per-file hashes to compare (incremental needs a local snapshot's manifest)")
	}
	if r.d.Baselines == nil {
		return full("no place to keep a baseline (history.dir)")
	}
	b, err := r.d.Baselines.Baseline(ctx, r.o.Target)
	switch {
	case err != nil:
		return full(err.Error())
	case b == nil:
		return full("no earlier snapshot of this target has passed a full drill")
	}
	if age := r.start.Sub(b.VerifiedAt); age >= cfg.FullAfter() {
		return full(fmt.Sprintf("the last full drill (%s, snapshot %s) is %s old; checks.amcheck.fullEvery is %s",
			b.Drill, b.Snapshot, checks.ShortDuration(age.Round(time.Minute)), checks.ShortDuration(cfg.FullAfter())))
	}
	if r.replay == nil {
		reason := "what WAL replay rewrites in the copy was not listed"
		if r.replayErr != nil {
			reason = "could not list what WAL replay rewrites in the copy: " + r.replayErr.Error()
		}
		return full(reason)
	}
	inc := &checks.Incremental{BaselineSnapshot: b.Snapshot, BaselineDrill: b.Drill, BaselineAt: b.VerifiedAt,
		Unchanged: map[string]bool{}, Files: len(cp.FileHashes)}
	replayed := 0
	for p, h := range cp.FileHashes {
		switch {
		case b.Files[p] != h:
		case r.replay.Touches(p):
			// The snapshot's bytes are the baseline's, but recovery rewrote pages of it.
			replayed++
		default:
			inc.Unchanged[p] = true
		}
	}
	at := b.VerifiedAt.UTC()
	return inc, &reports.Verification{Mode: checks.AmcheckIncremental, BaselineSnapshot: b.Snapshot, BaselineDrill: b.Drill,
		BaselineAt: &at, DataFiles: len(cp.FileHashes), ChangedFiles: len(cp.FileHashes) - len(inc.Unchanged), ReplayedFiles: replayed}
}

// replayTouches lists what WAL replay will rewrite in the copy, with the host's pg_waldump of
// the copy's major version.
func (r *run) replayTouches(ctx context.Context, major string) (*postgres.ReplayTouches, error) {
	bin, err := postgres.FindBinDir(major, r.o.Runtime.BinDir)
	if err != nil {
		return nil, fmt.Errorf("no pg_waldump of PostgreSQL %s here: %w", major, err)
	}
	return postgres.WALReplayTouches(ctx, bin, r.copy.DataDir, r.copy.Files[postgres.BackupLabelFile])
}

// recordBaseline makes this drill the target's baseline (incremental mode) when it read everything and proved the
// copy sound: amcheck passed in full and no other integrity finding (the manifest, the
// checksums of the stopped copy) failed or could not run; a missed RTO or stale data say
// nothing of the pages.
func (r *run) recordBaseline(ctx context.Context) {
	v, cp := r.res.Verification, r.copy
	// Only a target in incremental mode keeps a baseline: others write nothing for it.
	if !r.o.Checks.Amcheck.Incremental() || v == nil || v.Mode != checks.AmcheckFull || cp == nil || cp.FileHashes == nil || r.d.Baselines == nil ||
		r.o.Keep || r.res.Snapshot == nil || r.res.Interrupted || r.res.Error != "" {
		return
	}
	amcheck := false
	for _, f := range r.res.Checks {
		switch {
		case f.Check == checks.AmcheckName:
			amcheck = f.Status == checks.Pass
		case f.Check == RTOName || f.Check == checks.FreshnessName:
		case f.Status == checks.Fail || f.Status == checks.Error:
			return
		}
	}
	if !amcheck {
		return
	}
	b := &reports.Baseline{Target: r.o.Target, Snapshot: r.res.Snapshot.ID, Drill: r.res.ID, VerifiedAt: r.start.UTC(), Files: cp.FileHashes}
	if err := r.d.Baselines.SaveBaseline(ctx, b); err != nil {
		r.res.Notes = append(r.res.Notes, "could not record this drill as the amcheck baseline: "+err.Error())
		return
	}
	v.BaselineRecorded = true
}
