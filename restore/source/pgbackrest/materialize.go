package pgbackrest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/source/basebackup"
	"github.com/firedrill/firedrill/restore/source/walarchive"
)

// VerifyName is the finding of `pgbackrest verify`: the repository's own checksums.
const VerifyName = drill.SnapshotIntegrityName

// Materialize verifies the backup, restores it into the scratch directory and stages the WAL
// recovery needs.
func (s *Source) Materialize(ctx context.Context, req drill.MaterializeRequest) (*drill.Copy, error) {
	lock, err := lockDirIn(req.ScratchDir)
	if err != nil {
		return nil, err
	}
	label := req.Snapshot.ID
	cp := &drill.Copy{}
	req.Status("pgbackrest verify of backup " + label)
	cp.Findings = append(cp.Findings, s.verify(ctx, label))

	data := filepath.Join(req.ScratchDir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		return nil, fmt.Errorf("while creating data directory %s: %w", data, err)
	}
	req.Status("pgbackrest restore of backup " + label)
	args := []string{"--set=" + label, "--pg1-path=" + data, "--archive-mode=off",
		// Tablespaces restore to their original paths otherwise: production's.
		"--tablespace-map-all=" + filepath.Join(req.ScratchDir, "tablespaces"), "--reset-pg1-host"}
	args = append(args, targetArgs(s.Recovery)...)
	if _, err := s.run(ctx, lock, "restore", args...); err != nil {
		return nil, err
	}
	cp.Milestones = append(cp.Milestones, reports.Milestone{Name: "pgbackrest-restored", At: time.Now().UTC(), Source: "pgbackrest"})
	cp.DataDir = data
	lb, err := os.ReadFile(filepath.Join(data, postgres.BackupLabelFile))
	if err != nil {
		return nil, fmt.Errorf("while reading the restored backup_label: %w", err)
	}
	cp.Files = map[string][]byte{postgres.BackupLabelFile: lb}
	bl, err := walarchive.ParseBackupLabel(lb)
	if err != nil {
		return nil, fmt.Errorf("while reading the restored backup_label: %w", err)
	}
	if cp.Major, err = postgres.ReadPGVersion(data); err != nil {
		return nil, err
	}
	bin, err := postgres.FindBinDir(cp.Major, s.BinDir)
	if err != nil {
		return nil, err
	}
	control, err := postgres.ControlData(ctx, bin, data)
	if err != nil {
		return nil, err
	}
	segBytes, _ := strconv.ParseInt(control["Bytes per WAL segment"], 10, 64)

	archiveID := req.Snapshot.Attributes[AttrArchiveID]
	req.Status("listing the WAL archive of stanza " + s.Stanza)
	files, err := s.archiveFiles(ctx, archiveID)
	if err != nil {
		return nil, err
	}
	arch := s.listing(ctx, archiveID, segBytes, files, lock, filepath.Join(req.ScratchDir, "wal-read"))
	where := arch.Dir
	from := walarchive.From{Timeline: bl.Timeline, StartLSN: bl.StartLSN}
	if stop, err := walarchive.ParseLSN(req.Snapshot.StopLSN); err == nil {
		from.StopLSN = stop
	}
	plan, perr := arch.Plan(from)
	continuity := basebackup.ContinuityFinding(where, from, plan, perr)
	if continuity.Status == checks.Error {
		return nil, perr
	}
	cp.Findings = append(cp.Findings, continuity)
	staging := filepath.Join(req.ScratchDir, "wal")
	if err := os.Mkdir(staging, 0o700); err != nil {
		return nil, fmt.Errorf("while creating WAL staging directory %s: %w", staging, err)
	}
	req.Status(fmt.Sprintf("fetching %d WAL files with pgbackrest archive-get", len(plan.Files)))
	for _, f := range plan.Files {
		if _, err := s.run(ctx, lock, "archive-get", f.Name, filepath.Join(staging, f.Name)); err != nil {
			return nil, fmt.Errorf("while fetching %s: %w", f.Name, err)
		}
	}
	cp.Milestones = append(cp.Milestones, reports.Milestone{Name: "wal-staged", At: time.Now().UTC(), Source: "firedrill"})
	cp.Recovery = &postgres.Recovery{StagingDir: staging, Target: s.Recovery}
	cp.Checks = []checks.Check{basebackup.NewTargetCheck(s.Recovery, plan, req.Snapshot.TakenAt)}
	cp.Notes = append(cp.Notes, fmt.Sprintf("restored pgBackRest backup %s of stanza %s and %d WAL segments fetched with archive-get (%s to %s, timeline %d) to recovery target %s",
		label, s.Stanza, plan.Segments, orNone(plan.First), orNone(plan.Last), plan.TargetTimeline, s.Recovery))
	return cp, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// targetArgs are restore's --type and --target for a recovery target (firedrill writes the
// recovery settings itself; these make pgBackRest's own record of the restore say the same).
func targetArgs(t postgres.RecoveryTarget) []string {
	switch t.Kind {
	case postgres.TargetImmediate:
		return []string{"--type=immediate", "--target-action=promote"}
	case postgres.TargetTime:
		return []string{"--type=time", "--target=" + t.Time.UTC().Format("2006-01-02 15:04:05.999999") + "+00", "--target-action=promote"}
	case postgres.TargetLSN:
		return []string{"--type=lsn", "--target=" + t.LSN, "--target-action=promote"}
	}
	return []string{"--type=default"}
}

// verify runs `pgbackrest verify` on the backup and its WAL: its report is the evidence.
func (s *Source) verify(ctx context.Context, label string) checks.Finding {
	out, err := s.run(ctx, "", "verify", "--output=text", "--verbose", "--set="+label)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	ev := checks.Evidence{"tool": "pgbackrest verify", "output": lines}
	var ee interface{ ExitCode() int }
	switch {
	case errors.Is(err, ErrNoBinary):
		return checks.Errorf(VerifyName, ev, "could not run pgbackrest verify: %v", err)
	case err != nil && errors.As(err, &ee):
		ev["error"] = err.Error()
		return checks.Failf(VerifyName, ev, "pgbackrest verify found problems in the repository: %s", firstProblem(lines, err))
	case err != nil:
		return checks.Errorf(VerifyName, ev, "could not run pgbackrest verify: %v", err)
	}
	for _, l := range lines {
		if strings.Contains(l, "status:") && !strings.Contains(l, "status: ok") && !strings.Contains(l, "status: valid") {
			return checks.Failf(VerifyName, ev, "pgbackrest verify: %s", strings.TrimSpace(l))
		}
	}
	return checks.Passf(VerifyName, ev, "pgbackrest verify found backup %s and its WAL valid (every file's checksum matches the repository's manifest)", label)
}

func firstProblem(lines []string, err error) string {
	for _, l := range lines {
		if strings.Contains(l, "status:") && !strings.Contains(l, "status: ok") && !strings.Contains(l, "status: valid") {
			return strings.TrimSpace(l)
		}
	}
	return err.Error()
}

// archiveFiles lists the stanza's WAL archive (repo-ls) under the names PostgreSQL gives
// the files: a segment is stored as <name>-<sha1>[.gz].
func (s *Source) archiveFiles(ctx context.Context, archiveID string) ([]walarchive.File, error) {
	if archiveID == "" {
		return nil, fmt.Errorf("pgbackrest info names no WAL archive for the backup")
	}
	out, err := s.run(ctx, "", "repo-ls", "--recurse", "--output=json", path.Join("archive", s.Stanza, archiveID))
	if err != nil {
		return nil, err
	}
	var entries map[string]struct {
		Type string `json:"type"`
		Size int64  `json:"size"`
		Time int64  `json:"time"`
	}
	if err := json.Unmarshal(out, &entries); err != nil {
		return nil, fmt.Errorf("while reading the WAL archive listing of stanza %s: %w", s.Stanza, err)
	}
	var files []walarchive.File
	for p, e := range entries {
		if e.Type != "file" {
			continue
		}
		name := path.Base(p)
		if len(name) > 25 && name[24] == '-' { // a segment: its name, '-', its SHA-1, a compression suffix
			name = name[:24]
		} else if i := strings.Index(name, ".partial-"); i > 0 {
			name = name[:i+len(".partial")]
		}
		if _, ok := walarchive.ParseName(name, walarchive.DefaultSegmentBytes); !ok {
			continue // archive.info and the like
		}
		files = append(files, walarchive.File{Name: name, Size: e.Size, ModTime: time.Unix(e.Time, 0)})
	}
	return files, nil
}

// listing is the stanza's WAL archive as a walarchive.Listing: files are read with
// archive-get into tmp.
func (s *Source) listing(ctx context.Context, archiveID string, segBytes int64, files []walarchive.File, lock, tmp string) *walarchive.Listing {
	where := fmt.Sprintf("pgBackRest stanza %s archive %s", s.Stanza, archiveID)
	return walarchive.NewListing(where, segBytes, files, func(f walarchive.File) (io.ReadCloser, error) {
		return s.fetchOpen(ctx, lock, f.Name, tmp)
	})
}

// Archive lists the WAL archive of a backup's database (its archiveId attribute) without
// restoring anything, for the audit's wal-continuity check: history files it reads are fetched
// into work, a directory the caller removes.
func (s *Source) Archive(ctx context.Context, archiveID, work string) (*walarchive.Listing, error) {
	files, err := s.archiveFiles(ctx, archiveID)
	if err != nil {
		return nil, err
	}
	lock := filepath.Join(work, "lock")
	if err := os.MkdirAll(lock, 0o700); err != nil {
		return nil, fmt.Errorf("while creating pgbackrest's lock directory %s: %w", lock, err)
	}
	return s.listing(ctx, archiveID, walarchive.DefaultSegmentBytes, files, lock, filepath.Join(work, "wal-read")), nil
}

// fetchOpen fetches one archive file with archive-get into dir and opens it; the file is
// removed once closed.
func (s *Source) fetchOpen(ctx context.Context, lock, name, dir string) (io.ReadCloser, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := filepath.Join(dir, name)
	if _, err := s.run(ctx, lock, "archive-get", name, p); err != nil {
		return nil, fmt.Errorf("while fetching %s: %w", name, err)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	return removeOnClose{f}, nil
}

type removeOnClose struct{ *os.File }

func (r removeOnClose) Close() error {
	err := r.File.Close()
	_ = os.Remove(r.Name())
	return err
}
