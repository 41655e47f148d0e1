// Package local runs a throwaway PostgreSQL as a local process on a restored data directory,
// listening only on a unix socket in a private directory (or 127.0.0.1 on a free port).
//
// When firedrill is root the server runs in a sandbox (restore/runtime/local/sandbox): new
// mount, PID, IPC, UTS and network namespaces, a private root that shows the system's binaries
// read-only and the drill's scratch directory read-write and nothing else, as a uid no account
// has. Not root, the same sandbox is built inside a user namespace when the kernel allows it,
// with firedrill's own uid; when it does not, the server runs as the current user on the host's
// filesystem. The result says which.
package local

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/runtime/local/sandbox"
)

// Options configures a throwaway server.
type Options struct {
	BinDir string
	// DataDir is the restored data directory (prepared by Start).
	DataDir string
	// ScratchDir is the drill's private directory; the socket and log go there.
	ScratchDir string
	RunAs      postgres.RunAs
	// Listen is "socket" or "tcp".
	Listen         string
	IsolateNetwork bool
	// Superuser is the role to connect as (the snapshot's bootstrap superuser).
	Superuser string
	// Files and Tablespaces are handed to postgres.PrepareRestore.
	Files       map[string][]byte
	Tablespaces map[string]string
	// Clean is a cleanly shut down cluster with no backup_label (postgres.RestoreOptions).
	Clean         bool
	EngineVersion string
	// Recovery replays WAL staged in scratch to a recovery target (postgres.RestoreOptions).
	Recovery *postgres.Recovery
	// Keep lets the server outlive firedrill (--keep); otherwise it dies with firedrill.
	Keep bool
	// UserFrom says where RunAs came from (UserFrom* of ResolveRunAs), for the record.
	UserFrom string
	// ProductionPaths are production's paths that config knows (data directory, repository,
	// socket directory, ...). Start adds what the snapshot names (tablespaces, archive
	// command directories); those inside trees the sandbox shows are masked, and all are
	// probed by CheckIsolation.
	ProductionPaths []string
}

// Process is a running throwaway server.
type Process struct {
	opts      Options
	server    *postgres.Server
	socketDir string
	ownSocket bool // the socket directory was made outside the scratch dir (path length)
	// sandbox is nil when the server runs on the host; sandboxErr says why.
	sandbox    *sandbox.Spec
	sandboxErr error
	production []string
	isolation  *reports.Isolation
}

