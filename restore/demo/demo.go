// Package demo builds the sandbox `firedrill demo` runs in: a "production" PostgreSQL with data
// checksums, WAL archiving to a local directory, a pgbench dataset and an orders table with
// timestamps, and a write load to snapshot under.
package demo

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/runtime/docker"
)

// Options configures the sandbox.
type Options struct {
	// Scale is the pgbench scale (about 15 MB per unit).
	Scale  int
	Status func(string)
	// Runtime is where the drill's throwaway runs (restore.runtime): "local" (default) or
	// "docker"; DockerImage is restore.docker.image (empty: postgres:<major>).
	Runtime     string
	DockerImage string
	// Engine is the production database's engine: postgres (default), redis or mariadb.
	Engine string
}

// Sandbox is a temporary directory with a running production PostgreSQL.
type Sandbox struct {
	Dir        string
	Production *postgres.Instance
	Repository string
	History    string
	Scratch    string
	load       *exec.Cmd
	opts       Options
	// prod is the production of an engine other than PostgreSQL; loader its write load.
	prod   production
	loader *loader
}

// Start creates the sandbox. On error nothing is left behind.
func Start(ctx context.Context, o Options) (_ *Sandbox, err error) {
	status := o.Status
	if status == nil {
		status = func(string) {}
	}
	if start, ok := engineDemos[o.Engine]; ok {
		return startEngine(ctx, o, start, status)
	}
	bin, err := postgres.FindBinDir("", "")
	if err != nil {
		return nil, err
	}
	runAs, err := postgres.ResolveRunAs("")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "firedrill-demo-")
	if err != nil {
		return nil, fmt.Errorf("while creating the demo sandbox: %w", err)
	}
	s := &Sandbox{Dir: dir, Repository: filepath.Join(dir, "repository"), History: filepath.Join(dir, "history"), Scratch: filepath.Join(dir, "scratch"), opts: o}
	defer func() {
		if err != nil {
			s.Close()
			_ = os.RemoveAll(dir)
		}
	}()
	// The server runs as an unprivileged user, which must reach its directories.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, fmt.Errorf("while opening the sandbox to the server user: %w", err)
	}
	prod := filepath.Join(dir, "production")
	if err := os.MkdirAll(prod, 0o755); err != nil {
		return nil, fmt.Errorf("while creating %s: %w", prod, err)
	}
	if err := runAs.Chown(prod); err != nil {
		return nil, fmt.Errorf("while handing %s to %s: %w", prod, runAs.Name, err)
	}
	if err := os.MkdirAll(s.Scratch, 0o755); err != nil {
		return nil, fmt.Errorf("while creating %s: %w", s.Scratch, err)
	}
	status("creating the production database (initdb --data-checksums, WAL archiving on)")
	s.Production, err = postgres.NewInstance(ctx, postgres.InstanceOptions{
		BinDir: bin, Dir: prod, RunAs: runAs, DataChecksums: true, ArchiveDir: filepath.Join(dir, "wal-archive"),
	})
	if err != nil {
		return nil, err
	}
	status(fmt.Sprintf("loading a pgbench dataset (scale %d)", o.Scale))
	if _, err := s.Production.Pgbench(ctx, "-i", "-q", "-s", strconv.Itoa(o.Scale)); err != nil {
		return nil, err
	}
	status("creating the orders table")
	if err := s.Production.Exec(ctx, "postgres", `
		CREATE TABLE orders (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now(), amount numeric(12,2) NOT NULL);
		INSERT INTO orders (created_at, amount)
		  SELECT now() - (i || ' seconds')::interval, (random() * 500)::numeric(12,2) FROM generate_series(1, 5000) AS i;`); err != nil {
		return nil, err
	}
	script := filepath.Join(dir, "orders.sql")
	if err := os.WriteFile(script, []byte("INSERT INTO orders (amount) VALUES ((random() * 500)::numeric(12,2));\n"), 0o644); err != nil {
		return nil, fmt.Errorf("while writing the load script: %w", err)
	}
	return s, nil
}

// startEngine creates the sandbox of an engine other than PostgreSQL.
func startEngine(ctx context.Context, o Options, start func(context.Context, *Sandbox, func(string)) (production, error), status func(string)) (_ *Sandbox, err error) {
	dir, err := os.MkdirTemp("", "firedrill-demo-")
	if err != nil {
		return nil, fmt.Errorf("while creating the demo sandbox: %w", err)
	}
	s := &Sandbox{Dir: dir, Repository: filepath.Join(dir, "repository"), History: filepath.Join(dir, "history"), Scratch: filepath.Join(dir, "scratch"), opts: o}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	// The drill's throwaway runs as a uid of its own, which must traverse to its scratch.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, fmt.Errorf("while opening the sandbox to the throwaway's user: %w", err)
	}
	if err := os.MkdirAll(s.Scratch, 0o755); err != nil {
		return nil, fmt.Errorf("while creating %s: %w", s.Scratch, err)
	}
	if s.prod, err = start(ctx, s, status); err != nil {
		return nil, err
	}
	return s, nil
}

