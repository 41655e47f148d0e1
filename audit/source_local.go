package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/firedrill/firedrill/restore/snapshot"
)

// DirSource is the backup files under a directory (dump mirrors, an NFS mount). A file's
// checksum is read from a "<file>.sha256" next to it when there is one.
type DirSource struct {
	Dir   string
	Match string
}

// Scan walks the directory; keys are slash-separated paths relative to it.
func (s *DirSource) Scan(ctx context.Context, visit func(Backup) error) error {
	err := filepath.WalkDir(s.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == s.Dir && errors.Is(err, fs.ErrNotExist) {
				return nil // a missing directory holds no backups; the checks say so
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		name := d.Name()
		if p != s.Dir && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasSuffix(name, ".sha256") {
			return nil
		}
		rel, _ := filepath.Rel(s.Dir, p)
		rel = filepath.ToSlash(rel)
		if !matches(s.Match, rel) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return visit(Backup{Key: rel, Time: fi.ModTime().UTC(), Size: fi.Size()})
	})
	if err != nil {
		return fmt.Errorf("while listing directory %s: %w", s.Dir, err)
	}
	return nil
}

// Stat reads one file and its .sha256 sidecar.
func (s *DirSource) Stat(_ context.Context, key string) (Backup, bool, error) {
	if strings.Contains(key, "..") {
		return Backup{}, false, nil
	}
	p := filepath.Join(s.Dir, filepath.FromSlash(key))
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Backup{}, false, nil
	}
	if err != nil {
		return Backup{}, false, fmt.Errorf("while reading %s: %w", p, err)
	}
	b := Backup{Key: key, Time: fi.ModTime().UTC(), Size: fi.Size()}
	if f, err := os.Open(p + ".sha256"); err == nil {
		sc := bufio.NewScanner(f)
		if sc.Scan() {
			if fields := strings.Fields(sc.Text()); len(fields) > 0 {
				if h := normalizeSHA256(fields[0]); h != "" {
					b.Checksums = map[string]string{"sha256": h}
				}
			}
		}
		f.Close()
	}
	return b, true, nil
}

// SnapshotLister lists a target's complete snapshots: a local repository, or the CSI driver's
// store of a target (restore/snapshot/csi).
type SnapshotLister interface {
	List(ctx context.Context) ([]snapshot.Metadata, error)
}

// SnapshotSource is a target's snapshots. Snapshots are not byte-identical across places, so
// it has no Stat: the 3-2-1 check judges snapshot copies by time.
type SnapshotSource struct {
	Lister SnapshotLister
}

// Scan lists the complete snapshots of the target (their metadata is small; a target keeps
// tens, not millions). Damaged and foreign snapshots are not backups of the target and are not
// listed: backup-integrity reports them (integrity.go).
func (s *SnapshotSource) Scan(ctx context.Context, visit func(Backup) error) error {
	snaps, err := s.Lister.List(ctx)
	if err != nil {
		return err
	}
	for _, m := range snaps {
		b := Backup{Key: m.ID, Time: m.TakenAt, Size: m.SizeBytes, SizeUnknown: m.SizeUnknown}
		if m.ManifestSHA256 != "" {
			b.Checksums = map[string]string{"manifest-sha256": m.ManifestSHA256}
		}
		if err := visit(b); err != nil {
			return err
		}
	}
	return nil
}