// Start prepares the data directory and starts the server. It does not wait for recovery:
// call WaitReady.
func Start(ctx context.Context, o Options) (*Process, error) {
	if o.Listen == "" {
		o.Listen = "socket"
	}
	p := &Process{opts: o}
	port := 5432
	listen := ""
	if o.Listen == "tcp" {
		var err error
		if port, err = freePort(); err != nil {
			return nil, err
		}
		listen = "127.0.0.1"
		// A network namespace of its own would hide 127.0.0.1 from us.
		p.opts.IsolateNetwork = false
	}
	// What production owns that this copy names: read before PrepareRestore replaces the
	// configuration that names it.
	p.production = productionPaths(o)
	socketDir := filepath.Join(o.ScratchDir, "socket")
	// Unix socket paths are limited to 107 bytes.
	if len(socketDir)+len("/.s.PGSQL.5432") > 100 {
		d, err := os.MkdirTemp("", "fd-sock-")
		if err != nil {
			return nil, fmt.Errorf("while creating a socket directory: %w", err)
		}
		socketDir, p.ownSocket = d, true
	}
	if err := os.MkdirAll(socketDir, 0o700); err != nil {
		return nil, fmt.Errorf("while creating socket directory %s: %w", socketDir, err)
	}
	p.socketDir = socketDir
	if err := postgres.PrepareRestore(ctx, postgres.RestoreOptions{
		BinDir: o.BinDir, DataDir: o.DataDir, SocketDir: socketDir, Port: port, ListenAddresses: listen,
		Files: o.Files, Tablespaces: o.Tablespaces, Clean: o.Clean, Recovery: o.Recovery,
	}); err != nil {
		p.cleanupSocket()
		return nil, err
	}
	if err := o.RunAs.ChownTree(o.ScratchDir); err != nil {
		p.cleanupSocket()
		return nil, fmt.Errorf("while handing the scratch copy to user %s: %w", o.RunAs.Name, err)
	}
	if p.ownSocket {
		_ = o.RunAs.Chown(socketDir)
	}
	p.server = &postgres.Server{
		BinDir: o.BinDir, DataDir: o.DataDir, SocketDir: socketDir, Port: port, ListenAddresses: listen,
		RunAs: o.RunAs, IsolateNetwork: p.opts.IsolateNetwork && os.Geteuid() == 0, LogFile: filepath.Join(o.ScratchDir, "server.log"),
		Detached: o.Keep,
	}
	if p.sandboxErr = sandbox.Available(); p.sandboxErr != nil {
		p.opts.IsolateNetwork = false // not root, and no user namespace to make one in
	} else {
		p.sandbox = p.sandboxSpec()
		p.server.IsolateNetwork = false // the sandbox has a network namespace of its own
		p.server.Launch = func(cmd *exec.Cmd) (*exec.Cmd, error) {
			outer, err := p.sandbox.Start(nil, cmd, o.Keep)
			if err == nil || os.Geteuid() == 0 {
				return outer, err
			}
			// Not root, the kernel may still refuse what a user namespace sandbox needs (a
			// seccomp filter, a masked /proc): run on the host as before, and say why.
			p.sandbox, p.sandboxErr = nil, fmt.Errorf("firedrill is not root and its user namespace sandbox failed (%w)", err)
			p.opts.IsolateNetwork = false
			p.isolation = p.describeIsolation()
			return cmd, cmd.Start()
		}
	}
	p.isolation = p.describeIsolation()
	if err := p.server.Start(ctx); err != nil {
		p.cleanupSocket()
		return nil, err
	}
	kind := KindProcess
	if p.sandbox != nil {
		kind = KindSandbox
	}
	pid := p.server.PID()
	if err := writeRuntimeRecord(o.ScratchDir, runtimeRecord{HostPID: pid, Kind: kind, StartTicks: processStart(pid), StartedAt: time.Now().UTC(), DataDir: o.DataDir}); err != nil {
		_ = p.server.Stop(5 * time.Second)
		p.cleanupSocket()
		return nil, err
	}
	return p, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("while finding a free port on 127.0.0.1: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitReady waits for recovery to reach consistency and end.
func (p *Process) WaitReady(ctx context.Context, status func(string)) error {
	return p.server.WaitReady(ctx, p.opts.Superuser, status)
}

// Databases implements checks.DB.
func (p *Process) Databases(ctx context.Context) ([]string, error) {
	conn, err := p.Connect(ctx, "postgres")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return postgres.Databases(ctx, conn)
}

// Connect implements checks.DB: a connection to the throwaway copy only.
func (p *Process) Connect(ctx context.Context, database string) (*pgx.Conn, error) {
	return postgres.ConnectCopy(ctx, p.server.ConnString(p.opts.Superuser, database))
}

// Exec runs a server binary (pg_checksums on the stopped copy) as the user owning the copy,
// in a sandbox like the server's when there is one; it returns output and exit code.
func (p *Process) Exec(ctx context.Context, name string, args ...string) ([]byte, int, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(p.opts.BinDir, name), args...)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin"}
	var spec *sandbox.Spec
	if p.sandbox != nil {
		// The copy only: a socket directory made outside scratch is gone once the server stopped.
		s := *p.sandbox
		s.Writable = []string{p.opts.ScratchDir}
		spec = &s
	}
	return runTool(ctx, cmd, spec, p.opts.RunAs)
}

// Stop shuts the server down and reports whether it shut down cleanly (needed by offline
// checks). It works after a cancellation.
func (p *Process) Stop(grace time.Duration) (clean bool, err error) {
	defer p.cleanupSocket()
	if p.server == nil {
		return false, nil
	}
	err = p.server.Stop(grace)
	return err == nil && p.server.CleanShutdown(), err
}

func (p *Process) cleanupSocket() {
	if p.ownSocket {
		_ = os.RemoveAll(p.socketDir)
	}
}

// Running reports whether the server process is alive.
func (p *Process) Running() bool { return p.server != nil && p.server.Running() }

// ServerLog is the path of the server's log.
func (p *Process) ServerLog() string { return p.server.LogFile }

// LogEvidence returns the log lines that explain a failed start or recovery.
func (p *Process) LogEvidence(n int) []string { return postgres.LogLines(p.server.LogFile, n) }

// Describe says where and how the server ran, for the report.
func (p *Process) Describe() *reports.Runtime {
	listen := "unix socket " + p.socketDir
	if p.opts.Listen == "tcp" {
		listen = fmt.Sprintf("127.0.0.1:%d", p.server.Port)
	}
	runAs := p.opts.RunAs.Name
	if runAs == "" {
		runAs = "(current user)"
	}
	if p.sandbox != nil && p.opts.UserFrom == UserFromSandbox {
		runAs = fmt.Sprintf("%s uid %d", SandboxUserName, p.opts.RunAs.UID)
	}
	return &reports.Runtime{Kind: "local", EngineVersion: p.opts.EngineVersion, RunAs: runAs, Listen: listen,
		NetworkIsolated: p.opts.IsolateNetwork, Isolation: p.isolation}
}

// Kept says how to reach a server left running by --keep.
func (p *Process) Kept() *reports.Kept {
	return &reports.Kept{ScratchDir: p.opts.ScratchDir, SocketDir: p.socketDir, ServerLog: p.server.LogFile,
		PID: p.server.PID(), Connect: p.server.ConnString(p.opts.Superuser, "postgres")}
}

// BinDir is where the server's tools are (Exec runs them from there).
func (p *Process) BinDir() string { return p.opts.BinDir }

// Remove removes what the server had outside the scratch directory (a socket directory made
// elsewhere for a long path); the drill removes the scratch directory itself.
func (p *Process) Remove() error {
	p.cleanupSocket()
	return nil
}

// ProbePaths is what the superuser of a throwaway reached by conn sees of each of paths (own
// are the throwaway's own trees, not production's): shared with other runtimes' isolation
// findings.
func ProbePaths(ctx context.Context, conn *pgx.Conn, paths, own []string) []reports.IsolationProbed {
	out := make([]reports.IsolationProbed, 0, len(paths))
	for _, path := range paths {
		out = append(out, probePath(ctx, conn, path, own))
	}
	return out
}