// StartLoad starts pgbench writing (TPC-B transactions and new orders) until StopLoad.
func (s *Sandbox) StartLoad(ctx context.Context) error {
	if s.prod != nil {
		s.loader = startLoader(ctx, s.prod)
		return nil
	}
	s.load = s.Production.PgbenchCmd(context.WithoutCancel(ctx), "-n", "-c", "2", "-j", "2", "-T", "600",
		"-b", "tpcb-like@4", "-f", filepath.Join(s.Dir, "orders.sql")+"@1")
	if err := s.load.Start(); err != nil {
		return fmt.Errorf("while starting pgbench: %w", err)
	}
	return nil
}

// LoadDescription says what the write load does.
func (s *Sandbox) LoadDescription() string {
	if s.prod != nil {
		return s.opts.Engine + " is being written to"
	}
	return "pgbench is writing (TPC-B transactions and new orders)"
}

// StopLoad stops the write load.
func (s *Sandbox) StopLoad() {
	if s.loader != nil {
		s.loader.stop()
		s.loader = nil
	}
	if s.load == nil || s.load.Process == nil {
		return
	}
	_ = s.load.Cancel()
	done := make(chan error, 1)
	go func() { done <- s.load.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = s.load.Process.Kill()
		<-done
	}
	s.load = nil
}

// Close stops the load and the production server; it keeps the files (Remove deletes them).
func (s *Sandbox) Close() error {
	s.StopLoad()
	if s.prod != nil {
		return s.prod.stop()
	}
	if s.Production != nil {
		if err := s.Production.Stop(15 * time.Second); err != nil {
			return err
		}
	}
	return nil
}

// Kept is production as `demo --keep` leaves it: running, and how to stop and start it.
type Kept struct {
	PID int
	// Stop and Start are shell commands, exact for this sandbox and this user (as root, the
	// server runs as an unprivileged user, and so must pg_ctl).
	Stop, Start string
}

// Keep stops the write load and leaves production running after firedrill exits, so that the
// sandbox's firedrill.yaml works with every command. The server was started to die with
// firedrill; it is stopped cleanly and started again detached, with its port and socket
// written into its postgresql.conf so that a plain pg_ctl start brings it back the same.
func (s *Sandbox) Keep(ctx context.Context) (Kept, error) {
	s.StopLoad()
	if s.prod != nil {
		return keepDetached(ctx, s.prod)
	}
	old := s.Production.Server
	k := Kept{Stop: s.pgCtl("stop", "-D", old.DataDir, "-m", "fast"),
		Start: s.pgCtl("start", "-D", old.DataDir, "-l", old.LogFile)}
	if err := old.Stop(15 * time.Second); err != nil {
		return k, fmt.Errorf("while stopping production to restart it detached: %w", err)
	}
	if err := appendConf(filepath.Join(old.DataDir, "postgresql.conf"), map[string]string{
		"port": strconv.Itoa(old.Port), "unix_socket_directories": old.SocketDir, "listen_addresses": old.ListenAddresses,
	}); err != nil {
		return k, err
	}
	// firedrill opened the server log; pg_ctl start appends to it as the server's user.
	if err := old.RunAs.Chown(old.LogFile); err != nil {
		return k, fmt.Errorf("while handing %s to %s: %w", old.LogFile, old.RunAs.Name, err)
	}
	srv := &postgres.Server{BinDir: old.BinDir, DataDir: old.DataDir, SocketDir: old.SocketDir, Port: old.Port,
		ListenAddresses: old.ListenAddresses, RunAs: old.RunAs, LogFile: old.LogFile, Detached: true}
	if err := srv.Start(ctx); err != nil {
		return k, fmt.Errorf("while restarting production detached: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := srv.WaitReady(wctx, s.Production.Superuser, nil); err != nil {
		_ = srv.Stop(5 * time.Second)
		return k, fmt.Errorf("while restarting production detached: %w", err)
	}
	s.Production.Server = srv
	k.PID = srv.PID()
	return k, nil
}

// pgCtl is the shell command that runs pg_ctl with args as the server's user.
func (s *Sandbox) pgCtl(args ...string) string {
	words := []string{filepath.Join(s.Production.BinDir, "pg_ctl")}
	if !s.Production.RunAs.IsCurrent() {
		words = append([]string{"runuser", "-u", s.Production.RunAs.Name, "--"}, words...)
	}
	words = append(words, args...)
	for i, w := range words {
		words[i] = shellQuote(w)
	}
	return strings.Join(words, " ")
}

// shellQuote quotes w for a POSIX shell, when it needs quoting.
func shellQuote(w string) string {
	plain := func(r rune) bool {
		return r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("-_./=:,+@%", r))
	}
	if w != "" && strings.IndexFunc(w, func(r rune) bool { return !plain(r) }) < 0 {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}

// appendConf appends settings to a postgresql.conf; a later line wins over an earlier one.
func appendConf(path string, settings map[string]string) error {
	var b strings.Builder
	b.WriteString("\n# firedrill demo --keep: how this server listens, for pg_ctl start\n")
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		fmt.Fprintf(&b, "%s = '%s'\n", k, strings.ReplaceAll(settings[k], "'", "''"))
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("while writing to %s: %w", path, err)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return fmt.Errorf("while writing to %s: %w", path, err)
	}
	return f.Close()
}

