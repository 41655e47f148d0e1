package files

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/drill"
	enginemariadb "github.com/firedrill/firedrill/restore/engine/mariadb"
	enginered "github.com/firedrill/firedrill/restore/engine/redis"
	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/source/internal/s3objects"
)

// S3API is the part of an S3 client the source uses: listing, reading an object's checksums,
// downloading it.
type S3API = s3objects.API

// S3Location is an S3 prefix holding the backups: a file backup's id is its key relative to
// the prefix; a mariadb-backup directory is the objects under "<prefix><name>/", its
// sidecar the object "<prefix><name>.sha256".
type S3Location = s3objects.Location

// Attribute keys of an entry listed from S3.
const (
	// AttrKey is the backup's object key (file kinds) or key prefix (mariadb-backup).
	AttrKey = "key"
	// AttrLocation names the S3 prefix, for the report.
	AttrLocation = "location"
)

// listS3 returns the backups under the prefix, newest first: objects of the kind's names for
// the file kinds, "directories" with an xtrabackup_checkpoints object for mariadb-backup.
func (s *Source) listS3(ctx context.Context) ([]snapshot.Metadata, error) {
	l := s.S3
	api, err := l.Connect(ctx)
	if err != nil {
		return nil, err
	}
	objs, err := l.List(ctx, api)
	if err != nil {
		return nil, err
	}
	var out []snapshot.Metadata
	if s.Kind == KindMariaDBBackup {
		out, err = s.listS3Backups(ctx, api, objs)
		if err != nil {
			return nil, err
		}
	} else {
		for _, o := range objs {
			if m, ok := s.describeObject(o); ok {
				out = append(out, m)
			}
		}
	}
	snapshot.SortNewestFirst(out)
	return out, nil
}

// describeObject reads one object of a file kind from its name.
func (s *Source) describeObject(o s3objects.Object) (snapshot.Metadata, bool) {
	name := path.Base(o.Rel)
	if !s.dir().Matches(name) {
		return snapshot.Metadata{}, false
	}
	attrs := map[string]string{AttrKey: o.Key, AttrLocation: s.S3.Where}
	switch s.Kind {
	case KindRDB:
		switch {
		case strings.HasSuffix(name, ".rdb"):
			attrs[enginered.AttrRDBFile] = name
		case strings.HasSuffix(name, ".rdb.gz"):
			attrs[AttrCompression] = "gzip"
			attrs[enginered.AttrRDBFile] = strings.TrimSuffix(name, ".gz")
		default:
			return snapshot.Metadata{}, false // AOF directories are read from a directory only
		}
		attrs[AttrFormat] = FormatRDB
	default:
		format, gz, ok := logicalName(s.Kind, name)
		if !ok {
			return snapshot.Metadata{}, false
		}
		attrs[AttrFormat] = format
		if gz && s.Kind == KindMariaDBDump {
			attrs[AttrCompression] = "gzip" // an archive's is sniffed once downloaded
		}
	}
	return snapshot.Metadata{ID: o.Rel, Target: s.Target, Engine: s.Engine, Mode: s.mode(), Driver: Driver,
		TakenAt: o.Modified, FinishedAt: o.Modified, SizeBytes: o.Size, Files: 1, Attributes: attrs, Status: "complete"}, true
}

