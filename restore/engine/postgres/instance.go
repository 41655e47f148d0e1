package postgres

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// InstanceOptions describes a private PostgreSQL cluster to create and start: the "production"
// of the demo, and the servers integration tests snapshot.
type InstanceOptions struct {
	BinDir string
	// Dir holds the data directory, socket and log; it must be traversable by RunAs.
	Dir           string
	RunAs         RunAs
	DataChecksums bool
	// ArchiveDir, when set, turns on WAL archiving to it (created, handed to RunAs).
	ArchiveDir string
	// ListenAddresses is "" (socket only) or "127.0.0.1"; Port 0 means 5432 on a socket only.
	ListenAddresses string
	Port            int
	Settings        map[string]string
}

// Instance is a started private cluster.
type Instance struct {
	*Server
	Superuser  string
	ArchiveDir string
}

// NewInstance runs initdb and starts the server; it returns once the server accepts
// connections. On error nothing is left running.
func NewInstance(ctx context.Context, o InstanceOptions) (*Instance, error) {
	dataDir := filepath.Join(o.Dir, "data")
	socketDir := filepath.Join(o.Dir, "socket")
	if err := os.MkdirAll(socketDir, 0o700); err != nil {
		return nil, fmt.Errorf("while creating %s: %w", socketDir, err)
	}
	if err := o.RunAs.Chown(socketDir); err != nil {
		return nil, fmt.Errorf("while handing %s to %s: %w", socketDir, o.RunAs.Name, err)
	}
	if err := InitDB(ctx, InitDBOptions{BinDir: o.BinDir, DataDir: dataDir, Superuser: "postgres", DataChecksums: o.DataChecksums, RunAs: o.RunAs}); err != nil {
		return nil, err
	}
	settings := map[string]string{
		"wal_level": "replica", "max_wal_senders": "4", "max_replication_slots": "4",
		"fsync": "off", "full_page_writes": "on", "shared_buffers": "128MB", "max_connections": "50",
		"logging_collector": "off", "log_checkpoints": "off",
	}
	if o.ArchiveDir != "" {
		if err := os.MkdirAll(o.ArchiveDir, 0o700); err != nil {
			return nil, fmt.Errorf("while creating WAL archive %s: %w", o.ArchiveDir, err)
		}
		if err := o.RunAs.Chown(o.ArchiveDir); err != nil {
			return nil, fmt.Errorf("while handing %s to %s: %w", o.ArchiveDir, o.RunAs.Name, err)
		}
		settings["archive_mode"] = "on"
		settings["archive_command"] = fmt.Sprintf("test ! -f %[1]s/%%f && cp %%p %[1]s/%%f", o.ArchiveDir)
		settings["archive_timeout"] = "0"
	}
	for k, v := range o.Settings {
		settings[k] = v
	}
	port := o.Port
	if port == 0 {
		port = 5432
	}
	// Settings go into postgresql.conf rather than onto the command line, so that ALTER SYSTEM
	// (postgresql.auto.conf) can still change them, as on a real server.
	if err := appendSettings(filepath.Join(dataDir, "postgresql.conf"), settings); err != nil {
		return nil, err
	}
	s := &Server{BinDir: o.BinDir, DataDir: dataDir, SocketDir: socketDir, Port: port, ListenAddresses: o.ListenAddresses,
		RunAs: o.RunAs, LogFile: filepath.Join(o.Dir, "server.log")}
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := s.WaitReady(wctx, "postgres", nil); err != nil {
		if serr := s.Stop(5 * time.Second); serr != nil {
			// The server may still run on dataDir: say so rather than drop it.
			err = fmt.Errorf("%w; and while stopping the server that did not become ready on %s (it may still be running): %w", err, dataDir, serr)
		}
		return nil, err
	}
	return &Instance{Server: s, Superuser: "postgres", ArchiveDir: o.ArchiveDir}, nil
}

// DSN is a connection string for database db as the superuser.
func (i *Instance) DSN(db string) string { return i.ConnString(i.Superuser, db) }

// Exec runs SQL statements in database db.
func (i *Instance) Exec(ctx context.Context, db, sql string, args ...any) error {
	conn, err := pgx.Connect(ctx, i.DSN(db))
	if err != nil {
		return fmt.Errorf("while connecting to %s: %w", db, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("while running %q: %w", sql, err)
	}
	return nil
}

// Pgbench runs pgbench against database postgres with args (e.g. "-i", "-s", "5").
func (i *Instance) Pgbench(ctx context.Context, args ...string) ([]byte, error) {
	cmd := i.PgbenchCmd(ctx, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("while running pgbench %v: %w: %s", args, err, lastLines(string(out), 5))
	}
	return out, nil
}

// PgbenchCmd returns an unstarted pgbench command, for load that runs in the background.
func (i *Instance) PgbenchCmd(ctx context.Context, args ...string) *exec.Cmd {
	full := append([]string{"-h", i.SocketDir, "-p", fmt.Sprint(i.Port), "-U", i.Superuser}, args...)
	full = append(full, "postgres")
	cmd := exec.CommandContext(ctx, filepath.Join(i.BinDir, "pgbench"), full...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "PGCONNECT_TIMEOUT=5"}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

func appendSettings(path string, settings map[string]string) error {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("\n# firedrill test/demo instance settings\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, quote(settings[k]))
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("while writing settings to %s: %w", path, err)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return fmt.Errorf("while writing settings to %s: %w", path, err)
	}
	return f.Close()
}
