package local

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/firedrill/firedrill/restore/engine"
	"github.com/firedrill/firedrill/restore/snapshot"
)

// Layout of a snapshot folder.
const (
	metaFile     = "meta.json"
	manifestFile = "manifest.sha256"
	dataDir      = "data"
	externalDir  = "external"
	filesDir     = "files"
	partialPfx   = ".partial-"
	lockFile     = ".lock"
	// DriverName is recorded in snapshot metadata.
	DriverName = "local"
)

// ErrBusy means another snapshot of the same repository is being taken.
var ErrBusy = errors.New("repository is busy")

// Repository is one target's snapshot repository: a directory of snapshot folders.
type Repository struct {
	Dir string
	// Target, when set, is the target whose repository this is: a snapshot whose metadata names
	// another target is foreign, never listed as complete and never restored.
	Target string
	// Parallel is how many files are copied at once.
	Parallel int
	// Fsync makes snapshot files durable before the snapshot counts as complete.
	Fsync bool
	Now   func() time.Time
}

// New returns a repository rooted at dir.
func New(dir string, parallel int) *Repository {
	return &Repository{Dir: dir, Parallel: parallel, Fsync: true, Now: time.Now}
}

// NewForTarget returns target's repository rooted at dir: snapshots of other targets in it are
// foreign.
func NewForTarget(dir, target string, parallel int) *Repository {
	r := New(dir, parallel)
	r.Target = target
	return r
}

// CreateRequest describes a snapshot to take.
type CreateRequest struct {
	Target  string
	Engine  string
	Mode    string
	BatchID string
	// DataDir is the live data directory to copy.
	DataDir string
	// Freezer makes the copy consistent; Close is called on every path.
	Freezer engine.Freezer
	// Rule says which paths of the data directory to leave out.
	Rule engine.CopyRule
	// Backup, when set, is the engine's own backup tool (engine.Opened.Backup): it writes the
	// copy into the snapshot's data directory itself, and Freezer is only closed, never
	// frozen; Rule is not used.
	Backup func(ctx context.Context, dest string) (*engine.Frozen, error)
	// Attributes are engine facts recorded with the snapshot.
	Attributes map[string]string
	// Status is told what the copy is doing (may be nil).
	Status func(string)
}

// release closes the freezer after a failed snapshot and joins what closing returned into err:
// a failed backup stop or unlock leaves the database in backup mode or locked, which the caller
// must hear about. It closes with a context that survives ctx's cancellation, so an interrupted
// snapshot still releases the database.
func release(ctx context.Context, f engine.Freezer, err error) error {
	return engine.CloseAfter(context.WithoutCancel(ctx), f, err)
}

