package dump

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/runtime/local/sandbox"
)

// superuser is the bootstrap superuser of the fresh cluster.
const superuser = "postgres"

// maxEvidence bounds the error lines a finding carries.
const maxEvidence = 50

// plainComplete is the last line pg_dump writes to a plain dump: without it, it was cut short.
const plainComplete = "-- PostgreSQL database dump complete"

// restorer restores one dump into a fresh cluster in a scratch directory. The cluster has no
// data checksums: its pages are written by the restore itself, so checksums would prove
// nothing of the backup, and they cost restore time (8-11 % of a 1 GB restore in
// BenchmarkDumpRestore); the drill's checksums check says so (checks.Env.Logical).
type restorer struct {
	src    *Source
	path   string
	format Format
	// unreadable is why Detect could not read the dump (ErrCorrupt), nil if it could.
	unreadable error
	scratch    string
	status     func(string)

	binDir, dataDir, major string
	// input is what pg_restore reads: the dump, its decompressed copy or unpacked directory
	// in scratch; stream: pg_restore reads the decompressed dump on its stdin instead.
	input  string
	stream bool
	// unpacked is what was written into scratch for pg_restore (removed after the restore).
	unpacked string
	// uid and gid own the scratch directory: the runtime's user, who runs the server.
	uid, gid  uint32
	sandboxed bool
	server    *postgres.Server
	ownSocket string
}

// outcome is what restoring proved.
type outcome struct {
	database string
	tool     string
	exitCode int
	errors   []string
	lines    []string
	roles    []string
	notes    []string
	// damaged is why the dump could not be read whole (ErrCorrupt): the restore failed.
	damaged string
}

func (o *outcome) finding() checks.Finding {
	ev := checks.Evidence{"database": o.database, "tool": o.tool, "exitCode": o.exitCode}
	if len(o.roles) > 0 {
		ev["stubRoles"] = o.roles
	}
	if o.damaged != "" {
		ev["damaged"] = o.damaged
		if len(o.lines) > 0 {
			ev["messages"] = o.lines
		}
		return checks.Failf(RestoreName, ev, "%s", o.damaged)
	}
	if len(o.errors) > 0 || o.exitCode != 0 {
		ev["errors"] = len(o.errors)
		ev["messages"] = o.lines
		if len(o.errors) == 0 {
			return checks.Failf(RestoreName, ev, "%s exited with code %d", o.tool, o.exitCode)
		}
		return checks.Failf(RestoreName, ev, "%s reported %d error(s), first: %s", o.tool, len(o.errors), o.errors[0])
	}
	return checks.Passf(RestoreName, ev, "restored into database %s by %s without an error", o.database, o.tool)
}

