package basebackup

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/source/walarchive"
)

// Finding names of this source.
const (
	// ContinuityName judges the WAL archive from the backup's start to its end.
	ContinuityName = "wal-continuity"
	// TargetName is the point recovery reached, judged against recovery.target and the RPO.
	TargetName = "recovery-target"
)

// ErrUnsupported marks a base backup this build cannot restore (tablespaces, a compression
// it cannot read).
var ErrUnsupported = errors.New("unsupported base backup")

// Materialize extracts the base backup into the scratch directory, verifies it against its
// manifest, and stages the WAL recovery needs from the archive.
func (s *Source) Materialize(ctx context.Context, req drill.MaterializeRequest) (*drill.Copy, error) {
	var b *backup
	var err error
	if s.S3 != nil {
		// Downloaded whole first (pg_verifybackup reads the manifest and the tar's layout);
		// the download goes when the copy is made and verified, scratch at teardown.
		dl := filepath.Join(req.ScratchDir, "download")
		defer os.RemoveAll(dl)
		b, err = s.downloadS3(ctx, req.Snapshot.ID, dl, req.Status)
	} else {
		b, err = s.inspect(s.path(req.Snapshot.ID))
	}
	if err != nil {
		return nil, err
	}
	data := filepath.Join(req.ScratchDir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		return nil, fmt.Errorf("while creating data directory %s: %w", data, err)
	}
	req.Status("copying base backup " + req.Snapshot.ID + " (" + b.format + ")")
	spaces := &tablespaces{root: filepath.Join(req.ScratchDir, "tablespaces"), original: map[string]string{}}
	if b.format == FormatPlain {
		err = copyTree(ctx, b.path, data, spaces)
	} else {
		err = s.extract(ctx, b, data, spaces)
	}
	if err != nil {
		return nil, err
	}
	cp := &drill.Copy{DataDir: data, Files: map[string][]byte{postgres.BackupLabelFile: b.labelBytes}}
	cp.Milestones = append(cp.Milestones, reports.Milestone{Name: "base-backup-copied", At: time.Now().UTC(), Source: "firedrill"})
	if err := spaces.finish(data, cp); err != nil {
		return nil, fmt.Errorf("while restoring the tablespaces of base backup %s: %w", req.Snapshot.ID, err)
	}
	major, err := postgres.ReadPGVersion(data)
	if err != nil {
		return nil, err
	}
	cp.Major = major
	bin, err := postgres.FindBinDir(major, s.BinDir)
	if err != nil {
		return nil, err
	}
	req.Status("verifying base backup " + req.Snapshot.ID + " against its manifest")
	cp.Findings = append(cp.Findings, verify(ctx, bin, b, data))

	control, err := postgres.ControlData(ctx, bin, data)
	if err != nil {
		return nil, err
	}
	segBytes, _ := strconv.ParseInt(control["Bytes per WAL segment"], 10, 64)
	from := walarchive.From{Timeline: b.label.Timeline, StartLSN: b.label.StartLSN, StopLSN: b.stopLSN}
	req.Status("reading WAL archive " + s.ArchiveWhere())
	arch, err := s.ListArchive(ctx, segBytes)
	if err != nil {
		return nil, err
	}
	hl := arch
	if s.ArchiveS3 == nil {
		hl = nil // a directory's .backup files are read in place
	}
	if hist, ok := s.backupHistory(b, hl); ok && hist.StopLSN != 0 {
		from.StopLSN = hist.StopLSN
	}
	plan, perr := arch.Plan(from)
	continuity := ContinuityFinding(s.ArchiveWhere(), from, plan, perr)
	if continuity.Status == checks.Error {
		return nil, perr
	}
	cp.Findings = append(cp.Findings, continuity)
	staging := filepath.Join(req.ScratchDir, "wal")
	req.Status(fmt.Sprintf("staging %d WAL files from the archive", len(plan.Files)))
	if err := Stage(ctx, arch, plan.Files, staging); err != nil {
		return nil, err
	}
	cp.Milestones = append(cp.Milestones, reports.Milestone{Name: "wal-staged", At: time.Now().UTC(), Source: "firedrill"})
	cp.Recovery = &postgres.Recovery{StagingDir: staging, Target: s.Recovery}
	if s.Recovery.Kind == postgres.TargetLSN && perr == nil {
		if t, err := walarchive.ParseLSN(s.Recovery.LSN); err == nil && t > plan.End {
			cp.Findings = append(cp.Findings, checks.Failf(TargetName, checks.Evidence{"target": s.Recovery.String(), "archiveEnd": plan.End.String(), "lastSegment": plan.Last},
				"recovery target %s is beyond the end of the WAL archive (%s, in %s): it cannot be reached", s.Recovery.LSN, plan.End, plan.Last))
		}
	}
	cp.Checks = []checks.Check{NewTargetCheck(s.Recovery, plan, req.Snapshot.TakenAt)}
	cp.Notes = append(cp.Notes, fmt.Sprintf("recovered from base backup %s and %d WAL segments staged from %s (%s to %s, timeline %d) to recovery target %s",
		req.Snapshot.ID, plan.Segments, s.ArchiveWhere(), orNone(plan.First), orNone(plan.Last), plan.TargetTimeline, s.Recovery))
	return cp, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// ContinuityFinding judges a plan of the WAL archive (archive names it): a gap or a broken timeline history is a proven failure.
func ContinuityFinding(archive string, from walarchive.From, plan *walarchive.Plan, err error) checks.Finding {
	ev := checks.Evidence{"archive": archive, "startLsn": from.StartLSN.String(), "timeline": plan.TargetTimeline,
		"first": plan.First, "last": plan.Last, "segments": plan.Segments}
	if from.StopLSN != 0 {
		ev["backupStopLsn"] = from.StopLSN.String()
	}
	if plan.End != 0 {
		ev["archiveEnd"] = plan.End.String()
	}
	var gap *walarchive.GapError
	var tl *walarchive.TimelineError
	switch {
	case errors.As(err, &gap):
		ev["firstMissing"] = gap.Missing
		if gap.Next != "" {
			ev["nextPresent"] = gap.Next
		}
		return checks.Failf(ContinuityName, ev, "%s", gap.Error())
	case errors.As(err, &tl):
		return checks.Failf(ContinuityName, ev, "%s", tl.Error())
	case err != nil:
		return checks.Errorf(ContinuityName, ev, "could not walk the WAL archive %s: %v", archive, err)
	}
	return checks.Passf(ContinuityName, ev, "the archive holds every segment from the backup's start %s to %s (%d segments, timeline %d) without a gap",
		plan.First, plan.Last, plan.Segments, plan.TargetTimeline)
}

// verify checks the copy against backup_manifest with pg_verifybackup (file sizes and
// checksums; the WAL is judged by the archive walk and the replay).
func verify(ctx context.Context, bin string, b *backup, data string) checks.Finding {
	ev := checks.Evidence{"format": b.format}
	if b.manifest == "" {
		return checks.Passf(drill.SnapshotIntegrityName, ev, "copied the base backup (it has no backup_manifest to verify it against)")
	}
	ev["manifest"] = b.manifest
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "pg_verifybackup"), "--no-parse-wal", "--manifest-path", b.manifest, data)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > 20 {
		lines = lines[:20]
	}
	ev["output"] = lines
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return checks.Failf(drill.SnapshotIntegrityName, ev, "pg_verifybackup found the copy differs from its backup_manifest: %s", lines[0])
	case err != nil:
		return checks.Errorf(drill.SnapshotIntegrityName, ev, "could not run pg_verifybackup: %v", err)
	}
	return checks.Passf(drill.SnapshotIntegrityName, ev, "every file matches the backup_manifest's checksums (pg_verifybackup)")
}

