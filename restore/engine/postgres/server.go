package postgres

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNoSuchUser means the configured runAsUser is not a user of this machine.
var ErrNoSuchUser = errors.New("no such user")

// ErrServerExited means the postmaster exited before it accepted connections.
var ErrServerExited = errors.New("PostgreSQL server exited")

// RunAs is the operating-system user a server runs as. The zero value means the current user.
type RunAs struct {
	Name string
	UID  uint32
	GID  uint32
	set  bool
}

// Credential returns the credential for exec, nil for the current user.
func (r RunAs) Credential() *syscall.Credential {
	if !r.set {
		return nil
	}
	return &syscall.Credential{Uid: r.UID, Gid: r.GID, NoSetGroups: true}
}

// NewRunAs is a run-as user known by its ids (the name is for messages only): a sandbox uid
// that no account has.
func NewRunAs(name string, uid, gid uint32) RunAs {
	return RunAs{Name: name, UID: uid, GID: gid, set: true}
}

// IsCurrent reports whether the server runs as the current user.
func (r RunAs) IsCurrent() bool { return !r.set }

// Chown hands a path to the run-as user (no-op for the current user).
func (r RunAs) Chown(path string) error {
	if !r.set {
		return nil
	}
	return os.Lchown(path, int(r.UID), int(r.GID))
}

// ChownTree hands a whole tree to the run-as user.
func (r RunAs) ChownTree(root string) error {
	if !r.set {
		return nil
	}
	return filepath.WalkDir(root, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(r.UID), int(r.GID))
	})
}

// ResolveRunAs picks the user a server runs as. PostgreSQL refuses to run as root, so when
// firedrill runs as root the server runs as name (default "postgres", else "nobody").
func ResolveRunAs(name string) (RunAs, error) {
	if os.Geteuid() != 0 {
		if name != "" {
			if u, err := user.Current(); err == nil && u.Username != name {
				return RunAs{}, fmt.Errorf("runAsUser %q needs root (firedrill runs as %q); leave it empty to run as the current user", name, u.Username)
			}
		}
		return RunAs{}, nil
	}
	candidates := []string{name}
	if name == "" {
		candidates = []string{"postgres", "nobody"}
	}
	for _, n := range candidates {
		u, err := user.Lookup(n)
		if err != nil && name != "" {
			return RunAs{}, fmt.Errorf("%w: runAsUser %q does not exist on this machine: create it (useradd --system %s) or set restore.local.runAsUser to an existing unprivileged user: %w", ErrNoSuchUser, name, name, err)
		}
		if err != nil {
			continue
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		if uid == 0 {
			return RunAs{}, fmt.Errorf("runAsUser %q is root; PostgreSQL refuses to run as root: name an unprivileged user", n)
		}
		return RunAs{Name: n, UID: uint32(uid), GID: uint32(gid), set: true}, nil
	}
	return RunAs{}, fmt.Errorf("no unprivileged user to run PostgreSQL as (tried %s): create one (useradd --system postgres) or set restore.local.runAsUser", strings.Join(candidates, ", "))
}

// InitDBOptions configures InitDB.
type InitDBOptions struct {
	BinDir        string
	DataDir       string
	Superuser     string
	DataChecksums bool
	RunAs         RunAs
}

// InitDB creates a new cluster in opts.DataDir.
func InitDB(ctx context.Context, opts InitDBOptions) error {
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return fmt.Errorf("while creating data directory %s: %w", opts.DataDir, err)
	}
	if err := opts.RunAs.Chown(opts.DataDir); err != nil {
		return fmt.Errorf("while handing data directory %s to %s: %w", opts.DataDir, opts.RunAs.Name, err)
	}
	args := []string{"-D", opts.DataDir, "-U", orDefault(opts.Superuser, "postgres"), "--auth=trust", "--no-sync", "--no-instructions", "-E", "UTF8", "--locale=C"}
	if opts.DataChecksums {
		args = append(args, "--data-checksums")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(opts.BinDir, "initdb"), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: opts.RunAs.Credential(), Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Dir = opts.DataDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("while running initdb in %s: %w: %s", opts.DataDir, err, lastLines(string(out), 5))
	}
	return nil
}

// Server is a PostgreSQL postmaster that firedrill started and owns. It is not bound to a
// context: it runs until Stop, so that teardown can stop it cleanly after a cancellation.
type Server struct {
	BinDir  string
	DataDir string
	// SocketDir is where the unix socket lives; connections go through it.
	SocketDir string
	Port      int
	// ListenAddresses is "" (unix socket only, the default) or "127.0.0.1".
	ListenAddresses string
	RunAs           RunAs
	// IsolateNetwork starts the server in a new, empty network namespace (root only): it can
	// then open no network connection at all, not even to localhost.
	IsolateNetwork bool
	// LogFile receives the server's log (stderr).
	LogFile string
	// Settings are passed as -c name=value, after the configuration file.
	Settings map[string]string
	// Detached servers survive firedrill's exit (for --keep); others are killed with it.
	Detached bool
	// Launch, when set, starts the postmaster's command another way (inside a sandbox that
	// applies its own user, namespaces and lifetime) and returns the process to wait for and
	// signal; its exit status must be the postmaster's.
	Launch func(cmd *exec.Cmd) (*exec.Cmd, error)

	cmd  *exec.Cmd
	done chan struct{}
	logf *os.File
}