func (r *restorer) run(ctx context.Context) (*outcome, error) {
	fi, err := os.Stat(r.scratch)
	if err != nil {
		return nil, fmt.Errorf("while reading scratch directory %s: %w", r.scratch, err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	r.uid, r.gid = st.Uid, st.Gid
	r.sandboxed = os.Geteuid() == 0 && r.uid != 0
	out := &outcome{}
	if err := r.prepareInput(ctx, out); errors.Is(err, ErrCorrupt) {
		// The dump cannot be read whole: the drill restores nothing into a fresh cluster and
		// fails, naming the file, rather than ending as "could not check".
		out.damaged = err.Error()
	} else if err != nil {
		return nil, err
	}
	var header dumpHeader
	if out.damaged == "" {
		if header, err = r.header(ctx); err != nil {
			return nil, err
		}
	}
	if err := r.pickBinaries(header.version); err != nil {
		return nil, err
	}
	r.status("creating a fresh cluster with " + r.binDir)
	if err := r.initdb(ctx); err != nil {
		return nil, err
	}
	if err := r.start(ctx); err != nil {
		return nil, err
	}
	out.database = header.dbname
	if out.database == "" || r.format.Kind == FormatPlain {
		out.database = "postgres"
	}
	if out.damaged == "" {
		if err := r.prepare(ctx, out); err != nil {
			return nil, err
		}
		r.status("restoring " + filepath.Base(r.path) + " into database " + out.database)
		if err := r.restore(ctx, out); err != nil {
			return nil, err
		}
	}
	r.status("stopping the restore server")
	if err := r.server.Stop(60 * time.Second); err != nil {
		return nil, err
	}
	if !r.server.CleanShutdown() {
		return nil, fmt.Errorf("the cluster the dump was restored into did not shut down cleanly: %s", r.server.LogTail(10))
	}
	r.removeUnpacked()
	return out, nil
}

func (r *restorer) cleanup() {
	if r.server != nil && r.server.Running() {
		_ = r.server.Stop(10 * time.Second)
	}
	if r.ownSocket != "" {
		_ = os.RemoveAll(r.ownSocket)
	}
	r.removeUnpacked()
}

// removeUnpacked removes the decompressed or unpacked dump: only the restored cluster stays.
func (r *restorer) removeUnpacked() {
	if r.unpacked != "" {
		_ = os.RemoveAll(r.unpacked)
		r.unpacked = ""
	}
}

// prepareInput decides what pg_restore or psql reads. Plain dumps and, without --jobs,
// compressed custom dumps stream through a pipe; with --jobs pg_restore needs a file it can
// seek in, so a compressed custom dump is decompressed into scratch first (and pg_dump -Ft,
// which pg_restore cannot read in parallel, is restored with one job). A tar of a directory
// dump is unpacked into scratch.
func (r *restorer) prepareInput(ctx context.Context, out *outcome) error {
	r.input = r.path
	base := filepath.Base(r.path)
	switch {
	case r.unreadable != nil:
		return r.unreadable
	case r.format.Kind == FormatUnknown:
		return fmt.Errorf("%w: %s is not a readable %s stream", ErrCorrupt, base, r.format.Compression)
	case r.format.Tar:
		r.status("unpacking " + base)
		r.unpacked = filepath.Join(r.scratch, "dump.dir")
		dir, err := untar(ctx, r.path, r.format, r.unpacked)
		if err != nil {
			return err
		}
		r.input = dir
	case r.format.Kind == FormatPlain || r.format.Compression == "":
	case r.format.Kind == FormatCustom && r.jobs() == 1:
		r.stream = true
		out.notes = append(out.notes, fmt.Sprintf("%s (%s) was streamed to pg_restore, decompressed as it was read (one job: pg_restore cannot restore a pipe in parallel)", base, r.format.Compression))
	default:
		r.status("decompressing " + base)
		r.unpacked = filepath.Join(r.scratch, "dump."+r.format.Kind)
		if err := decompress(ctx, r.path, r.format, r.unpacked); err != nil {
			return err
		}
		r.input = r.unpacked
		why := fmt.Sprintf("pg_restore --jobs %d needs a file it can seek in", r.jobs())
		if r.format.Kind == FormatTar {
			why = "pg_restore reads a tar archive from a file"
		}
		out.notes = append(out.notes, fmt.Sprintf("%s (%s) was decompressed into scratch first: %s", base, r.format.Compression, why))
	}
	return nil
}

// jobs is pg_restore --jobs: the configured number, one for pg_dump -Ft.
func (r *restorer) jobs() int {
	if r.format.Kind == FormatTar {
		return 1
	}
	return max(1, r.src.Jobs)
}

// decompress writes a compressed dump's content to dst. A read error is ErrCorrupt.
func decompress(ctx context.Context, src string, f Format, dst string) error {
	in, err := open(src, f)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("while decompressing %s: %w", src, err)
	}
	_, err = io.Copy(writerOnly{out}, ctxReader{ctx, in})
	if cerr := out.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%w: %w", errWrite, cerr)
	}
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("while decompressing %s: %w", src, ctx.Err())
	case errors.Is(err, ErrCorrupt):
		return err
	}
	return fmt.Errorf("while decompressing %s into %s: %w", src, dst, err)
}