// tablespaces are a base backup's tablespaces, restored under root/<oid>.
type tablespaces struct {
	root string
	// original maps an OID to its path in production (tablespace_map, or a plain backup's
	// pg_tblspc link): evidence only.
	original map[string]string
}

func (t *tablespaces) dir(oid string) (string, error) {
	d := filepath.Join(t.root, oid)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return "", fmt.Errorf("while creating tablespace directory %s: %w", d, err)
	}
	return d, nil
}

// finish hands the tablespaces to the copy: tablespace_map (the backup's, else one written
// from the plain backup's links) remapped into scratch by PrepareRestore, and pg_tblspc links
// to the restored copies so that pg_verifybackup finds their files.
func (t *tablespaces) finish(data string, cp *drill.Copy) error {
	if m, err := os.ReadFile(filepath.Join(data, postgres.TablespaceMapFile)); err == nil && len(bytes.TrimSpace(m)) > 0 {
		for _, line := range strings.Split(strings.TrimSpace(string(m)), "\n") {
			if oid, path, ok := strings.Cut(line, " "); ok {
				t.original[oid] = path
			}
		}
		cp.Files[postgres.TablespaceMapFile] = m
	}
	if len(t.original) == 0 {
		return nil
	}
	cp.Tablespaces = map[string]string{}
	var m strings.Builder
	for oid, orig := range t.original {
		d, err := t.dir(oid)
		if err != nil {
			return err
		}
		cp.Tablespaces[oid] = d
		fmt.Fprintf(&m, "%s %s\n", oid, orig)
		link := filepath.Join(data, "pg_tblspc", oid)
		_ = os.Remove(link)
		if err := os.MkdirAll(filepath.Dir(link), 0o700); err != nil {
			return err
		}
		if err := os.Symlink(d, link); err != nil {
			return err
		}
	}
	if _, ok := cp.Files[postgres.TablespaceMapFile]; !ok {
		cp.Files[postgres.TablespaceMapFile] = []byte(m.String())
	}
	cp.Notes = append(cp.Notes, fmt.Sprintf("%d tablespace(s) restored into the scratch directory, away from their production paths", len(t.original)))
	return nil
}

