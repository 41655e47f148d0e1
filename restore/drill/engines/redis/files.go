package redis

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/engine/postgres"
)

// Finding names of the file checks run before the server starts.
const (
	CheckRDBName = "redis-check-rdb"
	CheckAOFName = "redis-check-aof"
)

// Where Redis keeps an append-only log: Redis 7's directory (with its manifest) or the single
// file of earlier versions.
const (
	aofDir      = "appendonlydir"
	aofFile     = "appendonly.aof"
	defaultRDB  = "dump.rdb"
	toolTailLen = 20
)

// ErrNoData means the copy holds neither an RDB nor an append-only file.
var ErrNoData = errors.New("no Redis data in the copy")

// dataFiles is what the copy holds for Redis to load.
type dataFiles struct {
	dir string
	// rdb is the RDB file name in dir; empty when the copy is an AOF.
	rdb string
	// aof is the AOF directory or legacy file name in dir; set when there is no RDB.
	aof string
}

// findData locates the RDB (the snapshot's rdbFile, default dump.rdb) or else the
// append-only file in the copy. The RDB wins: it is what this snapshot's BGSAVE wrote.
func findData(dir, rdbFile string) (dataFiles, error) {
	if rdbFile == "" {
		rdbFile = defaultRDB
	}
	d := dataFiles{dir: dir}
	if fi, err := os.Stat(filepath.Join(dir, rdbFile)); err == nil && fi.Mode().IsRegular() {
		d.rdb = rdbFile
		return d, nil
	}
	for _, name := range []string{aofDir, aofFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			d.aof = name
			return d, nil
		}
	}
	return d, fmt.Errorf("%w: %s holds no %s, %s or %s", ErrNoData, dir, rdbFile, aofDir, aofFile)
}

// toolDirs are where Redis's binaries are looked for after PATH.
var toolDirs = []string{"/usr/bin", "/usr/local/bin", "/usr/sbin"}

// findTool returns the absolute path of one of Redis's binaries.
func findTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs, nil
		}
	}
	for _, d := range toolDirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH or %s: install Redis's server package (apt-get install redis-server, or redis-tools for the check tools)", name, strings.Join(toolDirs, ", "))
}

// fileCheck is what redis-check-rdb or redis-check-aof said of the copy.
type fileCheck struct {
	finding checks.Finding
	// aux are the RDB's AUX fields (redis-ver, ctime, ...), from redis-check-rdb.
	aux map[string]string
	// keysRead is redis-check-rdb's count of the RDB's keys; -1 when it did not say.
	keysRead int64
}

// toolRunner runs one of Redis's tools (by its path in the runtime's image) where the server
// will run, returning its output and exit status (-1: it could not run).
type toolRunner func(ctx context.Context, tool string, args ...string) ([]byte, int, error)

// checkFiles runs redis-check-rdb on the RDB, or redis-check-aof on the append-only file,
// never with --fix: through run where the server runs in a container, else on the host as
// the copy's owner, before any sandbox exists. An exit status other than 0 is a copy Redis
// could not load: a failed finding with the tool's output as evidence.
func checkFiles(ctx context.Context, d dataFiles, runAs postgres.RunAs, run toolRunner) (fileCheck, error) {
	name, target := CheckRDBName, filepath.Join(d.dir, d.rdb)
	if d.rdb == "" {
		name, target = CheckAOFName, filepath.Join(d.dir, d.aof)
		if d.aof == aofDir {
			// Redis 7's checker takes the manifest and reads the files it names.
			m, err := filepath.Glob(filepath.Join(target, "*.manifest"))
			if err != nil || len(m) != 1 {
				return fileCheck{finding: checks.Failf(name, checks.Evidence{"dir": target, "manifests": m},
					"%s has %d manifest files, not one: Redis cannot load it", target, len(m))}, nil
			}
			target = m[0]
		}
	}
	if run != nil {
		tool := path.Join(imageBin, name)
		out, code, err := run(ctx, tool, target)
		switch {
		case ctx.Err() != nil:
			return fileCheck{}, fmt.Errorf("while running %s on %s: %w", name, target, context.Cause(ctx))
		case code < 0:
			return fileCheck{}, fmt.Errorf("while running %s on %s: %w", name, target, err)
		case code == 126 || code == 127:
			return fileCheck{}, fmt.Errorf("%w: %s could not be run in the runtime's image (exit %d: %s): set the image to one with Redis's tools", drill.ErrPlatform, name, code, toolError(outputLines(out)))
		}
		return judgeFiles(name, target, tool, d.rdb != "", out, code), nil
	}
	tool, err := findTool(name)
	if err != nil {
		return fileCheck{}, err
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, tool, target)
	cmd.Env, cmd.Dir = []string{"LC_ALL=C", "PATH=/usr/bin:/bin"}, d.dir
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: runAs.Credential(), Setpgid: true, Pdeathsig: syscall.SIGKILL}
	runErr := cmd.Run()
	var ee *exec.ExitError
	if runErr != nil && !errors.As(runErr, &ee) {
		return fileCheck{}, fmt.Errorf("while running %s on %s: %w", name, target, runErr)
	}
	if ctx.Err() != nil {
		return fileCheck{}, fmt.Errorf("while running %s on %s: %w", name, target, context.Cause(ctx))
	}
	code := 0
	if ee != nil {
		code = ee.ExitCode()
	}
	return judgeFiles(name, target, tool, d.rdb != "", out.Bytes(), code), nil
}

