package local

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// RuntimeFile is the record, inside a drill's scratch directory, of the server started there:
// enough for a later firedrill to stop it when the drill that started it died (kill -9) or was
// kept (--keep).
const RuntimeFile = "runtime.json"

// Runtime kinds recorded in RuntimeFile.
const (
	// KindSandbox: HostPID is PID 1 of a PID namespace (the sandbox init); killing it ends every
	// process inside, and the IPC namespace takes the server's shared memory with it.
	KindSandbox = "sandbox"
	// KindProcess: HostPID is the postmaster itself, leader of its own process group, sharing
	// the host's IPC namespace (its SysV shared memory outlives it).
	KindProcess = "process"
)

// runtimeRecord is RuntimeFile's content.
type runtimeRecord struct {
	HostPID int    `json:"hostPid"`
	Kind    string `json:"kind"`
	// StartTicks is the process's start time (/proc/PID/stat, field 22): a later process that
	// reuses the pid has another, so a stale record never kills a stranger.
	StartTicks uint64    `json:"startTicks"`
	StartedAt  time.Time `json:"startedAt"`
	DataDir    string    `json:"dataDir"`
}

func writeRuntimeRecord(scratch string, rec runtimeRecord) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(scratch, RuntimeFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("while recording the server in %s: %w", scratch, err)
	}
	if err := os.Rename(tmp, filepath.Join(scratch, RuntimeFile)); err != nil {
		return fmt.Errorf("while recording the server in %s: %w", scratch, err)
	}
	return nil
}

// CleanupLeftover stops whatever a dead (or kept) drill left running on scratchDir and removes
// the SysV shared memory a non-isolated postmaster left behind. It does not remove the
// directory (the caller does, after this returns without error). stopped says, one line each,
// what was stopped or removed; it is empty when nothing was left.
//
// What it looks at, in order: RuntimeFile (the host pid of the sandbox init or postmaster,
// checked against its start time), then any live process whose command line names
// scratchDir (a server started before the record was written), then each postmaster.pid
// under scratchDir for its shared memory segment (only when the server shared the host's IPC
// namespace, and only a segment with no process attached, created by that postmaster).
func CleanupLeftover(ctx context.Context, scratchDir string) (stopped []string, err error) {
	abs, err := filepath.Abs(scratchDir)
	if err != nil {
		return nil, fmt.Errorf("while resolving %s: %w", scratchDir, err)
	}
	var errs []error
	kind := ""
	if rec, rerr := readRuntimeRecord(abs); rerr == nil {
		kind = rec.Kind
		if rec.HostPID > 0 && processStart(rec.HostPID) == rec.StartTicks && rec.StartTicks != 0 {
			if err := killAndWait(ctx, rec.HostPID); err != nil {
				errs = append(errs, err)
			} else {
				stopped = append(stopped, fmt.Sprintf("stopped %s server (host pid %d) started %s", rec.Kind, rec.HostPID, rec.StartedAt.UTC().Format(time.RFC3339)))
			}
		}
	} else if !errors.Is(rerr, fs.ErrNotExist) {
		errs = append(errs, rerr)
	}
	for _, pid := range processesNaming(abs) {
		if err := killAndWait(ctx, pid); err != nil {
			errs = append(errs, err)
			continue
		}
		stopped = append(stopped, fmt.Sprintf("stopped process %d running on %s", pid, abs))
	}
	if kind != KindSandbox {
		for _, pm := range postmasterFiles(abs) {
			line, err := removeSharedMemory(ctx, pm)
			if err != nil {
				errs = append(errs, err)
			}
			if line != "" {
				stopped = append(stopped, line)
			}
		}
	}
	return stopped, errors.Join(errs...)
}

func readRuntimeRecord(scratch string) (runtimeRecord, error) {
	var rec runtimeRecord
	b, err := os.ReadFile(filepath.Join(scratch, RuntimeFile))
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("while reading %s: %w", filepath.Join(scratch, RuntimeFile), err)
	}
	return rec, nil
}

// statFields returns the fields of /proc/PID/stat after the command name (field 3 onwards),
// nil when the process does not exist. The command name (field 2) may hold spaces and
// parentheses, so the fields count from the last ')'.
func statFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

// processStart returns field 22 of /proc/PID/stat, the start time (0 when the process does
// not exist).
func processStart(pid int) uint64 {
	f := statFields(pid)
	if len(f) < 20 {
		return 0
	}
	n, _ := strconv.ParseUint(f[19], 10, 64)
	return n
}