// extract unpacks base.tar[.gz] into data, pg_wal.tar[.gz], when there, into data/pg_wal, and
// each tablespace's <oid>.tar[.gz] into its own directory.
func (s *Source) extract(ctx context.Context, b *backup, data string, spaces *tablespaces) error {
	entries, err := os.ReadDir(b.path)
	if err != nil {
		return fmt.Errorf("while listing base backup %s: %w", b.path, err)
	}
	if err := untar(ctx, filepath.Join(b.path, "base.tar"+b.compression), data); err != nil {
		return err
	}
	for _, e := range entries {
		n := strings.TrimSuffix(e.Name(), ".gz")
		oid, ok := strings.CutSuffix(n, ".tar")
		if !ok || n == "base.tar" || n == "pg_wal.tar" {
			continue
		}
		if _, err := strconv.ParseUint(oid, 10, 32); err != nil {
			return fmt.Errorf("%w: base backup %s holds %s, which is no tablespace archive (<oid>.tar)", ErrUnsupported, b.path, e.Name())
		}
		d, err := spaces.dir(oid)
		if err != nil {
			return err
		}
		if err := untar(ctx, filepath.Join(b.path, e.Name()), d); err != nil {
			return err
		}
		if _, ok := spaces.original[oid]; !ok {
			spaces.original[oid] = "(unknown)"
		}
	}
	for _, wal := range []string{"pg_wal.tar", "pg_wal.tar.gz"} {
		if p := filepath.Join(b.path, wal); exists(p) {
			if err := os.MkdirAll(filepath.Join(data, "pg_wal"), 0o700); err != nil {
				return err
			}
			return untar(ctx, p, filepath.Join(data, "pg_wal"))
		}
	}
	return nil
}

func untar(ctx context.Context, src, dest string) error {
	tr, closer, err := openTar(src)
	if err != nil {
		return err
	}
	defer closer.Close()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("while extracting %s: %w", src, err)
		}
		name := filepath.Clean(h.Name)
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("while extracting %s: entry %q leaves the data directory", src, h.Name)
		}
		p := filepath.Join(dest, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o700); err != nil {
				return fmt.Errorf("while extracting %s: %w", src, err)
			}
		case tar.TypeReg:
			if err := writeFile(ctx, p, tr, fs.FileMode(h.Mode).Perm()|0o600); err != nil {
				return fmt.Errorf("while extracting %s from %s: %w", h.Name, src, err)
			}
		case tar.TypeSymlink:
			if filepath.Dir(name) == "pg_tblspc" {
				continue // a tablespace's link to production: its content is <oid>.tar
			}
			return fmt.Errorf("%w: %s holds symbolic link %s (a relocated pg_wal)", ErrUnsupported, src, h.Name)
		}
	}
}

func writeFile(ctx context.Context, p string, r io.Reader, mode fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, ctxReader{ctx, r})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// copyTree copies a plain-format base backup: regular files and directories, a tablespace's
// pg_tblspc link as the tablespace's content (into spaces), a relocated pg_wal as pg_wal.
func copyTree(ctx context.Context, src, dest string, spaces *tablespaces) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("while copying base backup %s: %w", src, err)
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "." {
			return nil
		}
		target := filepath.Join(dest, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o700)
		case d.Type()&fs.ModeSymlink != 0 && spaces != nil && (filepath.Dir(rel) == "pg_tblspc" || rel == "pg_wal"):
			to, err := filepath.EvalSymlinks(p)
			if err != nil {
				return fmt.Errorf("while following %s of base backup %s: %w", rel, src, err)
			}
			if rel == "pg_wal" {
				return copyTree(ctx, to, target, nil)
			}
			oid := filepath.Base(rel)
			dir, err := spaces.dir(oid)
			if err != nil {
				return err
			}
			spaces.original[oid] = to
			return copyTree(ctx, to, dir, nil)
		case d.Type()&fs.ModeSymlink != 0:
			return fmt.Errorf("%w: base backup %s holds symbolic link %s", ErrUnsupported, src, rel)
		case !d.Type().IsRegular():
			return nil
		case rel == manifestFile:
			return nil // verified in place; PostgreSQL does not need it
		}
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("while copying base backup file %s: %w", p, err)
		}
		defer f.Close()
		if err := writeFile(ctx, target, f, 0o600); err != nil {
			return fmt.Errorf("while copying base backup file %s: %w", p, err)
		}
		return nil
	})
}

// Stage copies the planned archive files into the staging directory, decompressed and under
// the names PostgreSQL asks for. The archive is opened read-only.
func Stage(ctx context.Context, arch *walarchive.Listing, files []walarchive.File, staging string) error {
	if err := os.Mkdir(staging, 0o700); err != nil {
		return fmt.Errorf("while creating WAL staging directory %s: %w", staging, err)
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := arch.Open(f)
		if err != nil {
			return err
		}
		n, _ := walarchive.ParseName(f.Name, arch.SegmentBytes)
		err = writeFile(ctx, filepath.Join(staging, strings.TrimSuffix(f.Name, n.Compression)), r, 0o600)
		r.Close()
		if err != nil {
			return fmt.Errorf("while staging %s from the WAL archive: %w", f.Name, err)
		}
	}
	return nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