// listS3Backups groups the objects by their first path element and keeps the groups with an
// xtrabackup_checkpoints object: mariadb-backup directories. Their small files are read for
// the backup type (incremental ones are passed over), binary log position and server version.
func (s *Source) listS3Backups(ctx context.Context, api S3API, objs []s3objects.Object) ([]snapshot.Metadata, error) {
	type group struct {
		size        int64
		files       int
		checkpoints time.Time
		found       bool
	}
	groups := map[string]*group{}
	for _, o := range objs {
		name, rest, ok := strings.Cut(o.Rel, "/")
		if !ok || !s.dir().Matches(name) {
			continue
		}
		g := groups[name]
		if g == nil {
			g = &group{}
			groups[name] = g
		}
		g.size += o.Size
		g.files++
		if rest == checkpointsFile {
			g.checkpoints, g.found = o.Modified, true
		}
	}
	var out []snapshot.Metadata
	for name, g := range groups {
		if !g.found {
			continue
		}
		small := func(file string) (string, error) {
			b, _, err := s.S3.ReadSmall(ctx, api, s.S3.Prefix+name+"/"+file, 1<<20)
			if err != nil {
				return "", s.S3.Platform(err, "while reading %s of backup %s in %s", file, name, s.S3.Where)
			}
			return string(b), nil
		}
		cp, err := small(checkpointsFile)
		if err != nil {
			return nil, err
		}
		typ := infoFieldFrom(cp, "backup_type")
		if typ == "incremental" {
			if s.Log != nil {
				s.Log.Info("passing over a backup", "dir", s.S3.Where, "entry", name, "reason", name+" is an incremental backup (backup_type = incremental): only full backups are drilled on their own")
			}
			continue
		}
		attrs := map[string]string{AttrFormat: FormatMariaDBBackup, AttrKey: s.S3.Prefix + name + "/", AttrLocation: s.S3.Where}
		if typ != "" {
			attrs[AttrBackupType] = typ
		}
		for _, f := range enginemariadb.BinlogInfoFiles {
			if b, err := small(f); err != nil {
				return nil, err
			} else if b != "" {
				if pos, err := enginemariadb.ParseBinlogInfo(b); err == nil {
					maps.Copy(attrs, pos)
				}
				break
			}
		}
		info, err := small("xtrabackup_info")
		if err != nil {
			return nil, err
		}
		out = append(out, snapshot.Metadata{ID: name, Target: s.Target, Engine: s.Engine, Mode: "native", Driver: Driver,
			TakenAt: g.checkpoints, FinishedAt: g.checkpoints, SizeBytes: g.size, Files: g.files, Attributes: attrs, Status: "complete",
			EngineVersion: infoFieldFrom(info, "server_version")})
	}
	return out, nil
}

// getS3 returns the backup whose id (key relative to the prefix, or directory name) is id.
func (s *Source) getS3(ctx context.Context, id string) (*snapshot.Metadata, error) {
	all, err := s.listS3(ctx)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].ID == id {
			return &all[i], nil
		}
	}
	return nil, fmt.Errorf("%w: no %s backup %q under %s", snapshot.ErrNotFound, s.Kind, id, s.S3.Where)
}

// materializeS3 downloads the backup into scratch, comparing every object with the store's
// checksums and the backup's sidecar object, and makes the same copy as from a directory.
func (s *Source) materializeS3(ctx context.Context, req drill.MaterializeRequest) (*drill.Copy, error) {
	meta := req.Snapshot
	l := s.S3
	api, err := l.Connect(ctx)
	if err != nil {
		return nil, err
	}
	format := meta.Attributes[AttrFormat]
	if format == FormatMariaDBBackup {
		return s.downloadTree(ctx, api, req)
	}
	dl := filepath.Join(req.ScratchDir, "download")
	if err := os.Mkdir(dl, 0o700); err != nil {
		return nil, fmt.Errorf("while creating the download directory %s: %w", dl, err)
	}
	defer os.RemoveAll(dl) // the download never outlives the copy
	file := filepath.Join(dl, path.Base(meta.ID))
	d, err := l.Fetch(ctx, api, meta.ID, file, s3objects.Options{Sidecar: true}, req.Status)
	if bad := (s3objects.BadSidecarError{}); errors.As(err, &bad) {
		f := checks.Failf(drill.SnapshotIntegrityName, checks.Evidence{"object": meta.ID, "location": l.Where}, "%v", bad)
		return &drill.Copy{Findings: []checks.Finding{f}, Damaged: true}, nil
	}
	if err != nil {
		return nil, err
	}
	integrity := d.Finding(l, "backup")
	cp := &drill.Copy{Findings: []checks.Finding{integrity}, Damaged: integrity.Status == checks.Fail}
	if len(d.Claims) == 0 {
		cp.Notes = append(cp.Notes, fmt.Sprintf("%s has no SHA-256 in the store (x-amz-checksum-sha256, sha256 metadata or a %s sidecar object): the download proves its size, not that it is the backup as written", meta.ID, sidecarSuffix))
	}
	if cp.Damaged {
		return cp, nil
	}
	dir := filepath.Join(req.ScratchDir, "clone", "data")
	if format != FormatRDB {
		dir = filepath.Join(req.ScratchDir, "clone", "dump")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("while creating the copy's directory %s: %w", dir, err)
	}
	dst := filepath.Join(dir, logicalFile(meta.ID))
	if format == FormatRDB {
		dst = filepath.Join(dir, meta.Attributes[enginered.AttrRDBFile])
	}
	gz := meta.Attributes[AttrCompression] == "gzip" || (format == FormatMongoArchive && sniffGzip(file))
	n := d.Bytes
	if gz {
		c := newCopier(ctx, req)
		_, wrote, corrupt, err := c.copyOne(file, dst, true)
		if err != nil {
			return nil, err
		}
		if corrupt != "" {
			v := verdict{files: 1, bytes: wrote, sha256: d.SHA256, corrupt: corrupt, downloaded: true, location: l.Where}
			cp.Findings = []checks.Finding{v.finding()}
			cp.Damaged = true
			return cp, nil
		}
		n = wrote
	} else if err := os.Rename(file, dst); err != nil {
		return nil, fmt.Errorf("while moving the download of %s into the copy: %w", meta.ID, err)
	}
	if format == FormatRDB {
		cp.DataDir = dir
		return cp, nil
	}
	logical(cp, dst, format, n)
	return cp, nil
}