// inputArgs is what pg_restore is told to read: the file or directory, or its stdin
// (returned, to be closed by the caller) when the dump streams.
func (r *restorer) inputArgs() ([]string, *corruptReader, error) {
	if !r.stream {
		return []string{r.input}, nil, nil
	}
	in, err := open(r.path, r.format)
	if err != nil {
		return nil, nil, err
	}
	return nil, in.(*corruptReader), nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// dumpHeader is what a dump says of where it came from.
type dumpHeader struct{ version, dbname string }

var (
	tocVersion = regexp.MustCompile(`(?m)^;\s+Dumped from database version:\s*(\S+)`)
	tocDBName  = regexp.MustCompile(`(?m)^;\s+Dbname:\s*(\S+)`)
	sqlVersion = regexp.MustCompile(`(?m)^-- Dumped from database version (\S+)`)
)

// header reads the dump's server version and database name (custom and directory: from
// pg_restore -l; plain: from the comment pg_dump writes at the top).
func (r *restorer) header(ctx context.Context) (dumpHeader, error) {
	if r.format.Kind == FormatPlain {
		in, err := open(r.path, r.format)
		if err != nil {
			return dumpHeader{}, err
		}
		defer in.Close()
		head, _ := io.ReadAll(io.LimitReader(in, 64<<10))
		var h dumpHeader
		if m := sqlVersion.FindSubmatch(head); m != nil {
			h.version = string(m[1])
		}
		return h, nil
	}
	bin, err := postgres.FindBinDir("", r.src.BinDir)
	if err != nil {
		return dumpHeader{}, err
	}
	args, stdin, err := r.inputArgs()
	if err != nil {
		return dumpHeader{}, nil // the restore reports an unreadable dump, naming it
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "pg_restore"), append([]string{"-l"}, args...)...)
	cmd.Env = clientEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if stdin != nil {
		defer stdin.Close()
		cmd.Stdin = ctxReader{ctx, stdin}
	}
	toc, err := cmd.Output()
	if err != nil {
		// An unreadable table of contents is a dump that cannot be restored: the restore
		// itself reports it as a finding, with pg_restore's message.
		return dumpHeader{}, nil
	}
	var h dumpHeader
	if m := tocVersion.FindSubmatch(toc); m != nil {
		h.version = string(m[1])
	}
	if m := tocDBName.FindSubmatch(toc); m != nil {
		h.dbname = string(m[1])
	}
	return h, nil
}

// pickBinaries takes the binaries of the dump's major version, else the newest installed.
func (r *restorer) pickBinaries(version string) error {
	major := majorOf(version)
	bin, err := postgres.FindBinDir(major, r.src.BinDir)
	if err != nil && r.src.BinDir == "" && major != "" {
		bin, err = postgres.FindBinDir("", "")
	}
	if err != nil {
		return err
	}
	r.binDir = bin
	return nil
}

// majorOf returns a version's major: "15.18" -> "15", "9.6.3" -> "9.6".
func majorOf(v string) string {
	if i := strings.IndexFunc(v, func(c rune) bool { return c != '.' && (c < '0' || c > '9') }); i >= 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	if len(parts) >= 2 && parts[0] == "9" {
		return parts[0] + "." + parts[1]
	}
	return parts[0]
}

// runAsOwner runs cmd as the scratch directory's owner: in a sandbox when firedrill is root
// (the owner may be a uid no account has), else as firedrill itself.
func (r *restorer) runAsOwner(ctx context.Context, cmd *exec.Cmd) (*exec.Cmd, error) {
	if !r.sandboxed {
		return cmd, cmd.Start()
	}
	spec := sandbox.Spec{UID: r.uid, GID: r.gid, Writable: []string{r.scratch}, Tag: r.scratch}
	if r.ownSocket != "" {
		spec.Writable = append(spec.Writable, r.ownSocket)
	}
	if install, _ := filepath.EvalSymlinks(filepath.Dir(r.binDir)); install != "" && !strings.HasPrefix(install, "/usr/") {
		spec.ReadOnly = []string{install}
	}
	return spec.Start(ctx, cmd, false)
}

func (r *restorer) initdb(ctx context.Context) error {
	r.dataDir = filepath.Join(r.scratch, "data")
	if err := os.Mkdir(r.dataDir, 0o700); err != nil {
		return fmt.Errorf("while creating data directory %s: %w", r.dataDir, err)
	}
	if err := os.Lchown(r.dataDir, int(r.uid), int(r.gid)); err != nil {
		return fmt.Errorf("while handing data directory %s to uid %d: %w", r.dataDir, r.uid, err)
	}
	var out bytes.Buffer
	cmd := exec.Command(filepath.Join(r.binDir, "initdb"), "-D", r.dataDir, "-U", superuser, "--auth=trust",
		"--no-sync", "--no-instructions", "-E", "UTF8", "--locale=C")
	cmd.Env = clientEnv()
	cmd.Dir = r.dataDir
	cmd.Stdout, cmd.Stderr = &out, &out
	started, err := r.runAsOwner(ctx, cmd)
	if err == nil {
		err = started.Wait()
	}
	if err != nil {
		return fmt.Errorf("while running initdb in %s: %w: %s", r.dataDir, err, strings.TrimSpace(out.String()))
	}
	major, err := postgres.ReadPGVersion(r.dataDir)
	r.major = major
	return err
}

