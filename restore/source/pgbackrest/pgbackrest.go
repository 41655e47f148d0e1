package pgbackrest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/source/basebackup"
)

// Driver is the snapshot driver name a pgBackRest backup's metadata carries.
const Driver = "pgbackrest"

// Attribute keys of a pgBackRest backup's metadata.
const (
	AttrType      = "type" // full, diff, incr
	AttrArchiveID = "archiveId"
	AttrError     = "pageChecksumErrors"
)

// ErrNoBinary means pgbackrest is not installed where firedrill runs: the drill could not
// check (exit 3). It is a drill.ErrPlatform that says only what is missing.
var ErrNoBinary error = noBinary{}

type noBinary struct{}

func (noBinary) Error() string { return "pgbackrest is not installed" }
func (noBinary) Unwrap() error { return drill.ErrPlatform }

// Source lists and restores one stanza's backups.
type Source struct {
	Target string
	Stanza string
	// Config is a pgbackrest.conf; empty: pgBackRest's default (/etc/pgbackrest/pgbackrest.conf).
	Config string
	// RepoPath overrides repo1-path (a posix repository).
	RepoPath string
	Recovery postgres.RecoveryTarget
	// BinDir overrides the PostgreSQL binaries found for the backup's version.
	BinDir string
	// Command is the pgbackrest binary; empty: pgbackrest on PATH.
	Command string
}

// command builds a pgbackrest invocation. lockDir, when set, keeps the command's lock files
// out of the repository host's lock path (only commands that take a lock accept it).
func (s *Source) command(ctx context.Context, lockDir, name string, args ...string) (*exec.Cmd, error) {
	bin := s.Command
	if bin == "" {
		bin = "pgbackrest"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("%w (%v): install Debian's pgbackrest package where firedrill runs", ErrNoBinary, err)
	}
	opts := []string{"--stanza=" + s.Stanza, "--log-level-file=off", "--log-level-console=off", "--log-level-stderr=warn"}
	if s.Config != "" {
		opts = append(opts, "--config="+s.Config)
	}
	if s.RepoPath != "" {
		opts = append(opts, "--repo1-path="+s.RepoPath)
	}
	if lockDir != "" {
		opts = append(opts, "--lock-path="+lockDir)
	}
	cmd := exec.CommandContext(ctx, path, append(append(opts, name), args...)...)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin", "TZ=UTC"}
	return cmd, nil
}

// run runs a pgbackrest command and returns its standard output.
func (s *Source) run(ctx context.Context, lockDir, name string, args ...string) ([]byte, error) {
	cmd, err := s.command(ctx, lockDir, name, args...)
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("while running pgbackrest %s for stanza %s: %w: %s", name, s.Stanza, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// info is the part of `pgbackrest info --output=json` firedrill reads.
type info struct {
	Name   string `json:"name"`
	Status struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"status"`
	DB []struct {
		ID       int         `json:"id"`
		SystemID json.Number `json:"system-id"`
		Version  string      `json:"version"`
	} `json:"db"`
	Archive []struct {
		ID       string `json:"id"`
		Min, Max string
		Database struct {
			ID int `json:"id"`
		} `json:"database"`
	} `json:"archive"`
	Backup []backupInfo `json:"backup"`
}

type backupInfo struct {
	Label   string `json:"label"`
	Type    string `json:"type"`
	Error   *bool  `json:"error"`
	Archive struct {
		Start, Stop string
	} `json:"archive"`
	Info struct {
		Size       int64 `json:"size"`
		Repository struct {
			Size int64 `json:"size"`
		} `json:"repository"`
	} `json:"info"`
	LSN struct {
		Start, Stop string
	} `json:"lsn"`
	Timestamp struct {
		Start, Stop int64
	} `json:"timestamp"`
	Database struct {
		ID int `json:"id"`
	} `json:"database"`
}

func (s *Source) info(ctx context.Context) (*info, error) {
	lock, err := os.MkdirTemp("", "firedrill-pgbackrest-")
	if err != nil {
		return nil, fmt.Errorf("while creating a lock directory: %w", err)
	}
	defer os.RemoveAll(lock)
	out, err := s.run(ctx, lock, "info", "--output=json")
	if err != nil {
		return nil, err
	}
	var all []info
	if err := json.Unmarshal(out, &all); err != nil {
		return nil, fmt.Errorf("while reading pgbackrest info of stanza %s: %w", s.Stanza, err)
	}
	for i := range all {
		if all[i].Name == s.Stanza {
			if all[i].Status.Code != 0 && len(all[i].Backup) == 0 {
				return nil, fmt.Errorf("pgbackrest info of stanza %s: %s (status %d)", s.Stanza, all[i].Status.Message, all[i].Status.Code)
			}
			return &all[i], nil
		}
	}
	return nil, fmt.Errorf("pgbackrest knows no stanza %s", s.Stanza)
}

// List returns the stanza's backups, newest first.
func (s *Source) List(ctx context.Context) ([]snapshot.Metadata, error) {
	inf, err := s.info(ctx)
	if err != nil {
		return nil, err
	}
	var out []snapshot.Metadata
	for _, b := range inf.Backup {
		m := s.describe(inf, b)
		if basebackup.Reaches(s.Recovery, m) {
			out = append(out, m)
		}
	}
	snapshot.SortNewestFirst(out)
	return out, nil
}

// Get returns the backup with label id.
func (s *Source) Get(ctx context.Context, id string) (*snapshot.Metadata, error) {
	inf, err := s.info(ctx)
	if err != nil {
		return nil, err
	}
	for _, b := range inf.Backup {
		if b.Label == id {
			m := s.describe(inf, b)
			return &m, nil
		}
	}
	return nil, fmt.Errorf("%w: stanza %s has no backup %q", snapshot.ErrNotFound, s.Stanza, id)
}

func (s *Source) describe(inf *info, b backupInfo) snapshot.Metadata {
	attrs := map[string]string{AttrType: b.Type, postgres.AttrSuperuser: "postgres"}
	version := ""
	for _, db := range inf.DB {
		if db.ID == b.Database.ID {
			attrs[postgres.AttrSystemID], version = db.SystemID.String(), db.Version
		}
	}
	for _, a := range inf.Archive {
		if a.Database.ID == b.Database.ID {
			attrs[AttrArchiveID] = a.ID
		}
	}
	m := snapshot.Metadata{ID: b.Label, Target: s.Target, Engine: "postgres", EngineVersion: version, Mode: "pgbackrest-" + b.Type, Driver: Driver,
		StartedAt: time.Unix(b.Timestamp.Start, 0).UTC(), FinishedAt: time.Unix(b.Timestamp.Stop, 0).UTC(),
		TakenAt: time.Unix(b.Timestamp.Stop, 0).UTC(), SizeBytes: b.Info.Size, StartLSN: b.LSN.Start, StopLSN: b.LSN.Stop,
		Attributes: attrs, Status: "complete"}
	if len(b.Archive.Start) == 24 {
		if tli, err := strconv.ParseUint(b.Archive.Start[:8], 16, 32); err == nil {
			m.Timeline = int(tli)
		}
	}
	if b.Error != nil && *b.Error {
		attrs[AttrError] = "true" // pgBackRest found page checksum errors while backing up
	}
	return m
}

var _ drill.Source = (*Source)(nil)

func lockDirIn(scratch string) (string, error) {
	d := filepath.Join(scratch, "pgbackrest-lock")
	if err := os.Mkdir(d, 0o700); err != nil {
		return "", fmt.Errorf("while creating pgbackrest's lock directory %s: %w", d, err)
	}
	return d, nil
}
