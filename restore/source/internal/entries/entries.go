// Package entries lists a directory whose entries are backups, one per file or subdirectory
// (the dump and files sources): which names can be backups, each described by its source,
// newest first.
package entries

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/firedrill/firedrill/restore/snapshot"
)

// SidecarSuffix names a backup's checksum file: sha256sum's output for it. A sidecar is never
// a backup itself.
const SidecarSuffix = ".sha256"

// Dir is a directory of backups.
type Dir struct {
	Path string
	// Pattern is a glob on entry names; empty: every entry.
	Pattern string
	// Plural and One name the backups in messages ("dumps" and "dump").
	Plural, One string
	// Describe reads one entry; an error means it is not a backup (a stray file).
	Describe func(name string) (*snapshot.Metadata, error)
	// Skip, when set, hears each entry Describe refused.
	Skip func(name string, err error)
}

// Matches reports whether name can be a backup: not hidden, not a sidecar, matching Pattern.
func (d Dir) Matches(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasSuffix(name, SidecarSuffix) {
		return false
	}
	pattern := d.Pattern
	if pattern == "" {
		pattern = "*"
	}
	ok, _ := filepath.Match(pattern, name)
	return ok
}

// List returns the directory's backups, newest (by TakenAt) first.
func (d Dir) List(ctx context.Context) ([]snapshot.Metadata, error) {
	names, err := os.ReadDir(d.Path)
	if err != nil {
		return nil, fmt.Errorf("while listing %s in %s: %w", d.Plural, d.Path, err)
	}
	var out []snapshot.Metadata
	for _, e := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !d.Matches(e.Name()) {
			continue
		}
		m, err := d.Describe(e.Name())
		if err != nil {
			if d.Skip != nil {
				d.Skip(e.Name(), err)
			}
			continue // not a backup (a stray file or directory): nothing to restore
		}
		out = append(out, *m)
	}
	snapshot.SortNewestFirst(out)
	return out, nil
}

// Get returns the backup called id (its name in the directory); snapshot.ErrNotFound for a
// name that is not one of its entries or not a backup.
func (d Dir) Get(id string) (*snapshot.Metadata, error) {
	if id == "" || strings.ContainsRune(id, '/') || id == "." || id == ".." || !d.Matches(id) {
		return nil, fmt.Errorf("%w: no %s %q in %s", snapshot.ErrNotFound, d.One, id, d.Path)
	}
	m, err := d.Describe(id)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", snapshot.ErrNotFound, err)
	}
	return m, nil
}
