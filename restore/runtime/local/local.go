// Package local runs a throwaway PostgreSQL as a local process on a restored data directory:
// as an unprivileged user when firedrill is root, listening only on a unix socket in a private
// directory (or 127.0.0.1 on a free port), and, when root, inside an empty network namespace so
// that it can open no network connection at all.
package local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/engine/postgres"
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
	Files         map[string][]byte
	Tablespaces   map[string]string
	EngineVersion string
	// Keep lets the server outlive firedrill (--keep); otherwise it dies with firedrill.
	Keep bool
}

// Process is a running throwaway server.
type Process struct {
	opts      Options
	server    *postgres.Server
	socketDir string
	ownSocket bool // the socket directory was made outside the scratch dir (path length)
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
	if os.Geteuid() != 0 {
		p.opts.IsolateNetwork = false
	}
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
		Files: o.Files, Tablespaces: o.Tablespaces,
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
		RunAs: o.RunAs, IsolateNetwork: p.opts.IsolateNetwork, LogFile: filepath.Join(o.ScratchDir, "server.log"),
		Detached: o.Keep,
	}
	if err := p.server.Start(ctx); err != nil {
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
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname")
	if err != nil {
		return nil, fmt.Errorf("while listing databases: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Connect implements checks.DB: a connection to the throwaway copy only.
func (p *Process) Connect(ctx context.Context, database string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(p.server.ConnString(p.opts.Superuser, database))
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["application_name"] = "firedrill-drill"
	return pgx.ConnectConfig(ctx, cfg)
}

// Exec runs a server binary as the user owning the copy; it returns output and exit code.
func (p *Process) Exec(ctx context.Context, name string, args ...string) ([]byte, int, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(p.opts.BinDir, name), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.opts.RunAs.Credential(), Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	return out, code, err
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
	return &reports.Runtime{Kind: "local", EngineVersion: p.opts.EngineVersion, RunAs: runAs, Listen: listen, NetworkIsolated: p.opts.IsolateNetwork}
}

// Kept says how to reach a server left running by --keep.
func (p *Process) Kept() *reports.Kept {
	return &reports.Kept{ScratchDir: p.opts.ScratchDir, SocketDir: p.socketDir, ServerLog: p.server.LogFile,
		PID: p.server.PID(), Connect: p.server.ConnString(p.opts.Superuser, "postgres")}
}