func (r *restorer) start(ctx context.Context) error {
	socket := filepath.Join(r.scratch, "restore-socket")
	if len(socket)+len("/.s.PGSQL.5432") > 100 {
		d, err := os.MkdirTemp("", "fd-dump-")
		if err != nil {
			return fmt.Errorf("while creating a socket directory: %w", err)
		}
		socket, r.ownSocket = d, d
	} else if err := os.Mkdir(socket, 0o700); err != nil {
		return fmt.Errorf("while creating socket directory %s: %w", socket, err)
	}
	if err := os.Lchown(socket, int(r.uid), int(r.gid)); err != nil {
		return fmt.Errorf("while handing socket directory %s to uid %d: %w", socket, r.uid, err)
	}
	r.server = &postgres.Server{
		BinDir: r.binDir, DataDir: r.dataDir, SocketDir: socket, Port: 5432,
		LogFile: filepath.Join(r.scratch, "dump-restore.log"),
		// A disposable cluster filled once: durability buys nothing while restoring.
		Settings: map[string]string{"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
			"autovacuum": "off", "max_wal_size": "4GB", "unix_socket_permissions": "0700",
			"archive_mode": "off", "max_wal_senders": "0", "wal_level": "minimal", "jit": "off"},
	}
	if r.sandboxed {
		r.server.RunAs = postgres.NewRunAs("(sandbox)", r.uid, r.gid)
		r.server.Launch = func(cmd *exec.Cmd) (*exec.Cmd, error) { return r.runAsOwner(nil, cmd) } // no context: the server runs until Stop
	}
	if err := r.server.Start(ctx); err != nil {
		return err
	}
	r.status("waiting for the restore server")
	return r.server.WaitReady(ctx, superuser, r.status)
}

// prepare creates the database and the roles the dump references.
func (r *restorer) prepare(ctx context.Context, out *outcome) error {
	conn, err := postgres.ConnectCopy(ctx, r.server.ConnString(superuser, "postgres"))
	if err != nil {
		return fmt.Errorf("while connecting to the restore server: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if out.database != "postgres" {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{out.database}.Sanitize()+" TEMPLATE template0"); err != nil {
			return fmt.Errorf("while creating database %s: %w", out.database, err)
		}
	}
	refs, err := r.referencedRoles(ctx)
	if err != nil {
		return err
	}
	for _, role := range refs {
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)", role).Scan(&exists); err != nil {
			return fmt.Errorf("while looking role %s up: %w", role, err)
		}
		if exists {
			continue
		}
		if _, err := conn.Exec(ctx, "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" NOLOGIN"); err != nil {
			return fmt.Errorf("while creating role %s: %w", role, err)
		}
		out.roles = append(out.roles, role)
	}
	if len(out.roles) > 0 {
		out.notes = append(out.notes, fmt.Sprintf("the dump references %d role(s) a fresh cluster lacks, created as NOLOGIN stubs: %s",
			len(out.roles), strings.Join(out.roles, ", ")))
	}
	return nil
}

// referencedRoles scans the dump's SQL (for custom and directory dumps, its schema as
// pg_restore prints it) for the roles it names.
func (r *restorer) referencedRoles(ctx context.Context) ([]string, error) {
	if r.format.Kind == FormatPlain {
		in, err := open(r.path, r.format)
		if err != nil {
			return nil, err
		}
		defer in.Close()
		roles, err := ScanRoles(ctxReader{ctx, in})
		if errors.Is(err, ErrCorrupt) {
			return nil, nil // the restore meets it too, and fails naming the file
		}
		return roles, err
	}
	args, stdin, err := r.inputArgs()
	if err != nil {
		return nil, nil // the restore reports an unreadable dump, naming it
	}
	cmd := exec.CommandContext(ctx, filepath.Join(r.binDir, "pg_restore"), append([]string{"--schema-only", "-f", "-"}, args...)...)
	cmd.Env = clientEnv()
	if stdin != nil {
		defer stdin.Close()
		cmd.Stdin = ctxReader{ctx, stdin}
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("while reading the dump's schema: %w", err)
	}
	roles, err := ScanRoles(stdout)
	_, _ = io.Copy(io.Discard, stdout)
	_ = cmd.Wait() // an unreadable dump is the restore's finding
	return roles, err
}

