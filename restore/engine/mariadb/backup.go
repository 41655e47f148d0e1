package mariadb

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/firedrill/firedrill/restore/engine"
)

// Attribute keys a mariadb-backup snapshot records besides the binary log position.
const (
	// AttrBackupTool names the tool that wrote the copy ("mariadb-backup"); a drill prepares
	// the copy with the same tool before starting a server on it.
	AttrBackupTool = "backupTool"
	// AttrBackupToLSN is xtrabackup_checkpoints' to_lsn: the checkpoint --prepare starts
	// applying the copied redo log from.
	AttrBackupToLSN = "backupToLSN"
	// AttrBackupLastLSN is its last_lsn: the end of the copied redo log, the LSN the prepared
	// copy is consistent at.
	AttrBackupLastLSN = "backupLastLSN"
)

// BackupTool is the tool local snapshots are taken with; its version must match the server's.
const BackupTool = "mariadb-backup"

// ErrNoBackupTool means mariadb-backup is not installed where firedrill runs.
var ErrNoBackupTool = errors.New("mariadb-backup is not installed")

// BinlogInfoFiles are the files mariadb-backup writes the binary log position of the copy to,
// by server version (older ones write the first, newer the second).
var BinlogInfoFiles = []string{"xtrabackup_binlog_info", "mariadb_backup_binlog_info"}

// FindBackupTool returns the path of mariadb-backup (mariabackup on older packages).
func FindBackupTool() (string, error) {
	for _, name := range []string{BackupTool, "mariabackup"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		for _, dir := range []string{"/usr/bin", "/usr/local/bin"} {
			p := filepath.Join(dir, name)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("%w: install the package of the same version as the server (Debian: mariadb-backup)", ErrNoBackupTool)
}

// Backup runs mariadb-backup --backup: InnoDB's redo log is copied alongside the files and the
// non-InnoDB tables under BACKUP STAGE locks, so the copy is consistent without a file-level
// freeze once prepared (mariadb-backup --prepare, which a drill runs on its scratch copy).
type Backup struct {
	// Tool is mariadb-backup's path.
	Tool string
	// Config is the production connection; its password goes to the tool in an option file
	// readable only by firedrill, never on a command line.
	Config *mysql.Config
	// DataDir is the server's data directory, as the server reports it.
	DataDir string
	Now     func() time.Time
}

// Run writes a consistent copy into dest (which must be empty or missing) and returns the
// binary log position the copy ends at, read from the tool's binlog info file.
func (b *Backup) Run(ctx context.Context, dest string) (*engine.Frozen, error) {
	now := b.Now
	if now == nil {
		now = time.Now
	}
	dir, err := os.MkdirTemp("", "fd-mariadb-backup-")
	if err != nil {
		return nil, fmt.Errorf("while creating a private directory for mariadb-backup's options: %w", err)
	}
	defer os.RemoveAll(dir)
	cnf := filepath.Join(dir, "client.cnf")
	if err := os.WriteFile(cnf, optionFile(b.Config), 0o600); err != nil {
		return nil, fmt.Errorf("while writing mariadb-backup's option file: %w", err)
	}
	// --defaults-file must come first, and is the only option file read: the host's my.cnf
	// may name another server's socket; the server's own settings (InnoDB paths, page size)
	// the tool reads over the connection.
	cmd := exec.CommandContext(ctx, b.Tool, "--defaults-file="+cnf, "--backup",
		"--target-dir="+dest, "--datadir="+b.DataDir)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin:/usr/sbin:/sbin", "TMPDIR=" + dir}
	cmd.WaitDelay = 10 * time.Second
	started := now()
	out, err := cmd.CombinedOutput()
	ended := now()
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("while running mariadb-backup --backup: %w", ctx.Err())
		}
		return nil, fmt.Errorf("while running mariadb-backup --backup: %w: %s", err, Tail(scrub(out, b.Config.Passwd), 8))
	}
	attrs := map[string]string{AttrLockMode: "mariadb-backup", AttrBackupTool: BackupTool}
	pos, err := ReadBinlogInfo(dest)
	if err != nil {
		return nil, err
	}
	for k, v := range pos {
		attrs[k] = v
	}
	for attr, field := range map[string]string{AttrBackupToLSN: "to_lsn", AttrBackupLastLSN: "last_lsn"} {
		if v := CheckpointsField(dest, field); v != "" {
			attrs[attr] = v
		}
	}
	return &engine.Frozen{StartedAt: started, EndedAt: ended, Attributes: attrs}, nil
}

// ReadBinlogInfo reads the binary log position mariadb-backup recorded in dir (file, position
// and, on MariaDB, the GTID position), under the freezer's attribute keys. No binlog info
// file (binary logging off) is no position, not an error.
func ReadBinlogInfo(dir string) (map[string]string, error) {
	for _, name := range BinlogInfoFiles {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("while reading %s: %w", name, err)
		}
		return parseBinlogInfo(string(b))
	}
	return map[string]string{}, nil
}

// parseBinlogInfo parses "binlog.000003\t1234\t0-1-56" (the GTID position is optional).
func parseBinlogInfo(s string) (map[string]string, error) {
	fields := strings.Fields(s)
	out := map[string]string{}
	if len(fields) == 0 {
		return out, nil
	}
	if len(fields) < 2 {
		return nil, fmt.Errorf("while reading mariadb-backup's binlog info: %q has no position", strings.TrimSpace(s))
	}
	if _, err := strconv.ParseUint(fields[1], 10, 64); err != nil {
		return nil, fmt.Errorf("while reading mariadb-backup's binlog info: position %q: %w", fields[1], err)
	}
	out[AttrBinlogFile], out[AttrBinlogPosition] = fields[0], fields[1]
	out[AttrBinlogExact] = "true"
	if len(fields) > 2 {
		out[AttrGTIDBinlogPos] = strings.Join(fields[2:], "")
	}
	return out, nil
}

// CheckpointsField reads a field of a mariadb-backup directory's xtrabackup_checkpoints
// (backup_type, to_lsn, last_lsn); "" when absent.
func CheckpointsField(dir, name string) string {
	f, err := os.Open(filepath.Join(dir, "xtrabackup_checkpoints"))
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// optionFile is a [client] group reaching the server of cfg. Values are quoted and escaped
// the way the server's option file parser unescapes them.
func optionFile(cfg *mysql.Config) []byte {
	var b strings.Builder
	b.WriteString("[client]\n")
	kv := func(k, v string) { fmt.Fprintf(&b, "%s=%s\n", k, quoteOption(v)) }
	if cfg.User != "" {
		kv("user", cfg.User)
	}
	if cfg.Passwd != "" {
		kv("password", cfg.Passwd)
	}
	switch cfg.Net {
	case "unix":
		kv("socket", cfg.Addr)
	default:
		host, port, err := net.SplitHostPort(cfg.Addr)
		if err != nil {
			host, port = cfg.Addr, "3306"
		}
		if host == "" || host == "localhost" {
			// The client library takes "localhost" for its default socket.
			host = "127.0.0.1"
		}
		kv("host", host)
		kv("port", port)
		kv("protocol", "tcp")
	}
	return []byte(b.String())
}

func quoteOption(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	return `"` + r.Replace(v) + `"`
}

// scrub hides a secret in tool output before it reaches an error.
func scrub(out []byte, secret string) []byte {
	if secret == "" {
		return out
	}
	return bytes.ReplaceAll(out, []byte(secret), []byte("[redacted]"))
}

// Tail returns the last n non-empty lines of a tool's output, joined with " | ".
func Tail(out []byte, n int) string {
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