// Start launches the postmaster. It returns once the process runs; use WaitReady to wait until
// it accepts connections (after any recovery).
func (s *Server) Start(ctx context.Context) error {
	if s.Port == 0 {
		s.Port = 5432
	}
	if s.SocketDir == "" {
		s.SocketDir = s.DataDir
	}
	args := []string{"-D", s.DataDir,
		"-c", "port=" + strconv.Itoa(s.Port),
		"-c", "unix_socket_directories=" + s.SocketDir,
		"-c", "listen_addresses=" + s.ListenAddresses,
	}
	for k, v := range s.Settings {
		args = append(args, "-c", k+"="+v)
	}
	logf, err := os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("while opening server log %s: %w", s.LogFile, err)
	}
	cmd := exec.Command(filepath.Join(s.BinDir, "postgres"), args...)
	cmd.Dir = s.DataDir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "TZ=UTC"}
	attr := &syscall.SysProcAttr{Credential: s.RunAs.Credential(), Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if s.Detached {
		attr.Pdeathsig = 0
	}
	if s.IsolateNetwork {
		attr.Cloneflags = syscall.CLONE_NEWNET
	}
	cmd.SysProcAttr = attr
	if s.Launch != nil {
		started, err := s.Launch(cmd)
		if err != nil {
			logf.Close()
			return fmt.Errorf("while starting postgres on %s: %w", s.DataDir, err)
		}
		cmd = started
	} else if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("while starting postgres on %s: %w", s.DataDir, err)
	}
	s.cmd, s.logf, s.done = cmd, logf, make(chan struct{})
	go func() {
		_ = cmd.Wait() // how it ended is in the server log, which callers read
		logf.Close()
		close(s.done)
	}()
	return nil
}

// Running reports whether the postmaster is still running.
func (s *Server) Running() bool {
	if s.done == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// PID is the postmaster's process id (0 before Start); for a launched server, the host pid of
// the process Launch returned (a sandbox's init).
func (s *Server) PID() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// ConnString returns a keyword/value connection string for user and database over the socket.
func (s *Server) ConnString(user, database string) string {
	return SocketConnString(s.SocketDir, s.Port, user, database)
}

// WaitReady waits until the server accepts connections as user and has left recovery. status
// is told what it waits for (may be nil). If the postmaster exits first, the error wraps
// ErrServerExited and carries the last lines of the server log.
func (s *Server) WaitReady(ctx context.Context, user string, status func(string)) error {
	return Readiness{
		ConnString: s.ConnString(user, "postgres"), User: user, Running: s.Running,
		ExitDetail: func() string { return s.LogTail(20) }, Where: "on " + s.DataDir,
	}.Wait(ctx, status)
}

// Stop shuts the server down: a fast shutdown (SIGINT), then an immediate one (SIGQUIT), then
// SIGKILL of its process group, each after its grace period. It is safe to call more than once,
// and uses no caller context so it still works during teardown after a cancellation.
func (s *Server) Stop(grace time.Duration) error {
	if s.cmd == nil || s.done == nil {
		return nil
	}
	if grace <= 0 {
		grace = 30 * time.Second
	}
	steps := []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{syscall.SIGINT, grace}, {syscall.SIGQUIT, 5 * time.Second}, {syscall.SIGKILL, 5 * time.Second}}
	for _, st := range steps {
		if !s.Running() {
			break
		}
		target := s.cmd.Process.Pid
		if st.sig == syscall.SIGKILL {
			target = -target // the whole process group: backends too
		}
		_ = syscall.Kill(target, st.sig)
		select {
		case <-s.done:
		case <-time.After(st.wait):
		}
	}
	if s.Running() {
		return fmt.Errorf("while stopping postgres (pid %d) on %s: still running after SIGKILL", s.cmd.Process.Pid, s.DataDir)
	}
	// Backends that outlived the postmaster (they exit on their own when it dies) are killed
	// with the group, so nothing is left behind.
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	return nil
}

// CleanShutdown reports whether the last server log says the database shut down cleanly.
func (s *Server) CleanShutdown() bool {
	return strings.Contains(s.LogTail(10), "database system is shut down")
}

// LogTail returns the last n lines of the server log.
func (s *Server) LogTail(n int) string {
	b, err := os.ReadFile(s.LogFile)
	if err != nil {
		return "(no server log: " + err.Error() + ")"
	}
	return lastLines(string(b), n)
}

// LogLines returns the server log lines that matter as evidence of a failure: FATAL, PANIC,
// ERROR, and recovery progress, at most n of them (the last ones).
func LogLines(logFile string, n int) []string {
	f, err := os.Open(logFile)
	if err != nil {
		return nil
	}
	defer f.Close()
	var keep []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		l := sc.Text()
		for _, k := range []string{"FATAL", "PANIC", "ERROR", "redo ", "consistent recovery", "invalid", "could not", "checkpoint record", "backup_label", "DETAIL", "HINT"} {
			if strings.Contains(l, k) {
				keep = append(keep, l)
				break
			}
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return keep
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}