// downloadTree downloads a mariadb-backup directory's objects into clone/data, each compared
// with the store's size and checksums, then holds them to the directory's sidecar object
// "<name>.sha256" (sha256sum run inside the directory) when there is one.
func (s *Source) downloadTree(ctx context.Context, api S3API, req drill.MaterializeRequest) (*drill.Copy, error) {
	meta := req.Snapshot
	l := s.S3
	sub := *l
	sub.Prefix = l.Prefix + meta.ID + "/"
	objs, err := sub.List(ctx, api)
	if err != nil {
		return nil, err
	}
	dest := filepath.Join(req.ScratchDir, "clone", "data")
	if err := os.MkdirAll(dest, 0o700); err != nil {
		return nil, fmt.Errorf("while creating the copy's directory %s: %w", dest, err)
	}
	v := verdict{downloaded: true, location: l.Where}
	got := map[string]string{}
	last := time.Now()
	req.Status(fmt.Sprintf("downloading %s (%d objects, %s) from %s", meta.ID, len(objs), reports.HumanBytes(meta.SizeBytes), l.Where))
	for _, o := range objs {
		rel := path.Clean(o.Rel)
		if rel == "." || strings.HasPrefix(rel, "../") || rel == ".." || path.IsAbs(rel) {
			return nil, fmt.Errorf("while downloading %s: object key %s leads out of the backup", meta.ID, o.Key)
		}
		dst := filepath.Join(dest, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return nil, fmt.Errorf("while creating %s: %w", filepath.Dir(dst), err)
		}
		d, err := sub.Fetch(ctx, api, o.Rel, dst, s3objects.Options{Quiet: true}, req.Status)
		if err != nil {
			return nil, err
		}
		if m := d.Mismatch(); m != "" {
			v.mismatches = append(v.mismatches, m)
		}
		got[rel] = d.SHA256
		v.files++
		v.bytes += d.Bytes
		if time.Since(last) >= 2*time.Second {
			last = time.Now()
			req.Status(fmt.Sprintf("downloading %s: %d of %d objects, %s of %s", meta.ID, v.files, len(objs), reports.HumanBytes(v.bytes), reports.HumanBytes(meta.SizeBytes)))
		}
	}
	sidecar := meta.ID + sidecarSuffix
	b, ok, err := l.ReadSmall(ctx, api, l.Prefix+sidecar, 64<<20)
	if err != nil {
		return nil, l.Platform(err, "while reading the checksum sidecar %s of %s", sidecar, l.Where)
	}
	if ok {
		list, err := parseSums(bytes.NewReader(b), sidecar)
		if err == nil {
			var want map[string]string
			if want, err = sumsByPath(list, sidecar); err == nil {
				v.sidecar = sidecar
				v.compare(want, got)
			}
		}
		if err != nil {
			f := checks.Failf(drill.SnapshotIntegrityName, checks.Evidence{"sidecar": sidecar, "location": l.Where}, "the backup's checksum sidecar object cannot be read: %v", err)
			return &drill.Copy{Findings: []checks.Finding{f}, Damaged: true}, nil
		}
	}
	return copyOf(meta, v, dest), nil
}
