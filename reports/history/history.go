// Package history keeps drill results on disk, one JSON file per drill under a directory per
// target, for reports and for the auditor's drill-recency check.
package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/firedrill/firedrill/reports"
)

// Store is a directory of drill results.
type Store struct {
	Dir string
}

// New returns a store rooted at dir.
func New(dir string) *Store { return &Store{Dir: dir} }

// Save writes a result atomically and returns its path.
func (s *Store) Save(_ context.Context, r *reports.DrillResult) (string, error) {
	dir := filepath.Join(s.Dir, r.Target)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("while creating history directory %s: %w", dir, err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", fmt.Errorf("while encoding drill result: %w", err)
	}
	name := r.StartedAt.UTC().Format("20060102T150405Z") + "-" + r.ID + ".json"
	p := filepath.Join(dir, name)
	if err := writeAtomic(p, append(b, '\n')); err != nil {
		return "", fmt.Errorf("while writing drill result: %w", err)
	}
	return p, nil
}

// writeAtomic writes data to p through a temporary file in its directory, synced, then
// renamed: a reader sees the old file or the new one, never part of one.
func writeAtomic(p string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}

// List returns a target's drill results, newest first.
func (s *Store) List(ctx context.Context, target string) ([]reports.DrillResult, error) {
	dir := filepath.Join(s.Dir, target)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("while reading drill history %s: %w", dir, err)
	}
	var out []reports.DrillResult
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("while reading drill result %s: %w", e.Name(), err)
		}
		var r reports.DrillResult
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("while reading drill result %s: %w", e.Name(), err)
		}
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].StartedAt.After(out[j].StartedAt) })
	return out, nil
}
