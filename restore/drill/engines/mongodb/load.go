package mongodb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/drill"
)

// LoadName is the finding of loading a mongodump archive into the throwaway (mongorestore).
const LoadName = "load"

// dbDir is the empty dbpath a mongodump archive is loaded into, in the scratch directory.
const dbDir = "db"

// restoreTool finds mongorestore: on PATH for the local runtime, by name in the image for a
// container.
func restoreTool(kind string) (string, error) {
	p, err := exec.LookPath("mongorestore")
	if err == nil {
		return p, nil
	}
	if kind == "docker" {
		return "/usr/bin/mongorestore", nil
	}
	return "", fmt.Errorf("%w: mongorestore is not installed (MongoDB Database Tools), needed to load a mongodump archive; or use restore.runtime: docker with a mongo image", drill.ErrUnsupported)
}

// RestoreArgs are mongorestore's arguments to load archive into the mongod on sock: stop at
// the first error, validate every document's BSON, two collections at a time. Nothing is
// dropped: the database is empty.
func RestoreArgs(sock, archive string) []string {
	return []string{
		"--uri=" + URI(sock),
		"--archive=" + archive,
		"--stopOnError",
		"--objcheck",
		"--numParallelCollections=2",
	}
}

// restoredRE is mongorestore's summary line.
var restoredRE = regexp.MustCompile(`(\d+) document\(s\) restored successfully\. (\d+) document\(s\) failed to restore`)

// loadFinding judges mongorestore's run: its exit code, and its summary of restored and
// failed documents. A failure to load is a failure of the backup (the archive is damaged or
// not a mongodump archive), with the tool's last lines as evidence.
func loadFinding(out []byte, code int, runErr error, took time.Duration, l *drill.LogicalDump) checks.Finding {
	ev := checks.Evidence{"archive": filepath.Base(l.Path), "bytes": l.Bytes, "seconds": took.Seconds(), "exitCode": code}
	lines := drill.OutputTail(out, 15)
	ev["output"] = lines
	restored, failed := int64(-1), int64(-1)
	if m := restoredRE.FindSubmatch(out); m != nil {
		restored, _ = strconv.ParseInt(string(m[1]), 10, 64)
		failed, _ = strconv.ParseInt(string(m[2]), 10, 64)
		ev["restored"], ev["failed"] = restored, failed
	}
	switch {
	case code == -1 && runErr != nil:
		return checks.Errorf(LoadName, ev, "could not run mongorestore: %v", runErr)
	case code != 0:
		return checks.Failf(LoadName, ev, "mongorestore failed to load the archive (exit status %d): %s", code, lastNonEmpty(lines))
	case failed > 0:
		return checks.Failf(LoadName, ev, "mongorestore loaded %d documents but failed to restore %d", restored, failed)
	case restored < 0:
		return checks.Warnf(LoadName, ev, "mongorestore exited 0 but printed no summary of restored documents")
	}
	return checks.Passf(LoadName, ev, "mongorestore loaded %d documents from the archive in %.1fs", restored, took.Seconds())
}

// load waits for the empty throwaway, then loads the archive with mongorestore, run where
// the server runs. A load that fails stops and removes the server: nothing is left running.
func (s *Server) load(ctx context.Context, req drill.EngineStart) (checks.Finding, error) {
	tool, err := restoreTool(req.Runtime.Kind)
	if err != nil {
		return checks.Finding{}, err
	}
	if err := s.WaitReady(ctx, req.Status); err != nil {
		return checks.Finding{}, fmt.Errorf("while starting the empty mongod to load %s into: %w", filepath.Base(req.Copy.Logical.Path), err)
	}
	req.Status(fmt.Sprintf("loading %s (%d bytes) with mongorestore", filepath.Base(req.Copy.Logical.Path), req.Copy.Logical.Bytes))
	start := time.Now()
	out, code, err := s.Exec(ctx, tool, RestoreArgs(s.sock, req.Copy.Logical.Path)...)
	if ctx.Err() != nil {
		return checks.Finding{}, fmt.Errorf("while loading %s: %w", filepath.Base(req.Copy.Logical.Path), context.Cause(ctx))
	}
	return loadFinding(out, code, err, time.Since(start), req.Copy.Logical), nil
}

// emptyDBPath makes the dbpath a mongodump archive is loaded into.
func emptyDBPath(scratch string) (string, error) {
	p := filepath.Join(scratch, dbDir)
	if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("while making the empty dbpath %s: %w", p, err)
	}
	return p, nil
}

func lastNonEmpty(lines []string) string {
	if len(lines) == 0 {
		return "no output"
	}
	return lines[len(lines)-1]
}
