package drill

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/snapshot"
)

// Source is where a drill gets backups from: it lists a target's restorable backups newest
// first and materialises one where a runtime can mount it. The local snapshot repository
// (Repository) materialises into the drill's scratch directory; CSI VolumeSnapshots
// (restore/source/volumesnapshot) into scratch PVCs.
type Source interface {
	List(ctx context.Context) ([]snapshot.Metadata, error)
	Get(ctx context.Context, id string) (*snapshot.Metadata, error)
	// Materialize makes a restorable copy of a backup. A source that copies files puts them in
	// the request's scratch directory; one that makes objects labels them with the drill id.
	Materialize(ctx context.Context, req MaterializeRequest) (*Copy, error)
}

// MaterializeRequest is one backup to materialise for one drill.
type MaterializeRequest struct {
	Snapshot *snapshot.Metadata
	DrillID  string
	Target   string
	// ScratchDir is the drill's private directory: created, empty, owned by the runtime's user.
	ScratchDir string
	// Status hears what materialising waits for; never nil.
	Status func(string)
}

// Copy is a materialised backup: where it is and what materialising it proved.
type Copy struct {
	// DataDir is a local copy of the data directory (local repository); empty otherwise.
	DataDir string
	// Volumes are scratch volumes holding the copy (CSI: PVCs in the scratch namespace).
	Volumes []Volume
	// Major is the engine's major version when the source knows it without reading the copy.
	Major string
	// Files are the engine's files from backup time (backup_label, tablespace_map).
	Files map[string][]byte
	// Clean is a cleanly shut down cluster (one a logical dump was restored into): it has no
	// backup_label and starts as is.
	Clean bool
	// Tablespaces maps a tablespace OID to its restored location (local copies).
	Tablespaces map[string]string
	// Findings are what materialising proved or disproved (the manifest's SHA-256s).
	Findings []checks.Finding
	// FileHashes are the SHA-256s of the copy's data files, by data-directory path
	// ("base/5/16397.1"), each read while materialising and matched against the snapshot's
	// manifest; nil: the source keeps no per-file hashes. Incremental amcheck compares them
	// with the baseline's.
	FileHashes map[string]string
	// Damaged means materialising proved the backup damaged (a Fail among Findings, such as
	// a checksum sidecar that disagrees): nothing is started on the copy.
	Damaged bool
	// Notes say what a reader of the result must know (no backup label: crash-consistent).
	Notes []string
	// Milestones are when materialising reached its steps, by the platform's clocks.
	Milestones []reports.Milestone
	// Release removes what materialising made outside the scratch directory (scratch PVCs,
	// bound snapshot copies). It must work after ctx is cancelled; nil: nothing to remove.
	Release func(ctx context.Context) error
	// Recovery replays WAL the source staged in the scratch directory to a recovery target
	// (a base backup with its WAL archive); nil: the copy recovers from its own pg_wal.
	Recovery *postgres.Recovery
	// Checks run once the copy has recovered, before the configured checks: what only the
	// source can judge (the point a WAL replay reached, the achieved RPO).
	Checks []checks.Check
	// Logical is a logical dump of a registered engine (mariadb-dump SQL, a mongodump
	// archive) materialised in the scratch directory: the engine starts an empty server and
	// loads it. DataDir is then empty.
	Logical *LogicalDump
}

// LogicalDump is a logical dump file in the scratch directory, ready to load.
type LogicalDump struct {
	// Path is the file, decompressed, in the scratch directory.
	Path string
	// Format is what loads it: LogicalSQL (the mariadb client), LogicalMongoArchive
	// (mongorestore --archive).
	Format string
	// Bytes is the file's size.
	Bytes int64
}

// Formats of logical dumps (LogicalDump.Format).
const (
	LogicalSQL          = "sql"
	LogicalMongoArchive = "mongodump-archive"
)

func (c *Copy) recovery() *postgres.Recovery {
	if c == nil {
		return nil
	}
	return c.Recovery
}

// Volume is one scratch volume of a copy.
type Volume struct {
	// Role is the volume's role in the database ("data", "wal").
	Role      string
	Namespace string
	Claim     string
	// Snapshot is the VolumeSnapshot the claim was restored from (in Namespace).
	Snapshot string
}

// Repository materialises snapshots of a local snapshot repository (restore/snapshot/local):
// a verified file-by-file clone into the scratch directory.
func Repository(repo interface {
	List(ctx context.Context) ([]snapshot.Metadata, error)
	Get(ctx context.Context, id string) (*snapshot.Metadata, error)
	Clone(ctx context.Context, id, dest string, status func(string)) (*snapshot.CloneResult, error)
}) Source {
	return repositorySource{repo}
}

type repositorySource struct {
	repo interface {
		List(ctx context.Context) ([]snapshot.Metadata, error)
		Get(ctx context.Context, id string) (*snapshot.Metadata, error)
		Clone(ctx context.Context, id, dest string, status func(string)) (*snapshot.CloneResult, error)
	}
}

func (s repositorySource) List(ctx context.Context) ([]snapshot.Metadata, error) {
	return s.repo.List(ctx)
}

func (s repositorySource) Get(ctx context.Context, id string) (*snapshot.Metadata, error) {
	return s.repo.Get(ctx, id)
}

// ListAll lists damaged snapshots too, when the repository can tell.
func (s repositorySource) ListAll(ctx context.Context) ([]snapshot.Metadata, error) {
	if all, ok := s.repo.(interface {
		ListAll(ctx context.Context) ([]snapshot.Metadata, error)
	}); ok {
		return all.ListAll(ctx)
	}
	return s.repo.List(ctx)
}

func (s repositorySource) Materialize(ctx context.Context, req MaterializeRequest) (*Copy, error) {
	clone, err := s.repo.Clone(ctx, req.Snapshot.ID, filepath.Join(req.ScratchDir, "clone"), req.Status)
	if err != nil {
		return nil, fmt.Errorf("while cloning snapshot %s into %s: %w", req.Snapshot.ID, req.ScratchDir, err)
	}
	return &Copy{DataDir: clone.DataDir, Files: clone.Files, Tablespaces: clone.TablespaceLocations(),
		Findings: []checks.Finding{integrityFinding(clone)}, FileHashes: clone.Hashes}, nil
}

// Lazy is a source built on first use, so that a client that cannot be built (no kubeconfig)
// is the drill's error (exit 3), not the command's.
func Lazy(build func() (Source, error)) Source { return &lazySource{build: build} }

type lazySource struct {
	build func() (Source, error)
	src   Source
	err   error
	done  bool
}

func (l *lazySource) get() (Source, error) {
	if !l.done {
		l.src, l.err = l.build()
		l.done = true
	}
	return l.src, l.err
}

func (l *lazySource) List(ctx context.Context) ([]snapshot.Metadata, error) {
	s, err := l.get()
	if err != nil {
		return nil, err
	}
	return s.List(ctx)
}

func (l *lazySource) Get(ctx context.Context, id string) (*snapshot.Metadata, error) {
	s, err := l.get()
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, id)
}

func (l *lazySource) Materialize(ctx context.Context, req MaterializeRequest) (*Copy, error) {
	s, err := l.get()
	if err != nil {
		return nil, err
	}
	return s.Materialize(ctx, req)
}