// restore runs pg_restore or psql and collects every error it reports.
func (r *restorer) restore(ctx context.Context, out *outcome) error {
	conn := []string{"-h", r.server.SocketDir, "-p", strconv.Itoa(r.server.Port), "-U", superuser, "-d", out.database}
	var cmd *exec.Cmd
	var plain io.ReadCloser
	// stream is the decompressing reader a tool reads on its stdin, if any: its error is
	// the dump's, whatever the tool made of the input ending early.
	var stream *corruptReader
	if r.format.Kind == FormatPlain {
		out.tool = "psql"
		var err error
		if plain, err = open(r.path, r.format); err != nil {
			if errors.Is(err, ErrCorrupt) {
				out.damaged = err.Error()
				return nil
			}
			return err
		}
		defer plain.Close()
		stream, _ = plain.(*corruptReader)
		cmd = exec.CommandContext(ctx, filepath.Join(r.binDir, "psql"), append(conn, "-X", "-q", "-v", "ON_ERROR_STOP=0", "-f", "-")...)
	} else {
		out.tool = "pg_restore"
		args, stdin, err := r.inputArgs()
		if errors.Is(err, ErrCorrupt) {
			out.damaged = err.Error()
			return nil
		} else if err != nil {
			return err
		}
		if stdin != nil {
			// Streamed from a pipe: pg_restore cannot restore in parallel from one.
			defer stdin.Close()
			stream, plain = stdin, stdin
		} else {
			args = append([]string{"--jobs", strconv.Itoa(r.jobs())}, args...)
		}
		cmd = exec.CommandContext(ctx, filepath.Join(r.binDir, "pg_restore"), append(conn, args...)...)
	}
	cmd.Env = clientEnv()
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	var tail tailChecker
	if plain != nil {
		cmd.Stdin = io.TeeReader(ctxReader{ctx, plain}, &tail)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("while starting %s: %w", out.tool, err)
	}
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if isError(line) {
			out.errors = append(out.errors, line)
		}
		if len(out.lines) < maxEvidence {
			out.lines = append(out.lines, line)
		}
	}
	err = cmd.Wait()
	if ctx.Err() != nil {
		return fmt.Errorf("while restoring %s: %w", r.path, ctx.Err())
	}
	if stream != nil && stream.Err() != nil {
		// The tool saw its input end (and may have said so): the dump was cut or damaged.
		out.damaged = stream.Err().Error()
		if ee, ok := err.(*exec.ExitError); ok {
			out.exitCode = ee.ExitCode()
		}
		return nil
	}
	if ee, ok := err.(*exec.ExitError); ok {
		out.exitCode = ee.ExitCode()
	} else if err != nil {
		return fmt.Errorf("while running %s: %w", out.tool, err)
	}
	if r.format.Kind == FormatPlain && !tail.complete() {
		msg := "the dump does not end with pg_dump's line \"" + plainComplete + "\": it was cut short"
		out.errors = append(out.errors, msg)
		out.lines = append(out.lines, msg)
	}
	return nil
}

// isError tells an error line of pg_restore or psql from the rest (warnings, notices).
func isError(line string) bool {
	return strings.Contains(line, "ERROR:") || strings.Contains(line, "FATAL:") ||
		strings.Contains(line, "PANIC:") || strings.Contains(line, " error: ")
}

// tailChecker keeps the last bytes written to it.
type tailChecker struct{ buf []byte }

func (t *tailChecker) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > 4096 {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-1024:]...)
	}
	return len(p), nil
}

func (t *tailChecker) complete() bool {
	return strings.Contains(string(t.buf[max(0, len(t.buf)-1024):]), plainComplete)
}

func clientEnv() []string {
	return []string{"LC_ALL=C", "PATH=/usr/bin:/bin", "TZ=UTC", "PGCONNECT_TIMEOUT=10"}
}