// Create takes a snapshot. On any failure or cancellation the freezer is released and the
// partial snapshot removed; the returned error says which step failed.
func (r *Repository) Create(ctx context.Context, req CreateRequest) (_ *snapshot.Metadata, err error) {
	status := req.Status
	if status == nil {
		status = func(string) {}
	}
	if req.Rule == nil {
		req.Rule = func(string, bool) engine.CopyAction { return engine.Copy }
	}
	if fi, err := os.Stat(req.DataDir); err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return nil, release(ctx, req.Freezer, fmt.Errorf("while checking data directory %s: %w", req.DataDir, err))
	}
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		return nil, release(ctx, req.Freezer, fmt.Errorf("while creating repository %s: %w", r.Dir, err))
	}
	unlock, err := r.lock()
	if err != nil {
		return nil, release(ctx, req.Freezer, err)
	}
	defer unlock()
	r.removeStalePartials()

	started := r.now()
	id := newID(started)
	staging := filepath.Join(r.Dir, partialPfx+id)
	defer func() {
		if err != nil {
			err = release(ctx, req.Freezer, err)
			_ = os.RemoveAll(staging)
		}
	}()
	if err := os.MkdirAll(filepath.Join(staging, dataDir), 0o700); err != nil {
		return nil, fmt.Errorf("while creating %s: %w", staging, err)
	}

	var results []copyResult
	var frozen *engine.Frozen
	var links []snapshot.Link
	if req.Backup != nil {
		results, frozen, err = r.engineBackup(ctx, req, staging, status)
	} else {
		results, frozen, links, err = r.fileCopy(ctx, req, staging, status)
	}
	if err != nil {
		return nil, err
	}
	if err := req.Freezer.Close(ctx); err != nil {
		return nil, err
	}

	// Files the engine returned, byte for byte.
	if err := os.MkdirAll(filepath.Join(staging, filesDir), 0o700); err != nil {
		return nil, fmt.Errorf("while creating %s: %w", filesDir, err)
	}
	for name, content := range frozen.Files {
		p := filepath.Join(staging, filesDir, name)
		if err := writeFileSync(p, content); err != nil {
			return nil, fmt.Errorf("while saving %s: %w", name, err)
		}
		sum := sha256.Sum256(content)
		results = append(results, copyResult{rel: filesDir + "/" + name, sha256: hex.EncodeToString(sum[:]), size: int64(len(content))})
	}

	status("writing manifest and metadata")
	var total int64
	var manifest strings.Builder
	var entries []copyResult
	for _, res := range results {
		if res.missing || res.sha256 == "" {
			continue
		}
		entries = append(entries, res)
		total += res.size
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].rel < entries[j].rel })
	for _, e := range entries {
		fmt.Fprintf(&manifest, "%s  %s\n", e.sha256, e.rel)
	}
	if err := writeFileSync(filepath.Join(staging, manifestFile), []byte(manifest.String())); err != nil {
		return nil, fmt.Errorf("while writing the manifest: %w", err)
	}
	msum := sha256.Sum256([]byte(manifest.String()))
	attrs := map[string]string{}
	for k, v := range req.Attributes {
		attrs[k] = v
	}
	for k, v := range frozen.Attributes {
		attrs[k] = v
	}
	meta := snapshot.Metadata{
		ID: id, Target: req.Target, Engine: req.Engine, Mode: req.Mode, Driver: DriverName, BatchID: req.BatchID,
		EngineVersion: attrs["serverVersion"],
		TakenAt:       frozen.EndedAt.UTC(), StartedAt: started.UTC(), FinishedAt: r.now().UTC(),
		FrozenSeconds: frozen.Duration().Seconds(),
		SizeBytes:     total, Files: len(entries),
		StartLSN: attrs["startLSN"], StopLSN: attrs["stopLSN"],
		Attributes:     attrs,
		Links:          links,
		ManifestSHA256: hex.EncodeToString(msum[:]),
	}
	fmt.Sscan(attrs["timeline"], &meta.Timeline)
	b, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("while encoding metadata: %w", err)
	}
	// Metadata last and atomically, then the folder becomes visible under its id.
	tmp := filepath.Join(staging, metaFile+".tmp")
	if err := writeFileSync(tmp, b); err != nil {
		return nil, fmt.Errorf("while writing metadata: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(staging, metaFile)); err != nil {
		return nil, fmt.Errorf("while writing metadata: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("while finishing the snapshot: %w", err)
	}
	if err := os.Rename(staging, filepath.Join(r.Dir, id)); err != nil {
		return nil, fmt.Errorf("while publishing snapshot %s: %w", id, err)
	}
	syncDir(r.Dir)
	meta.Status = snapshot.StatusComplete
	return &meta, nil
}

// fileCopy freezes the database (or puts it in backup mode), copies the data directory by
// req.Rule, thaws, and copies what the engine needs from after the thaw (WAL).
func (r *Repository) fileCopy(ctx context.Context, req CreateRequest, staging string, status func(string)) ([]copyResult, *engine.Frozen, []snapshot.Link, error) {
	status("starting backup mode")
	if err := req.Freezer.Freeze(ctx); err != nil {
		return nil, nil, nil, err
	}
	status("copying the data directory")
	plan, err := planCopy(req.DataDir, filepath.Join(staging, dataDir), filepath.Join(staging, externalDir), req.Rule)
	if err != nil {
		return nil, nil, nil, err
	}
	cp := newCopier(r.Parallel, r.Fsync)
	stop := reportProgress(ctx, cp, plan.bytes, "copying the data directory", status)
	results, err := cp.run(ctx, plan.jobs)
	stop()
	if err != nil {
		return nil, nil, nil, copyErr("while copying the data directory", r.Dir, err)
	}
	status("ending backup mode")
	frozen, err := req.Freezer.Thaw(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	// The WAL written during the backup, while the engine still holds it.
	var after []copyJob
	for _, rel := range frozen.AfterThaw {
		src := filepath.Join(req.DataDir, filepath.FromSlash(rel))
		fi, err := os.Stat(src)
		optional := strings.HasSuffix(rel, ".history")
		if err != nil {
			if optional {
				continue
			}
			return nil, nil, nil, fmt.Errorf("while copying WAL needed by the backup: %s is gone from %s (was it recycled? keep max_replication_slots > 0 so firedrill can reserve WAL): %w", rel, req.DataDir, err)
		}
		after = append(after, copyJob{rel: plan.manifestRel(rel), src: src, dst: plan.dest(rel), mode: fi.Mode(), size: fi.Size()})
	}
	status(fmt.Sprintf("copying %d WAL files", len(after)))
	more, err := cp.run(ctx, after)
	if err != nil {
		return nil, nil, nil, copyErr("while copying the backup's WAL", r.Dir, err)
	}
	results = append(results, more...)
	return results, frozen, plan.links, nil
}

// engineBackup runs the engine's own backup tool into the snapshot's data directory and
// checksums what it wrote for the manifest.
func (r *Repository) engineBackup(ctx context.Context, req CreateRequest, staging string, status func(string)) ([]copyResult, *engine.Frozen, error) {
	dest := filepath.Join(staging, dataDir)
	// The tool makes its target directory itself (mariadb-backup refuses a non-empty one).
	if err := os.Remove(dest); err != nil && !os.IsNotExist(err) {
		return nil, nil, fmt.Errorf("while preparing %s for the backup: %w", dest, err)
	}
	status("backing up with the engine's backup tool")
	frozen, err := req.Backup(ctx, dest)
	if err != nil {
		return nil, nil, copyErr("while backing up "+req.Target, r.Dir, err)
	}
	var jobs []copyJob
	var total int64
	err = filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("while reading the backup: %w", err)
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dest, p)
		if !d.Type().IsRegular() {
			return fmt.Errorf("while reading the backup: %s is not a regular file", rel)
		}
		fi, err := d.Info()
		if err != nil {
			return fmt.Errorf("while reading the backup: %w", err)
		}
		jobs = append(jobs, copyJob{rel: dataDir + "/" + filepath.ToSlash(rel), src: p, size: fi.Size()})
		total += fi.Size()
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	cp := newCopier(r.Parallel, r.Fsync)
	stop := reportProgress(ctx, cp, total, "checksumming the backup", status)
	results, err := cp.run(ctx, jobs)
	stop()
	if err != nil {
		return nil, nil, fmt.Errorf("while checksumming the backup: %w", err)
	}
	return results, frozen, nil
}

// copyErr wraps a copy error; a full disk names the directory whose disk is full.
func copyErr(what, dest string, err error) error {
	if isNoSpace(err) {
		return fmt.Errorf("%s: the disk holding %s is full (free space there, or point it elsewhere): %w", what, dest, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// List returns the repository's complete snapshots of its target, newest first. A missing
// repository has none. Damaged and foreign snapshots are left out: ListAll reports them.
func (r *Repository) List(ctx context.Context) ([]snapshot.Metadata, error) {
	all, err := r.ListAll(ctx)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, m := range all {
		if m.Status == snapshot.StatusComplete {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// ListAll returns every snapshot folder of the repository, newest first, each with its status:
// complete, damaged (metadata missing, unreadable or naming another id) or foreign (metadata
// naming another target), and the reason.
//
// What is a snapshot folder: a folder with a meta.json, or one named like a snapshot id. A
// snapshot being taken lives in a hidden .partial-<id> folder (as does one being deleted) and
// becomes visible under its id only with its metadata inside, in one rename: a .partial folder is
// never listed (one whose taker died is removed by the next snapshot), and an id folder without
// metadata was never published by firedrill: it is damaged. Other folders (lost+found) are not
// snapshots. ListAll takes no lock: probing the lock would make a concurrent snapshot fail as busy.
func (r *Repository) ListAll(ctx context.Context) ([]snapshot.Metadata, error) {
	entries, err := os.ReadDir(r.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("while listing snapshot repository %s: %w", r.Dir, err)
	}
	var out []snapshot.Metadata
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		m, err := r.read(e.Name())
		var de *snapshot.DamagedError
		switch {
		case err == nil:
			out = append(out, *m)
		case errors.As(err, &de):
			out = append(out, de.Snapshot)
		case errors.Is(err, fs.ErrNotExist) && !looksLikeID(e.Name()):
			// Not a snapshot folder (no metadata, not named like one).
		default:
			return nil, fmt.Errorf("while listing snapshot repository %s: %w", r.Dir, err)
		}
	}
	snapshot.SortNewestFirst(out)
	return out, nil
}

// Get returns one complete snapshot of the repository's target by id. A damaged or foreign one
// is a *snapshot.DamagedError (which is also snapshot.ErrNotFound).
func (r *Repository) Get(_ context.Context, id string) (*snapshot.Metadata, error) {
	if id == "" || strings.ContainsAny(id, `/\`) || strings.HasPrefix(id, ".") {
		return nil, fmt.Errorf("%w: invalid id %q", snapshot.ErrNotFound, id)
	}
	m, err := r.read(id)
	var de *snapshot.DamagedError
	if errors.As(err, &de) {
		return nil, fmt.Errorf("%w (in %s)", err, r.Dir)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s in %s (%v)", snapshot.ErrNotFound, id, r.Dir, err)
	}
	return m, nil
}

// read reads the metadata of folder id. A folder that is there but is no restorable snapshot of
// the target is a *snapshot.DamagedError; a folder (or meta.json of a folder not named like an
// id) that is not there is fs.ErrNotExist.
func (r *Repository) read(id string) (*snapshot.Metadata, error) {
	dir := filepath.Join(r.Dir, id)
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory: %w", dir, fs.ErrNotExist)
	}
	damaged := func(status, format string, a ...any) error {
		m := snapshot.Metadata{ID: id, Driver: DriverName, Target: r.Target, Status: status, Reason: fmt.Sprintf(format, a...),
			TakenAt: estimateTime(id, fi.ModTime())}
		return &snapshot.DamagedError{Snapshot: m}
	}
	b, err := os.ReadFile(filepath.Join(dir, metaFile))
	switch {
	case errors.Is(err, fs.ErrNotExist) && !looksLikeID(id):
		return nil, err
	case errors.Is(err, fs.ErrNotExist):
		return nil, damaged(snapshot.StatusDamaged, "no %s: the folder was not published by a snapshot that completed", metaFile)
	case err != nil:
		return nil, damaged(snapshot.StatusDamaged, "%s cannot be read: %v", metaFile, err)
	}
	var m snapshot.Metadata
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, damaged(snapshot.StatusDamaged, "%s is not valid metadata (%d bytes): %v", metaFile, len(b), err)
	}
	m.Status, m.Reason = "", ""
	if m.ID != id {
		return nil, damaged(snapshot.StatusDamaged, "%s names snapshot %q, not the folder's", metaFile, m.ID)
	}
	if m.TakenAt.IsZero() || m.ManifestSHA256 == "" {
		return nil, damaged(snapshot.StatusDamaged, "%s is incomplete (no takenAt or manifestSha256)", metaFile)
	}
	if r.Target != "" && m.Target != r.Target {
		m.Status, m.Reason = snapshot.StatusForeign, fmt.Sprintf("%s names target %q, not %q: not a backup of %s", metaFile, m.Target, r.Target, r.Target)
		return nil, &snapshot.DamagedError{Snapshot: m}
	}
	if _, err := os.Stat(filepath.Join(dir, manifestFile)); err != nil {
		return nil, damaged(snapshot.StatusDamaged, "its %s cannot be read: %v", manifestFile, err)
	}
	m.Status = snapshot.StatusComplete
	return &m, nil
}

// idLayout is the time at the start of a snapshot id (newID).
const idLayout = "20060102T150405Z"

// idTime is the time a snapshot id names (when that snapshot was started).
func idTime(id string) (time.Time, bool) {
	if len(id) < len(idLayout) {
		return time.Time{}, false
	}
	t, err := time.Parse(idLayout, id[:len(idLayout)])
	return t, err == nil
}

// estimateTime places a snapshot whose metadata cannot be read among the others. Its id names
// the second it started, but the snapshot before it may have ended within that second; its
// folder was last changed when its metadata was written (it ended), later if someone changed it
// since. Snapshots of a repository are taken one at a time, so it started after the previous one
// ended and before the end of the second in its id: the folder's time, kept within that
// second, orders it after the previous snapshot and, unless the next one ended within the same
// second, before the next.
func estimateTime(id string, modTime time.Time) time.Time {
	t, ok := idTime(id)
	if !ok {
		return modTime.UTC()
	}
	end := t.Add(time.Second - time.Nanosecond)
	switch {
	case modTime.Before(t):
		return t
	case modTime.After(end):
		return end
	}
	return modTime.UTC()
}

// looksLikeID reports whether name has the form of a snapshot id: <time>-<6 hex digits>.
func looksLikeID(name string) bool {
	_, ok := idTime(name)
	rest, found := strings.CutPrefix(name[min(len(name), len(idLayout)):], "-")
	if !ok || !found || len(rest) != 6 {
		return false
	}
	_, err := hex.DecodeString(rest)
	return err == nil
}

// Delete removes a snapshot.
func (r *Repository) Delete(ctx context.Context, id string) error {
	if _, err := r.Get(ctx, id); err != nil {
		return err
	}
	unlock, err := r.lock()
	if err != nil {
		return err
	}
	defer unlock()
	// Hide it first so a concurrent List never sees a half-deleted snapshot.
	hidden := filepath.Join(r.Dir, partialPfx+"deleting-"+id)
	if err := os.Rename(filepath.Join(r.Dir, id), hidden); err != nil {
		return fmt.Errorf("while deleting snapshot %s: %w", id, err)
	}
	if err := os.RemoveAll(hidden); err != nil {
		return fmt.Errorf("while deleting snapshot %s: %w", id, err)
	}
	return nil
}

// Path returns the folder of snapshot id.
func (r *Repository) Path(id string) string { return filepath.Join(r.Dir, id) }

func (r *Repository) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

// lock takes the repository's exclusive lock; the kernel releases it if the process dies.
func (r *Repository) lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(r.Dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("while locking repository %s: %w", r.Dir, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: another firedrill holds %s", ErrBusy, filepath.Join(r.Dir, lockFile))
	}
	return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
}

// removeStalePartials deletes folders of snapshots whose taker died (the lock proves it).
func (r *Repository) removeStalePartials() {
	entries, _ := os.ReadDir(r.Dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), partialPfx) {
			_ = os.RemoveAll(filepath.Join(r.Dir, e.Name()))
		}
	}
}

func newID(t time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		_ = f.Sync()
		f.Close()
	}
}

// readManifest parses a manifest into path -> sha256.
func readManifest(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		sum, rel, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != 64 {
			return nil, fmt.Errorf("malformed manifest line %q", sc.Text())
		}
		out[rel] = sum
	}
	return out, sc.Err()
}

// reportProgress tells status how far a copy is, every half second, until stop is called.
func reportProgress(ctx context.Context, cp *copier, total int64, what string, status func(string)) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				n := cp.copied.Load()
				pct := 100.0
				if total > 0 {
					pct = float64(n) * 100 / float64(total)
				}
				status(fmt.Sprintf("%s: %d of %d MiB (%.0f%%)", what, n>>20, total>>20, pct))
			}
		}
	}()
	return func() { close(done) }
}
