package dump

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/source/internal/s3objects"
)

// S3API is the part of an S3 client a dump source uses: listing, reading an object's
// checksums, downloading it.
type S3API = s3objects.API

// S3Location is where the dumps of an S3 source are: the objects under Prefix in Bucket (a
// dump's id is its key relative to Prefix).
type S3Location = s3objects.Location

// AttrKey is the object key of a dump downloaded from S3.
const AttrKey = "key"

// listS3 returns the objects under the prefix whose base name matches, newest first.
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
	for _, o := range objs {
		if !s.matches(path.Base(o.Rel)) {
			continue
		}
		out = append(out, snapshot.Metadata{ID: o.Rel, Target: s.Target, Engine: "postgres", Mode: "logical", Driver: Driver,
			TakenAt: o.Modified, FinishedAt: o.Modified, SizeBytes: o.Size, Status: "complete",
			Attributes: map[string]string{AttrKey: o.Key, "location": l.Where, postgres.AttrSuperuser: superuser}})
	}
	snapshot.SortNewestFirst(out)
	return out, nil
}

// getS3 returns the dump whose key relative to the prefix is id.
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
	return nil, fmt.Errorf("%w: no dump %q under %s", snapshot.ErrNotFound, id, s.S3.Where)
}

// download streams the object into dst, hashing it as it goes, and returns the finding of
// comparing its SHA-256 with every claim the store makes for it (s3objects.Location.Fetch):
// the object's own full-object checksum, the writer's sha256 metadata, a "<key>.sha256"
// sidecar object. A mismatch is a failed finding; a bucket that cannot be read is
// ErrPlatform; a sidecar that holds no SHA-256 is ErrCorrupt.
func (s *Source) download(ctx context.Context, id, dst string, status func(string)) (checks.Finding, error) {
	l := s.S3
	api, err := l.Connect(ctx)
	if err != nil {
		return checks.Finding{}, err
	}
	d, err := l.Fetch(ctx, api, id, dst, s3objects.Options{Sidecar: true}, status)
	if bad := (s3objects.BadSidecarError{}); errors.As(err, &bad) {
		return checks.Finding{}, fmt.Errorf("%w: %s", ErrCorrupt, bad)
	}
	if err != nil {
		return checks.Finding{}, err
	}
	return d.Finding(l, "dump"), nil
}

// materializeS3 downloads the dump into scratch, verifies it, restores it as a local file
// and removes the download.
func (s *Source) materializeS3(ctx context.Context, req drill.MaterializeRequest) (*drill.Copy, error) {
	dir := filepath.Join(req.ScratchDir, "download")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("while creating the download directory %s: %w", dir, err)
	}
	defer os.RemoveAll(dir) // the download never outlives the restore
	dst := filepath.Join(dir, path.Base(req.Snapshot.ID))
	integrity, err := s.download(ctx, req.Snapshot.ID, dst, req.Status)
	if errors.Is(err, ErrCorrupt) {
		integrity, err = checks.Failf(drill.SnapshotIntegrityName, checks.Evidence{"object": req.Snapshot.ID}, "%v", err), nil
	}
	if err != nil {
		return nil, err
	}
	return s.restoreFile(ctx, req, dst, []checks.Finding{integrity})
}
