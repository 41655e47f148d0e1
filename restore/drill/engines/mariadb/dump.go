package mariadb

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/drill"
	enginemariadb "github.com/firedrill/firedrill/restore/engine/mariadb"
)

// LoadName is the finding of loading a logical SQL dump into the empty throwaway.
const LoadName = "load"

// emptyDataDir is the data directory mariadb-install-db makes for a dump to be loaded into,
// in the scratch directory.
const emptyDataDir = "data"

// tool finds one of MariaDB's programs (the first of names): at its Debian path or on PATH
// for the local runtime, at its path in the official image for a container.
func tool(kind string, names ...string) (string, error) {
	if kind == "docker" {
		return "/usr/bin/" + names[0], nil
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return filepath.Abs(p)
		}
	}
	return "", fmt.Errorf("%w: %s is not installed (Debian: mariadb-server, mariadb-client), needed to load a mariadb-dump file; or use restore.runtime: docker", drill.ErrUnsupported, names[0])
}

// startLogical drills a mariadb-dump/mysqldump SQL file: mariadb-install-db makes an empty
// data directory in scratch (no configuration of the host's: --no-defaults), mariadbd starts
// on it exactly as on a backup copy (the same isolation and throwaway account), and the
// mariadb client loads the dump over the unix socket, where the server runs. A dump that does
// not load is a failed load finding with the client's error lines, and nothing is left
// running; one that loads is checked as any copy.
func (e *Engine) startLogical(ctx context.Context, req drill.EngineStart) (drill.Server, []checks.Finding, error) {
	l := req.Copy.Logical
	if l.Format != drill.LogicalSQL {
		return nil, nil, fmt.Errorf("%w: MariaDB drills load SQL dumps (mariadb-dump), not %s dumps", drill.ErrUsage, l.Format)
	}
	if req.Run == nil {
		return nil, nil, fmt.Errorf("%w: restore.runtime %s cannot run mariadb-install-db", drill.ErrUnsupported, req.Runtime.Kind)
	}
	installDB, err := tool(req.Runtime.Kind, "mariadb-install-db", "mysql_install_db")
	if err != nil {
		return nil, nil, err
	}
	client, err := tool(req.Runtime.Kind, "mariadb", "mysql")
	if err != nil {
		return nil, nil, err
	}
	header := readHeader(l.Path)
	version := header.ServerVersion
	if req.Snapshot != nil && req.Snapshot.EngineVersion != "" {
		version = req.Snapshot.EngineVersion
	}
	dataDir := filepath.Join(req.ScratchDir, emptyDataDir)
	if err := os.Mkdir(dataDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("while making the empty data directory %s: %w", dataDir, err)
	}
	if err := req.RunAs.ChownTree(req.ScratchDir); err != nil {
		return nil, nil, fmt.Errorf("while handing the scratch directory to user %s: %w", req.RunAs.Name, err)
	}
	req.Status("making an empty data directory (mariadb-install-db) to load " + filepath.Base(l.Path) + " into")
	args := []string{"--no-defaults", "--datadir=" + dataDir, "--auth-root-authentication-method=normal",
		"--skip-test-db", "--skip-name-resolve"}
	if (req.Runtime.Kind == "" || req.Runtime.Kind == "local") && req.RunAs.IsCurrent() && os.Geteuid() == 0 {
		args = append(args, "--user=root") // as mariadbd: it refuses root unless told
	}
	out, code, err := req.Run(ctx, drill.LaunchSpec{Name: "mariadb-install-db", Path: installDB, Args: args,
		Image: defaultImage(version), Env: []string{"LC_ALL=C", "PATH=/usr/bin:/bin:/usr/sbin:/sbin"}})
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("while running mariadb-install-db: %w", context.Cause(ctx))
		}
		return nil, nil, fmt.Errorf("while making an empty data directory with mariadb-install-db (exit status %d): %w; its output: %s", code, err, enginemariadb.Tail(out, 5))
	}

	// The empty server starts as a backup copy's does; the copy it is started on is the
	// empty data directory.
	empty := req
	cp := *req.Copy
	cp.DataDir, cp.Logical = dataDir, nil
	empty.Copy = &cp
	srv, findings, err := e.Start(ctx, empty)
	if err != nil || srv == nil {
		return srv, findings, err
	}
	s := srv.(*Server)
	f, err := s.load(ctx, req, client, header)
	if err != nil || f.Status == checks.Fail {
		_, _ = s.Stop(10 * time.Second)
		if rerr := s.Remove(); rerr != nil && err == nil {
			err = fmt.Errorf("while removing the throwaway after a failed load: %w", rerr)
		}
		if err != nil {
			return nil, findings, err
		}
		return nil, append(findings, f), nil
	}
	return &loadedServer{Server: s, dump: l}, append(findings, f), nil
}

// readHeader reads the dump's header comments ("" fields when it has none).
func readHeader(path string) enginemariadb.DumpHeader {
	f, err := os.Open(path)
	if err != nil {
		return enginemariadb.DumpHeader{}
	}
	defer f.Close()
	return enginemariadb.ReadDumpHeader(f)
}