// Remove deletes the sandbox.
func (s *Sandbox) Remove() error {
	return errors.Join(s.Close(), os.RemoveAll(s.Dir))
}

// Config is the firedrill configuration of the sandbox, as a user would write it.
func (s *Sandbox) Config() string {
	if s.prod != nil {
		return fmt.Sprintf(`# firedrill configuration of the demo sandbox (see README: Configuration).
targets:
  - name: demo
%s    audit:
      skip: [copies-3-2-1]
history:
  dir: %s
`, s.prod.config(s), s.History)
	}
	return fmt.Sprintf(`# firedrill configuration of the demo sandbox (see README: Configuration).
targets:
  - name: demo
    engine: postgres
    connection:
      dsn: %q
%s    checks:
      amcheck: true
      checksums: true
      rowCounts:
        min:
          public.pgbench_accounts: 100000
      sql:
        - name: balances-match
          query: "SELECT sum(abalance) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history) FROM pgbench_accounts"
          database: postgres
          expect: {equals: "t"}
        - name: orders-present
          query: "SELECT count(*) FROM orders"
          expect: {min: 5000}
      freshness:
        query: "SELECT max(created_at) FROM orders"
    audit:
      # One machine cannot hold three copies on two media with one offsite: the 3-2-1 rule
      # would fail by design here (see the README's auditor configuration for locations).
      skip: [copies-3-2-1]
history:
  dir: %s
`, s.Production.DSN("postgres"), s.localSections(s.Production.DataDir), s.History)
}

// localSections are a demo target's snapshot, restore and objectives keys: a local snapshot
// of dataDir into the sandbox's repository, drilled in its scratch directory.
func (s *Sandbox) localSections(dataDir string) string {
	return fmt.Sprintf(`    snapshot:
      driver: local
      mode: online
      local:
        dataDir: %s
        repository: %s
    restore:
%s      local:
        scratchDir: %s
    objectives:
      rto: 10m
      rpo: 1h
`, dataDir, s.Repository, s.restoreRuntime(), s.Scratch)
}

// restoreRuntime is the restore section's runtime lines of Config.
func (s *Sandbox) restoreRuntime() string {
	switch {
	case s.opts.Runtime == "" || s.opts.Runtime == "local":
		return "      runtime: local\n"
	case s.opts.DockerImage != "":
		return fmt.Sprintf("      runtime: %s\n      docker:\n        image: %q\n", s.opts.Runtime, s.opts.DockerImage)
	}
	return fmt.Sprintf("      runtime: %s\n", s.opts.Runtime)
}

// ErrRuntime means the demo was asked for a runtime it does not know.
var ErrRuntime = errors.New("unknown runtime")

// CheckRuntime says, before anything is built, whether the demo can run its drill in runtime:
// docker needs a Docker engine that answers.
func CheckRuntime(ctx context.Context, runtime string) error {
	switch runtime {
	case "local":
		return nil
	case docker.Name:
		cli, err := docker.NewClient(ctx)
		if err != nil {
			return fmt.Errorf("the demo's docker runtime needs a Docker engine (start dockerd, or set DOCKER_HOST): %w", err)
		}
		return cli.Close()
	}
	return fmt.Errorf("%w %q: --runtime is local or docker", ErrRuntime, runtime)
}
