package dump

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/source/internal/entries"
	"github.com/firedrill/firedrill/restore/source/internal/fsize"
)

// Driver is the snapshot driver name a dump's metadata carries.
const Driver = "dump"

// RestoreName is the finding of the restore itself: every error pg_restore or psql reported.
const RestoreName = "dump-restore"

// Attribute keys of a dump's metadata.
const (
	AttrFormat      = "format"
	AttrCompression = "compression"
	// AttrContainer is "tar" for a directory dump that arrives as a tar of its directory.
	AttrContainer = "container"
)

// sidecarSuffix names a dump's checksum file: sha256sum's output for it.
const sidecarSuffix = entries.SidecarSuffix

// Source lists and restores the dumps of one target's directory, or of an S3 prefix.
type Source struct {
	Target string
	Dir    string
	// S3, when set, is where the dumps are instead of Dir: the newest is downloaded into
	// scratch, verified and restored from there.
	S3 *S3Location
	// Pattern is a glob on file names; empty: every file.
	Pattern string
	// Jobs is pg_restore --jobs for custom and directory dumps.
	Jobs int
	// BinDir overrides the PostgreSQL binaries found for the dump's version.
	BinDir string
}

// List returns the directory's dumps, newest (by modification time) first.
func (s *Source) List(ctx context.Context) ([]snapshot.Metadata, error) {
	if s.S3 != nil {
		return s.listS3(ctx)
	}
	return s.dir().List(ctx)
}

// Get returns the dump called id (its file name).
func (s *Source) Get(ctx context.Context, id string) (*snapshot.Metadata, error) {
	if s.S3 != nil {
		return s.getS3(ctx, id)
	}
	return s.dir().Get(id)
}

// dir is the dump directory as a directory of backups.
func (s *Source) dir() entries.Dir {
	return entries.Dir{Path: s.Dir, Pattern: s.Pattern, Plural: "dumps", One: "dump", Describe: s.describe}
}

func (s *Source) matches(name string) bool { return s.dir().Matches(name) }

func (s *Source) describe(name string) (*snapshot.Metadata, error) {
	path := filepath.Join(s.Dir, name)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	f, err := Detect(path)
	if err != nil && !errors.Is(err, ErrCorrupt) {
		return nil, err
	}
	// A compressed file that cannot be read is still listed: it is meant to be a dump, and
	// passing over the newest one for an older would hide that it is broken.
	size := fi.Size()
	if fi.IsDir() {
		size = fsize.Tree(path)
	}
	attrs := map[string]string{AttrFormat: f.Kind, postgres.AttrSuperuser: "postgres"}
	if f.Compression != "" {
		attrs[AttrCompression] = f.Compression
	}
	if f.Tar {
		attrs[AttrContainer] = "tar"
	}
	mt := fi.ModTime().UTC()
	return &snapshot.Metadata{ID: name, Target: s.Target, Engine: "postgres", Mode: "logical", Driver: Driver,
		TakenAt: mt, FinishedAt: mt, SizeBytes: size, Attributes: attrs, Status: "complete"}, nil
}

// Materialize verifies the dump's checksum, restores it into a fresh cluster in the scratch
// directory and shuts that cluster down cleanly.
func (s *Source) Materialize(ctx context.Context, req drill.MaterializeRequest) (*drill.Copy, error) {
	if s.S3 != nil {
		return s.materializeS3(ctx, req)
	}
	path := filepath.Join(s.Dir, req.Snapshot.ID)
	// The checksum pass reads the whole dump once: it runs while the fresh cluster is made
	// and started (and, for a large dump, beside the restore's first minutes), not before.
	req.Status("verifying the checksum of " + req.Snapshot.ID + " and restoring it")
	vctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type verified struct {
		f   checks.Finding
		err error
	}
	done := make(chan verified, 1)
	go func() {
		f, err := verify(vctx, path)
		done <- verified{f, err}
	}()
	cp, err := s.restoreFile(ctx, req, path, nil)
	if err != nil {
		cancel()
		<-done
		return nil, err
	}
	v := <-done
	if v.err != nil {
		return nil, v.err
	}
	cp.Findings = append([]checks.Finding{v.f}, cp.Findings...)
	return cp, nil
}

// restoreFile restores the dump at path (in the directory, or downloaded into scratch);
// findings are what was proved of it before (its integrity).
func (s *Source) restoreFile(ctx context.Context, req drill.MaterializeRequest, path string, findings []checks.Finding) (*drill.Copy, error) {
	format, err := Detect(path)
	if err != nil && !errors.Is(err, ErrCorrupt) {
		return nil, err
	}
	cp := &drill.Copy{Clean: true, Findings: findings}
	r := &restorer{src: s, path: path, format: format, unreadable: err, scratch: req.ScratchDir, status: req.Status}
	defer r.cleanup()
	res, err := r.run(ctx)
	if err != nil {
		return nil, err
	}
	cp.DataDir, cp.Major = r.dataDir, r.major
	cp.Findings = append(cp.Findings, res.finding())
	cp.Notes = append(cp.Notes, res.notes...)
	return cp, nil
}

// verify hashes the dump (every file of a directory dump, in name order) and compares a file
// dump's hash with its .sha256 sidecar when there is one.
func verify(ctx context.Context, path string) (checks.Finding, error) {
	h := sha256.New()
	fi, err := os.Stat(path)
	if err != nil {
		return checks.Finding{}, err
	}
	var files []string
	if fi.IsDir() {
		_ = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files = append(files, p)
			}
			return nil
		})
		slices.Sort(files)
	} else {
		files = []string{path}
	}
	var n int64
	for _, p := range files {
		if err := ctx.Err(); err != nil {
			return checks.Finding{}, err
		}
		if fi.IsDir() {
			rel, _ := filepath.Rel(path, p)
			h.Write([]byte(rel + "\x00"))
		}
		f, err := os.Open(p)
		if err != nil {
			return checks.Finding{}, fmt.Errorf("while hashing dump %s: %w", p, err)
		}
		m, err := io.Copy(h, ctxReader{ctx, f})
		f.Close()
		if err != nil {
			return checks.Finding{}, fmt.Errorf("while hashing dump %s: %w", p, err)
		}
		n += m
	}
	sum := hex.EncodeToString(h.Sum(nil))
	ev := checks.Evidence{"algorithm": "sha256", "sha256": sum, "bytes": n}
	if fi.IsDir() {
		return checks.Passf(drill.SnapshotIntegrityName, ev, "read %d files of the directory dump (no checksum to compare: a directory dump has no sidecar)", len(files)), nil
	}
	want, err := readSidecar(path + sidecarSuffix)
	switch {
	case os.IsNotExist(err):
		return checks.Passf(drill.SnapshotIntegrityName, ev, "read the whole dump (no %s sidecar to compare its SHA-256 with)", sidecarSuffix), nil
	case err != nil:
		return checks.Finding{}, err
	}
	ev["sidecar"] = path + sidecarSuffix
	ev["expected"] = want
	if !strings.EqualFold(want, sum) {
		return checks.Failf(drill.SnapshotIntegrityName, ev, "the dump's SHA-256 is %s, but its sidecar says %s: the file changed after it was written", sum, want), nil
	}
	return checks.Passf(drill.SnapshotIntegrityName, ev, "the dump's SHA-256 matches its sidecar"), nil
}

// readSidecar reads the first field of a sha256sum line.
func readSidecar(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 4096))
	if sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 0 {
			return fields[0], nil
		}
	}
	return "", fmt.Errorf("while reading checksum sidecar %s: no checksum in it", path)
}

var _ drill.Source = (*Source)(nil)
