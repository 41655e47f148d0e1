package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/firedrill/firedrill/reports"
)

// BaselineDirFor is where the amcheck baselines of a history directory are kept:
// amcheck-baselines next to it, as the auditor's audit-state is, so that the history directory
// holds drill results only.
func BaselineDirFor(historyDir string) string {
	return filepath.Join(filepath.Dir(filepath.Clean(historyDir)), "amcheck-baselines")
}

func (s *Store) baselinePath(target string) string {
	return filepath.Join(BaselineDirFor(s.Dir), target+".json")
}

// Baseline returns the target's last snapshot that passed a full drill; nil, nil: none yet.
func (s *Store) Baseline(_ context.Context, target string) (*reports.Baseline, error) {
	p := s.baselinePath(target)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("while reading the amcheck baseline %s: %w", p, err)
	}
	var out reports.Baseline
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("while reading the amcheck baseline %s: %w (delete it: the next drill runs in full and records a new one)", p, err)
	}
	if out.Target != target || out.Snapshot == "" || out.VerifiedAt.IsZero() {
		return nil, fmt.Errorf("while reading the amcheck baseline %s: it names target %q, snapshot %q, verified at %s (delete it: the next drill runs in full and records a new one)", p, out.Target, out.Snapshot, out.VerifiedAt)
	}
	return &out, nil
}

// SaveBaseline replaces the target's baseline atomically.
func (s *Store) SaveBaseline(_ context.Context, b *reports.Baseline) error {
	dir := BaselineDirFor(s.Dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("while creating the amcheck baseline directory %s: %w", dir, err)
	}
	data, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("while encoding the amcheck baseline: %w", err)
	}
	if err := writeAtomic(s.baselinePath(b.Target), data); err != nil {
		return fmt.Errorf("while writing the amcheck baseline: %w", err)
	}
	return nil
}
