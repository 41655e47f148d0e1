package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/firedrill/firedrill/audit/policy"
)

// StateStore keeps what one audit saw for the next: the archiver's counters, so that failures
// are counted since the previous audit rather than since the statistics were last reset.
type StateStore interface {
	LoadWAL(ctx context.Context, target string) (*WALSample, error)
	SaveWAL(ctx context.Context, target string, s WALSample) error
}

// FileState is a directory with one small JSON file per target.
type FileState struct {
	Dir string
}

// NewFileState returns the state kept under dir.
func NewFileState(dir string) *FileState { return &FileState{Dir: dir} }

// StateDirFor is where the auditor keeps its state for a history directory: audit-state next
// to it (~/.local/state/firedrill/audit-state beside .../history by default).
func StateDirFor(historyDir string) string {
	return filepath.Join(filepath.Dir(filepath.Clean(historyDir)), "audit-state")
}

type stateFile struct {
	WAL *WALSample `json:"wal,omitempty"`
}

func (f *FileState) path(target string) string { return filepath.Join(f.Dir, target+".json") }

// LoadWAL returns the target's previous sample, nil when there is none.
func (f *FileState) LoadWAL(_ context.Context, target string) (*WALSample, error) {
	b, err := os.ReadFile(f.path(target))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("while reading the audit state %s: %w", f.path(target), err)
	}
	var s stateFile
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("while reading the audit state %s: %w", f.path(target), err)
	}
	return s.WAL, nil
}

// SaveWAL replaces the target's sample atomically.
func (f *FileState) SaveWAL(_ context.Context, target string, s WALSample) error {
	if err := os.MkdirAll(f.Dir, 0o700); err != nil {
		return fmt.Errorf("while creating the audit state directory %s: %w", f.Dir, err)
	}
	b, err := json.MarshalIndent(stateFile{WAL: &s}, "", "  ")
	if err != nil {
		return fmt.Errorf("while encoding the audit state: %w", err)
	}
	tmp, err := os.CreateTemp(f.Dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("while writing the audit state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("while writing the audit state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("while writing the audit state: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.path(target)); err != nil {
		return fmt.Errorf("while writing the audit state: %w", err)
	}
	return nil
}

// walArchive builds the source listing a target's WAL archive (audit.wal.archive), and says
// where it is; nil when none is configured.
func (a *Auditor) walArchive(ctx context.Context, cfg *policy.Config, t *policy.Target) (Source, string, error) {
	ar := t.Audit.WAL.Archive
	if ar == nil {
		return nil, "", nil
	}
	if dir, ok := cfg.WALArchiveDir(t); ok {
		return &DirSource{Dir: dir, Match: "*"}, "directory " + dir, nil
	}
	l, ok := cfg.Location(ar.Location)
	if !ok || l.Kind != policy.LocationS3 { // validation prevents it
		return nil, ar.Location, fmt.Errorf("%w: audit.wal.archive.location %q is not an s3 or directory location", policy.ErrInvalid, ar.Location)
	}
	prefix := l.S3.Prefix + ar.Prefix
	where := fmt.Sprintf("s3://%s/%s at %s", l.S3.Bucket, prefix, s3Endpoint(l))
	api, err := a.s3(ctx, l)
	if err != nil {
		return nil, where, err
	}
	return &S3Source{Client: api, Bucket: l.S3.Bucket, Prefix: prefix, Match: "*"}, where, nil
}

// walHistory loads the previous sample and saves this one. Problems with the state do not fail
// the check (it falls back to counting since the statistics reset); they are evidence.
func (a *Auditor) walHistory(ctx context.Context, target string, st ArchiverState, now time.Time) (*WALSample, string) {
	if a.State == nil {
		return nil, ""
	}
	prev, err := a.State.LoadWAL(ctx, target)
	note := ""
	if err != nil {
		note = errLine(err)
		prev = nil
	}
	if err := a.State.SaveWAL(ctx, target, SampleOf(st, now)); err != nil && note == "" {
		note = errLine(err)
	}
	return prev, note
}
