package basebackup

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/source/internal/fsize"
	"github.com/firedrill/firedrill/restore/source/walarchive"
)

// Driver is the snapshot driver name a base backup's metadata carries.
const Driver = "basebackup"

// Attribute keys of a base backup's metadata.
const (
	AttrFormat      = "format"
	AttrCompression = "compression"
	AttrLabel       = "label"
)

// Base backup formats.
const (
	FormatPlain = "plain"
	FormatTar   = "tar"
)

const manifestFile = "backup_manifest"

// Source lists and restores one target's base backups.
type Source struct {
	Target string
	// Dir holds the base backups: one per subdirectory, or Dir itself is one.
	Dir string
	// Archive is the WAL archive directory.
	Archive string
	// S3, when set, holds the base backups instead of Dir: the chosen one is downloaded into
	// scratch.
	S3 *S3Location
	// ArchiveS3, when set, holds the WAL archive instead of Archive: listed, and the files
	// recovery needs downloaded into the staging directory.
	ArchiveS3 *S3Location
	// Recovery is where recovery stops.
	Recovery postgres.RecoveryTarget
	// BinDir overrides the PostgreSQL binaries found for the backup's version.
	BinDir string
}

// backup is one base backup found on disk.
type backup struct {
	path        string
	format      string
	compression string // ".gz" for base.tar.gz
	label       walarchive.BackupLabel
	labelBytes  []byte
	stopLSN     walarchive.LSN
	manifest    string // path of backup_manifest, "" when none
	// remote: listed in S3, not downloaded; modTime and size are the objects'.
	remote  bool
	modTime time.Time
	size    int64
}

// List returns the base backups, newest first.
func (s *Source) List(ctx context.Context) ([]snapshot.Metadata, error) {
	if s.S3 != nil {
		return s.listS3(ctx)
	}
	arch := s.historyArchive(ctx)
	var out []snapshot.Metadata
	if b, err := s.inspect(s.Dir); err == nil {
		m := s.describe(".", b, arch)
		if !Reaches(s.Recovery, m) {
			return nil, nil
		}
		return []snapshot.Metadata{m}, nil
	}
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		return nil, fmt.Errorf("while listing base backups in %s: %w", s.Dir, err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := s.inspect(filepath.Join(s.Dir, e.Name()))
		if err != nil {
			continue // not a base backup: nothing to restore
		}
		out = append(out, s.describe(e.Name(), b, arch))
	}
	snapshot.SortNewestFirst(out)
	return slices.DeleteFunc(out, func(m snapshot.Metadata) bool { return !Reaches(s.Recovery, m) }), nil
}

// Reaches reports whether a backup can recover to target: one that ended after a target time
// or LSN cannot (recovery cannot stop before the backup is consistent), so the newest backup
// a drill restores is the newest that ended before it.
func Reaches(target postgres.RecoveryTarget, m snapshot.Metadata) bool {
	switch target.Kind {
	case postgres.TargetTime:
		return m.TakenAt.IsZero() || !m.TakenAt.After(target.Time)
	case postgres.TargetLSN:
		stop, err1 := walarchive.ParseLSN(m.StopLSN)
		want, err2 := walarchive.ParseLSN(target.LSN)
		return err1 != nil || err2 != nil || stop <= want
	}
	return true
}

// Get returns the base backup called id (its directory's name; "." when Dir is one).
func (s *Source) Get(ctx context.Context, id string) (*snapshot.Metadata, error) {
	if s.S3 != nil {
		return s.getS3(ctx, id)
	}
	if id == "" || strings.ContainsRune(id, '/') || id == ".." {
		return nil, fmt.Errorf("%w: no base backup %q in %s", snapshot.ErrNotFound, id, s.Dir)
	}
	b, err := s.inspect(s.path(id))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", snapshot.ErrNotFound, err)
	}
	m := s.describe(id, b, s.historyArchive(ctx))
	return &m, nil
}

func (s *Source) path(id string) string {
	if id == "." {
		return s.Dir
	}
	return filepath.Join(s.Dir, id)
}

// inspect recognises a base backup directory and reads its label and manifest.
func (s *Source) inspect(dir string) (*backup, error) {
	b := &backup{path: dir}
	if _, err := os.Stat(filepath.Join(dir, postgres.BackupLabelFile)); err == nil {
		b.format = FormatPlain
		lb, err := os.ReadFile(filepath.Join(dir, postgres.BackupLabelFile))
		if err != nil {
			return nil, fmt.Errorf("while reading the backup label of %s: %w", dir, err)
		}
		b.labelBytes = lb
	} else {
		b.format = FormatTar
		switch {
		case exists(filepath.Join(dir, "base.tar")):
		case exists(filepath.Join(dir, "base.tar.gz")):
			b.compression = ".gz"
		default:
			return nil, fmt.Errorf("%s is not a base backup: no backup_label, base.tar or base.tar.gz", dir)
		}
		lb, err := readFromTar(filepath.Join(dir, "base.tar"+b.compression), postgres.BackupLabelFile)
		if err != nil {
			return nil, err
		}
		b.labelBytes = lb
	}
	label, err := walarchive.ParseBackupLabel(b.labelBytes)
	if err != nil {
		return nil, fmt.Errorf("while reading the backup label of %s: %w", dir, err)
	}
	b.label = label
	if p := filepath.Join(dir, manifestFile); exists(p) {
		b.manifest = p
		if stop, err := manifestStop(p); err == nil {
			b.stopLSN = stop
		}
	}
	return b, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// readFromTar returns one file of a (gzip) tar: pg_basebackup writes backup_label first.
func readFromTar(path, name string) ([]byte, error) {
	tr, closer, err := openTar(path)
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s has no %s", path, name)
		}
		if err != nil {
			return nil, fmt.Errorf("while reading %s: %w", path, err)
		}
		if filepath.Clean(h.Name) == name {
			return io.ReadAll(io.LimitReader(tr, 1<<20))
		}
	}
}