// loadScript is what the client runs: the dump's database made and selected first (a dump
// of one database without --databases has no CREATE DATABASE or USE of its own), the dump
// sourced (--abort-source-on-error stops at its first error), then the throwaway account
// made again (a dump of every database replaces the grant tables).
func loadScript(dump, database, regrant string) string {
	var b strings.Builder
	if database != "" {
		q := "`" + strings.ReplaceAll(database, "`", "``") + "`"
		fmt.Fprintf(&b, "CREATE DATABASE IF NOT EXISTS %s;\nUSE %s;\n", q, q)
	}
	fmt.Fprintf(&b, "source %s\nsource %s\n", dump, regrant)
	return b.String()
}

// load waits for the empty server, then loads the dump with the mariadb client, run where the
// server runs, as the throwaway account (an option file in scratch, read only by the client,
// removed after). The client's exit status judges the load.
func (s *Server) load(ctx context.Context, req drill.EngineStart, client string, header enginemariadb.DumpHeader) (checks.Finding, error) {
	l := req.Copy.Logical
	wctx, cancel := ctx, context.CancelFunc(func() {})
	if t := req.Runtime.StartTimeout; t > 0 {
		wctx, cancel = context.WithTimeout(ctx, t)
	}
	err := s.WaitReady(wctx, req.Status)
	cancel()
	if err != nil {
		return checks.Finding{}, fmt.Errorf("while starting the empty mariadbd to load %s into: %w", filepath.Base(l.Path), err)
	}
	scratch := req.ScratchDir
	cnf := filepath.Join(scratch, "client.cnf")
	regrant := filepath.Join(scratch, "regrant.sql")
	defer os.Remove(cnf)
	defer os.Remove(regrant)
	for file, content := range map[string]string{
		cnf:     fmt.Sprintf("[client]\nuser=%s\npassword=%s\nsocket=%s\n", drillUser, s.password, s.socket),
		regrant: initSQL(s.password),
	} {
		if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
			return checks.Finding{}, fmt.Errorf("while writing %s: %w", file, err)
		}
		if err := sameOwner(file, s.dataDir); err != nil {
			return checks.Finding{}, err
		}
	}
	req.Status(fmt.Sprintf("loading %s (%s) with the mariadb client", filepath.Base(l.Path), reports.HumanBytes(l.Bytes)))
	start := time.Now()
	// --defaults-file first: the client reads that file only, nothing of the host's.
	out, code, err := s.Exec(ctx, client, "--defaults-file="+cnf, "--batch", "--abort-source-on-error",
		"--execute="+loadScript(l.Path, header.Database, regrant))
	if ctx.Err() != nil {
		return checks.Finding{}, fmt.Errorf("while loading %s: %w", filepath.Base(l.Path), context.Cause(ctx))
	}
	return loadFinding(out, code, err, time.Since(start), l, header), nil
}

// sameOwner hands file to the owner of the data directory: the user the server and its tools
// run as (RunAs locally; a container runtime may hand the scratch directory to its own uid
// when it starts the server, after the copy was made).
func sameOwner(file, dir string) error {
	if os.Geteuid() != 0 {
		return nil // firedrill's own files are already the tools' (they run as firedrill's user)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("while reading the owner of %s: %w", dir, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if err := os.Lchown(file, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("while handing %s to the owner of %s: %w", file, dir, err)
	}
	return nil
}

// loadFinding judges the client's run. A client that could not run proves nothing (error);
// one that stopped on an error proves the dump does not load (fail), its error lines the
// evidence.
func loadFinding(out []byte, code int, runErr error, took time.Duration, l *drill.LogicalDump, h enginemariadb.DumpHeader) checks.Finding {
	ev := checks.Evidence{"dump": filepath.Base(l.Path), "bytes": l.Bytes, "seconds": took.Seconds(), "exitCode": code}
	if h.Database != "" {
		ev["database"] = h.Database
	}
	if h.ServerVersion != "" {
		ev["dumpedServerVersion"] = h.ServerVersion
	}
	lines := drill.OutputTail(out, 15)
	ev["output"] = lines
	switch {
	case code == -1 && runErr != nil:
		return checks.Errorf(LoadName, ev, "could not run the mariadb client: %v", runErr)
	case code != 0:
		reason := "no output"
		for i := len(lines) - 1; i >= 0; i-- {
			if strings.HasPrefix(lines[i], "ERROR") {
				reason = lines[i]
				break
			}
		}
		if reason == "no output" && len(lines) > 0 {
			reason = lines[len(lines)-1]
		}
		return checks.Failf(LoadName, ev, "the dump does not load (the mariadb client stopped with exit status %d): %s", code, reason)
	}
	return checks.Passf(LoadName, ev, "loaded %s (%s) into an empty MariaDB in %.1fs", filepath.Base(l.Path), reports.HumanBytes(l.Bytes), took.Seconds())
}

// loadedServer is a throwaway a dump was loaded into: its recovery finding says so.
type loadedServer struct {
	*Server
	dump *drill.LogicalDump
}

// Recovered implements drill.Server: the empty server's start, judged as a copy's.
func (s *loadedServer) Recovered(ctx context.Context) checks.Finding {
	f := s.Server.Recovered(ctx)
	f.Evidence["loadedFrom"] = filepath.Base(s.dump.Path)
	if f.Status == checks.Pass {
		f.Message = fmt.Sprintf("MariaDB %v started on an empty data directory (mariadb-install-db), loaded %s and accepts connections", f.Evidence["version"], filepath.Base(s.dump.Path))
	}
	return f
}