// judgeFiles turns a checker's output and exit status into the finding: any status but 0 is
// a copy Redis could not load.
func judgeFiles(name, target, tool string, rdb bool, out []byte, code int) fileCheck {
	lines := outputLines(out)
	ev := checks.Evidence{"file": target, "tool": tool, "output": tail(lines, toolTailLen)}
	fc := fileCheck{aux: auxFields(lines), keysRead: -1}
	// An AOF's check reads only its RDB preamble's keys: no count of the data.
	if n, ok := infoCount(lines, "keys read"); ok && rdb {
		ev["keysRead"] = n
		fc.keysRead = n
	}
	if code != 0 {
		ev["exitCode"] = code
		fc.finding = checks.Failf(name, ev, "%s found %s damaged: %s", name, filepath.Base(target), toolError(lines))
		return fc
	}
	fc.finding = checks.Passf(name, ev, "%s found %s sound", name, filepath.Base(target))
	return fc
}

func outputLines(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if l := strings.TrimRight(sc.Text(), "\r"); strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

func tail(lines []string, n int) []string {
	if len(lines) > n {
		return lines[len(lines)-n:]
	}
	return lines
}

// auxFields reads redis-check-rdb's "[offset 53] AUX FIELD ctime = '1796046352'" lines.
func auxFields(lines []string) map[string]string {
	out := map[string]string{}
	for _, l := range lines {
		_, rest, ok := strings.Cut(l, "AUX FIELD ")
		if !ok {
			continue
		}
		k, v, ok := strings.Cut(rest, " = ")
		if ok {
			out[k] = strings.Trim(v, "'")
		}
	}
	return out
}

// infoCount reads an "[info] 2 keys read" line.
func infoCount(lines []string, what string) (int64, bool) {
	for _, l := range lines {
		rest, ok := strings.CutPrefix(l, "[info] ")
		if !ok || !strings.HasSuffix(rest, " "+what) {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(rest, " "+what), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// toolError is the line of a checker's output that says what is wrong: the one after
// redis-check-rdb's "--- RDB ERROR DETECTED ---", else the last that is not an [info] count.
func toolError(lines []string) string {
	for i, l := range lines {
		if strings.Contains(l, "ERROR DETECTED") && i+1 < len(lines) {
			return stripOffset(lines[i+1])
		}
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if !strings.HasPrefix(lines[i], "[info]") && !strings.HasPrefix(lines[i], "[additional info]") {
			return stripOffset(lines[i])
		}
	}
	return "no output"
}

// stripOffset turns "[offset 103] Unexpected EOF" into "Unexpected EOF (at offset 103)".
func stripOffset(l string) string {
	if rest, ok := strings.CutPrefix(l, "[offset "); ok {
		if off, msg, ok := strings.Cut(rest, "] "); ok {
			return msg + " (at offset " + off + ")"
		}
	}
	return l
}