func openTar(path string) (*tar.Reader, io.Closer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("while opening %s: %w", path, err)
	}
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("while reading gzip file %s: %w", path, err)
		}
		r = zr
	}
	return tar.NewReader(r), f, nil
}

// manifestStop reads the end of the backup's WAL range from backup_manifest.
func manifestStop(path string) (walarchive.LSN, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	stop, err := parseManifestStop(b)
	if err != nil {
		return 0, fmt.Errorf("while reading %s: %w", path, err)
	}
	return stop, nil
}

func parseManifestStop(b []byte) (walarchive.LSN, error) {
	var m struct {
		WALRanges []struct {
			Timeline uint32 `json:"Timeline"`
			StartLSN string `json:"Start-LSN"`
			EndLSN   string `json:"End-LSN"`
		} `json:"WAL-Ranges"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return 0, err
	}
	if len(m.WALRanges) == 0 {
		return 0, errors.New("the manifest has no WAL-Ranges")
	}
	return walarchive.ParseLSN(m.WALRanges[len(m.WALRanges)-1].EndLSN)
}

// describe turns a base backup into metadata. Its recovery point is the backup's stop time
// (the archived .backup file, read from arch when the archive is in S3), else the manifest's
// modification time.
func (s *Source) describe(id string, b *backup, arch *walarchive.Listing) snapshot.Metadata {
	attrs := map[string]string{AttrFormat: b.format, postgres.AttrSuperuser: "postgres", AttrLabel: b.label.Label}
	if b.compression != "" {
		attrs[AttrCompression] = strings.TrimPrefix(b.compression, ".")
	}
	m := snapshot.Metadata{ID: id, Target: s.Target, Engine: "postgres", Mode: "basebackup", Driver: Driver,
		Timeline: int(b.label.Timeline), StartLSN: b.label.StartLSN.String(), Attributes: attrs, Status: "complete"}
	if t, err := time.Parse("2006-01-02 15:04:05 MST", b.label.StartTime); err == nil {
		m.StartedAt = t.UTC()
	}
	if fi, err := os.Stat(b.path); err == nil && !b.remote {
		m.FinishedAt = fi.ModTime().UTC()
	}
	if b.remote {
		m.FinishedAt = b.modTime
		attrs["location"] = s.S3.Where
	}
	if b.manifest != "" {
		if fi, err := os.Stat(b.manifest); err == nil {
			m.FinishedAt = fi.ModTime().UTC()
		}
	}
	if b.stopLSN != 0 {
		m.StopLSN = b.stopLSN.String()
	}
	if hist, ok := s.backupHistory(b, arch); ok {
		if hist.StopLSN != 0 {
			m.StopLSN = hist.StopLSN.String()
		}
		if t, err := time.Parse("2006-01-02 15:04:05 MST", hist.StopTime); err == nil {
			m.FinishedAt = t.UTC()
		}
	}
	m.TakenAt = m.FinishedAt
	m.SizeBytes = b.size
	if !b.remote {
		m.SizeBytes = fsize.Tree(b.path)
	}
	return m
}

// backupHistory reads the archived .backup file of a backup: its stop location and time.
// Its name holds the start's offset within the segment, which depends on the segment size:
// every .backup file of the start segment is read and the one with the same start kept.
func (s *Source) backupHistory(b *backup, arch *walarchive.Listing) (walarchive.BackupLabel, bool) {
	if b.label.StartSegment == "" {
		return walarchive.BackupLabel{}, false
	}
	if arch != nil {
		for _, n := range arch.Names() {
			if !strings.HasPrefix(n, b.label.StartSegment+".") || !strings.HasSuffix(n, ".backup") {
				continue
			}
			f, _ := arch.Find(n)
			if d, err := arch.ReadSmall(f); err == nil {
				if h, err := walarchive.ParseBackupLabel(d); err == nil && h.StartLSN == b.label.StartLSN {
					return h, true
				}
			}
		}
		return walarchive.BackupLabel{}, false
	}
	if s.Archive == "" {
		return walarchive.BackupLabel{}, false
	}
	matches, _ := filepath.Glob(filepath.Join(s.Archive, b.label.StartSegment+".*.backup"))
	for _, p := range matches {
		if d, err := os.ReadFile(p); err == nil {
			if h, err := walarchive.ParseBackupLabel(d); err == nil && h.StartLSN == b.label.StartLSN {
				return h, true
			}
		}
	}
	return walarchive.BackupLabel{}, false
}

// ListArchive lists the WAL archive (the directory, or the S3 prefix without downloading a
// file); segBytes 0 infers the segment size.
func (s *Source) ListArchive(ctx context.Context, segBytes int64) (*walarchive.Listing, error) {
	if s.ArchiveS3 == nil {
		return walarchive.List(ctx, s.Archive, segBytes)
	}
	api, err := s.ArchiveS3.client(ctx)
	if err != nil {
		return nil, err
	}
	return walarchive.ListS3(ctx, api, s.ArchiveS3.Bucket, s.ArchiveS3.Prefix, s.ArchiveS3.Where, segBytes)
}

// ArchiveWhere names the WAL archive for messages.
func (s *Source) ArchiveWhere() string {
	if s.ArchiveS3 != nil {
		return s.ArchiveS3.Where
	}
	return s.Archive
}

// Where names where the base backups are, for messages.
func (s *Source) Where() string {
	if s.S3 != nil {
		return s.S3.Where
	}
	return s.Dir
}

var _ drill.Source = (*Source)(nil)