// processGroup returns the process group of pid, field 5 of /proc/PID/stat (0 if unknown).
func processGroup(pid int) int {
	f := statFields(pid)
	if len(f) < 3 {
		return 0
	}
	n, _ := strconv.Atoi(f[2])
	return n
}

// processesNaming lists live processes (not this one) whose command line names dir, or a path
// under it: a postmaster's "-D <dir>/clone/data", a sandbox init's scratch argument.
func processesNaming(dir string) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(b) == 0 {
			continue
		}
		for _, arg := range strings.Split(string(b), "\x00") {
			if arg == dir || strings.HasPrefix(arg, dir+"/") {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// killAndWait kills pid and its process group (when pid leads it) and waits until pid is gone.
func killAndWait(ctx context.Context, pid int) error {
	start := processStart(pid)
	if start == 0 {
		return nil
	}
	if processGroup(pid) == pid {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		// A zombie (not reaped by its parent) is dead for our purposes: its files are closed.
		if s := processStart(pid); s != start || processState(pid) == "Z" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("while waiting for leftover process %d to exit: %w", pid, ctx.Err())
		case <-deadline:
			return fmt.Errorf("leftover process %d still runs 10s after SIGKILL", pid)
		case <-tick.C:
		}
	}
}

func processState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// postmasterFiles finds postmaster.pid files a few levels under dir (clone/data/postmaster.pid).
func postmasterFiles(dir string) []string {
	var out []string
	base := strings.Count(dir, string(filepath.Separator))
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && strings.Count(p, string(filepath.Separator))-base > 3 {
			return filepath.SkipDir
		}
		if !d.IsDir() && d.Name() == "postmaster.pid" {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// postmasterPID is what postmaster.pid says (see PostgreSQL's miscadmin.h, LOCK_FILE_LINE_*).
type postmasterPID struct {
	pid    int
	shmKey int64
	shmID  int
	hasShm bool
}

func parsePostmasterPID(b []byte) postmasterPID {
	var pm postmasterPID
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch n {
		case 1:
			pm.pid, _ = strconv.Atoi(line)
		case 7: // "  5432001    131074": the segment's key and id
			f := strings.Fields(line)
			if len(f) == 2 {
				k, kerr := strconv.ParseInt(f[0], 10, 64)
				id, ierr := strconv.Atoi(f[1])
				pm.shmKey, pm.shmID, pm.hasShm = k, id, kerr == nil && ierr == nil
			}
		}
	}
	return pm
}

// removeSharedMemory removes the SysV segment a dead postmaster recorded, when it is still
// there, still carries the recorded key, was created by that postmaster, and nothing is
// attached to it (a live server always is). It waits briefly for dying backends to detach.
func removeSharedMemory(ctx context.Context, pidFile string) (string, error) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return "", fmt.Errorf("while reading %s: %w", pidFile, err)
	}
	pm := parsePostmasterPID(b)
	if !pm.hasShm {
		return "", nil
	}
	for try := 0; ; try++ {
		var d unix.SysvShmDesc
		if _, err := unix.SysvShmCtl(pm.shmID, unix.IPC_STAT, &d); err != nil {
			return "", nil // gone already (EINVAL/EIDRM) or not ours to see
		}
		if int64(d.Perm.Key) != pm.shmKey || int(d.Cpid) != pm.pid {
			return "", nil // the id was reused by another segment: not the dead server's
		}
		if d.Nattch == 0 {
			if _, err := unix.SysvShmCtl(pm.shmID, unix.IPC_RMID, nil); err != nil {
				return "", fmt.Errorf("while removing shared memory segment %d (key %d) of %s: %w", pm.shmID, pm.shmKey, pidFile, err)
			}
			return fmt.Sprintf("removed shared memory segment %d (key %d, %s) left by postmaster %d", pm.shmID, pm.shmKey, reportsBytes(d.Segsz), pm.pid), nil
		}
		if try >= 50 {
			return "", fmt.Errorf("shared memory segment %d (key %d) of %s still has %d process(es) attached: a server still runs on it", pm.shmID, pm.shmKey, pidFile, d.Nattch)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("while waiting for shared memory segment %d to be detached: %w", pm.shmID, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func reportsBytes(n uint64) string { return strconv.FormatUint(n, 10) + " bytes" }
