package mariadb

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/drill"
	enginemariadb "github.com/firedrill/firedrill/restore/engine/mariadb"
)

// PrepareName is the finding name of preparing a mariadb-backup copy.
const PrepareName = "prepare"

// backupLayout are the options of backup-my.cnf that describe the files' layout: a server
// started with other values cannot read them. Nothing else of the source's configuration is
// used (plugins, encryption keys, paths).
var backupLayout = []string{"innodb_page_size", "innodb_data_file_path", "innodb_undo_tablespaces"}

// backupState says whether dir is a mariadb-backup copy and whether it is prepared.
func backupState(dir string) (isBackup, prepared bool) {
	if _, err := os.Stat(filepath.Join(dir, "xtrabackup_checkpoints")); err != nil {
		_, cnfErr := os.Stat(filepath.Join(dir, "backup-my.cnf"))
		return cnfErr == nil, false
	}
	return true, enginemariadb.CheckpointsField(dir, "backup_type") == "full-prepared"
}

// layoutArgs are the server options backup-my.cnf records for the files' layout.
func layoutArgs(dir string) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, "backup-my.cnf"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("while reading backup-my.cnf: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok {
			continue
		}
		k = strings.ReplaceAll(strings.TrimSpace(k), "-", "_")
		v = strings.Trim(strings.TrimSpace(v), `"'`)
		for _, want := range backupLayout {
			if k == want && v != "" {
				out = append(out, "--"+strings.ReplaceAll(k, "_", "-")+"="+v)
			}
		}
	}
	return out, sc.Err()
}

// prepareOK is the last line mariadb-backup prints when it succeeded.
const prepareOK = "completed OK!"

// prepare runs mariadb-backup --prepare on the copy, through the runtime's Launch: like the
// server, the tool that reads the untrusted copy runs in the drill's sandbox as the scratch
// directory's owner. InnoDB's redo log copied with the files is applied, so the files are
// consistent at the backup's end. A tool that fails proves the copy cannot be restored (a Fail
// finding); one that could not run (missing, interrupted) proves nothing (an error).
func prepare(ctx context.Context, req drill.EngineStart, dataDir, tmp string) (f checks.Finding, err error) {
	tool, err := enginemariadb.FindBackupTool()
	if err != nil {
		return checks.Finding{}, fmt.Errorf("while preparing the mariadb-backup copy: %w", err)
	}
	fromLSN, endLSN := enginemariadb.CheckpointsField(dataDir, "to_lsn"), enginemariadb.CheckpointsField(dataDir, "last_lsn")
	started := time.Now()
	version := ""
	if req.Snapshot != nil {
		version = req.Snapshot.EngineVersion
	}
	proc, err := req.Launch(ctx, drill.LaunchSpec{Name: "mariadb-backup", Path: tool, Image: defaultImage(version),
		Args: []string{"--prepare", "--target-dir=" + dataDir, "--tmpdir=" + tmp}})
	if err != nil {
		return checks.Finding{}, fmt.Errorf("while starting mariadb-backup --prepare: %w", err)
	}
	defer func() {
		if rerr := proc.Remove(); rerr != nil && err == nil {
			err = fmt.Errorf("while removing mariadb-backup's process: %w", rerr)
		}
	}()
	select {
	case <-proc.Exited():
	case <-ctx.Done():
		_, _ = proc.Stop(5 * time.Second)
		return checks.Finding{}, fmt.Errorf("while running mariadb-backup --prepare: %w", ctx.Err())
	}
	lines := proc.LogEvidence(1 << 20)
	out := []byte(strings.Join(lines, "\n"))
	ev := checks.Evidence{"command": "mariadb-backup --prepare --target-dir=" + dataDir, "output": drill.OutputTail(out, 12)}
	f = checks.Finding{Check: PrepareName, Evidence: ev, Seconds: time.Since(started).Seconds()}
	if len(lines) == 0 || !strings.Contains(lines[len(lines)-1], prepareOK) {
		f.Status = checks.Fail
		f.Message = "mariadb-backup --prepare could not make the copy consistent: " + prepareReason(out)
		return f, nil
	}
	f.Status = checks.Pass
	f.Message = "mariadb-backup --prepare applied the copied redo log: the files are consistent at the end of the backup"
	if fromLSN != "" && endLSN != "" {
		ev["fromLSN"], ev["endLSN"] = fromLSN, endLSN
		f.Message += " (redo from LSN " + fromLSN + " to " + endLSN + ")"
	}
	return f, nil
}

// reasonRe matches the lines of mariadb-backup's output that say why it failed; noiseRe the
// ones it prints while exiting after a failure.
var (
	reasonRe = regexp.MustCompile(`(?i)\berror\b|corrupt|cannot|can't|failed|missing|mismatch`)
	noiseRe  = regexp.MustCompile(`left open|my_thread_global_end`)
)

// prepareReason is what the tool's output says of why it failed: its last [ERROR] line, else
// its last line that reads like a reason, else its last line.
func prepareReason(out []byte) string {
	lines := drill.OutputTail(out, 1000)
	for _, match := range []func(string) bool{
		func(l string) bool { return strings.Contains(l, "[ERROR]") },
		func(l string) bool { return reasonRe.MatchString(l) && !noiseRe.MatchString(l) },
	} {
		for i := len(lines) - 1; i >= 0; i-- {
			if l := strings.TrimSpace(lines[i]); match(l) {
				return l
			}
		}
	}
	return enginemariadb.Tail(out, 1)
}
