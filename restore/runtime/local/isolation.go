package local

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/runtime/local/sandbox"
)

// IsolationName is the finding that proves, from inside the running throwaway, that nothing
// of production is visible to it.
const IsolationName = "isolation"

// productionPaths are the production paths this drill knows: those config gave, plus what the
// snapshot names: tablespace locations (tablespace_map) and the directories of the archive and
// restore commands (postgresql.conf, postgresql.auto.conf). Each is listed as given and, when
// it differs, with its symlinks resolved.
func productionPaths(o Options) []string {
	paths := slices.Clone(o.ProductionPaths)
	if m := o.Files[postgres.TablespaceMapFile]; len(m) > 0 {
		sc := bufio.NewScanner(bytes.NewReader(m))
		for sc.Scan() {
			if _, loc, ok := strings.Cut(strings.TrimSpace(sc.Text()), " "); ok {
				paths = append(paths, loc)
			}
		}
	}
	for _, conf := range []string{"postgresql.conf", "postgresql.auto.conf"} {
		b, err := os.ReadFile(filepath.Join(o.DataDir, conf))
		if err != nil {
			continue
		}
		paths = append(paths, commandDirs(b)...)
	}
	return resolvedPaths(paths)
}

// commandDirs returns the directories that archive/restore commands in a PostgreSQL
// configuration file write to or read from: the directory of each absolute path token that
// carries a %f/%p placeholder ("cp %p /mnt/archive/%f" gives /mnt/archive).
func commandDirs(conf []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(conf))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		key, val, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		switch strings.TrimSpace(key) {
		case "archive_command", "restore_command", "archive_cleanup_command", "recovery_end_command":
		default:
			continue
		}
		for _, tok := range strings.FieldsFunc(val, func(r rune) bool { return strings.ContainsRune(" \t'\"`;&|<>()", r) }) {
			if !strings.HasPrefix(tok, "/") {
				continue
			}
			if i := strings.Index(tok, "%"); i >= 0 {
				if d := filepath.Dir(tok[:i] + "x"); d != "/" {
					out = append(out, d)
				}
			}
		}
	}
	return out
}

func resolvePath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return filepath.Clean(p)
}

// sandboxSpec is the sandbox of this drill: the scratch directory (and a socket directory
// made outside it) writable at its own path, the server's installation read-only when it is
// outside /usr, and production's paths inside those trees masked.
func (p *Process) sandboxSpec() *sandbox.Spec {
	writable := []string{p.opts.ScratchDir}
	if p.ownSocket {
		writable = append(writable, p.socketDir)
	}
	return buildSandbox(p.opts.RunAs, p.opts.IsolateNetwork, writable, []string{filepath.Dir(p.opts.BinDir)}, p.production)
}

// buildSandbox is a throwaway's sandbox: writable trees at their own path, the server's
// installations read-only when outside /usr, production's paths inside what it shows masked.
func buildSandbox(runAs postgres.RunAs, isolateNetwork bool, writable, installs, production []string) *sandbox.Spec {
	s := &sandbox.Spec{UID: runAs.UID, GID: runAs.GID, Tag: writable[0], HostNetwork: !isolateNetwork}
	if runAs.IsCurrent() { // not root: firedrill's own ids, inside a user namespace
		s.UID, s.GID = uint32(os.Getuid()), uint32(os.Getgid())
	}
	s.Writable = slices.Clone(writable)
	var needed []string
	for _, dir := range installs {
		install := resolvePath(dir)
		if !strings.HasPrefix(install, "/usr/") && !slices.Contains(s.ReadOnly, install) {
			s.ReadOnly = append(s.ReadOnly, install)
		}
		needed = append(needed, install)
	}
	for _, w := range s.Writable {
		needed = append(needed, resolvePath(w))
	}
	s.Masks, _ = sandbox.MaskPlan(s.Exposed(), needed, production, readDirNames)
	return s
}

func readDirNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Name()
	}
	return out, nil
}

// describeIsolation is the isolation record before the probe.
func (p *Process) describeIsolation() *reports.Isolation {
	return isolationRecord(p.opts.RunAs, p.opts.UserFrom, p.sandbox, p.sandboxErr, p.opts.Listen == "tcp")
}

// isolationRecord says what isolates a throwaway run in sb (nil: on the host, sbErr says
// why), as runAs (userFrom), listening on tcp or a unix socket.
func isolationRecord(runAs postgres.RunAs, userFrom string, sb *sandbox.Spec, sbErr error, tcp bool) *reports.Isolation {
	iso := &reports.Isolation{UID: int(runAs.UID), GID: int(runAs.GID), User: runAs.Name, UserFrom: userFrom, Namespaces: []string{}}
	if runAs.IsCurrent() {
		iso.UID, iso.GID = os.Getuid(), os.Getgid()
		iso.User = "(current user)"
	}
	if iso.UserFrom == "" {
		iso.UserFrom = UserFromRunAsUser
		if runAs.IsCurrent() {
			iso.UserFrom = UserFromCurrent
		}
	}
	if sb == nil {
		why := "firedrill is not root"
		if sbErr != nil {
			why = sbErr.Error()
		}
		iso.Filesystem = "host filesystem: the server sees every file its user can read"
		iso.NotPossible = []string{
			"user, mount, pid, ipc, uts and net namespaces: " + why,
			"a dedicated uid: firedrill is not root; the server runs as firedrill's own user and can read and write what that user can",
		}
		return iso
	}
	iso.Namespaces = sb.Namespaces()
	var shown []string
	for _, t := range sandbox.SystemTrees {
		if fi, err := os.Lstat(t); err == nil && fi.IsDir() {
			shown = append(shown, t+" ro")
		}
	}
	for _, t := range sb.ReadOnly {
		shown = append(shown, t+" ro")
	}
	for _, t := range sb.Writable {
		shown = append(shown, t+" rw")
	}
	iso.Filesystem = "private root: " + strings.Join(shown, ", ") + "; synthetic /etc, minimal /dev, private /proc, /tmp and /dev/shm"
	iso.Masked = slices.Clone(sb.Masks)
	if sb.HostNetwork {
		why := "restore.local.isolateNetwork is false"
		if tcp {
			why = "restore.local.listen is tcp: the server must be reachable on the host's 127.0.0.1"
		}
		iso.NotPossible = append(iso.NotPossible, "net namespace: "+why)
	}
	switch userFrom {
	case UserFromRunAsUser:
		iso.NotPossible = append(iso.NotPossible, fmt.Sprintf("a uid of its own: restore.local.runAsUser is %s (uid %d), which may own other files", runAs.Name, runAs.UID))
	case UserFromCurrent:
		iso.NotPossible = append(iso.NotPossible, "a uid of its own: firedrill is not root; the server runs as firedrill's own uid, and keeps its groups, in a user namespace (the private root shows it nothing but the scratch copy)")
	}
	return iso
}

// CheckIsolation probes, as the superuser from inside the running throwaway, every production
// path the drill knows (pg_stat_file, pg_ls_dir), records what it saw in the isolation record,
// and returns the isolation finding: pass when nothing of production is visible, warn naming
// what is (never fail: it says nothing about the backup).
func (p *Process) CheckIsolation(ctx context.Context) checks.Finding {
	proof := &reports.IsolationProof{Method: fmt.Sprintf("pg_stat_file and pg_ls_dir as superuser %q from inside the throwaway", p.opts.Superuser), Paths: []reports.IsolationProbed{}}
	p.isolation.Proof = proof
	ev := checks.Evidence{"paths": len(p.production)}
	if len(p.production) == 0 {
		return checks.Warnf(IsolationName, ev, "no production path known to probe")
	}
	conn, err := p.Connect(ctx, "postgres")
	if err != nil {
		return checks.Warnf(IsolationName, ev, "could not probe isolation: %v", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	own := []string{p.opts.ScratchDir, p.socketDir}
	if p.sandbox != nil {
		own = append(append(append(own, p.sandbox.ReadOnly...), p.sandbox.Writable...), sandbox.SystemTrees...)
	}
	var visible []string
	for _, path := range p.production {
		pr := probePath(ctx, conn, path, own)
		proof.Paths = append(proof.Paths, pr)
		if pr.Visible {
			visible = append(visible, path+" ("+pr.Detail+")")
		}
	}
	ev["visible"] = visible
	if len(p.isolation.NotPossible) > 0 {
		ev["notPossible"] = p.isolation.NotPossible
	}
	if len(visible) > 0 {
		return checks.Warnf(IsolationName, ev, "production is visible from inside the throwaway: %s", strings.Join(visible, "; "))
	}
	return checks.Passf(IsolationName, ev, "none of production's %d known paths is visible from inside the throwaway", len(p.production))
}

// probePath is what the throwaway's superuser sees at path: nothing, an empty directory or
// file (a mask), or production's content.
func probePath(ctx context.Context, conn *pgx.Conn, path string, own []string) reports.IsolationProbed {
	pr := reports.IsolationProbed{Path: path}
	var isDir *bool
	var size *int64
	if err := conn.QueryRow(ctx, "SELECT (s).isdir, (s).size FROM (SELECT pg_stat_file($1, true) AS s) f", path).Scan(&isDir, &size); err != nil {
		// It exists, but the server may not look: its existence is visible, its content not.
		pr.Visible, pr.Detail = true, "exists: "+firstLine(err.Error())
		return pr
	}
	switch {
	case isDir == nil:
		pr.Detail = "does not exist"
	case *isDir:
		rows, err := conn.Query(ctx, "SELECT pg_ls_dir($1, true, false)", path)
		var names []string
		if err == nil {
			names, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		if err != nil {
			pr.Visible, pr.Detail = true, "directory, not listable: "+firstLine(err.Error())
			break
		}
		pr.Visible, pr.Detail = dirDetail(path, names, own)
	case size != nil && *size > 0:
		pr.Visible, pr.Detail = true, fmt.Sprintf("file of %d bytes", *size)
	default:
		pr.Detail = "empty file (masked)"
	}
	return pr
}

// dirDetail judges a production directory seen from inside the throwaway, listing names: a
// directory above the sandbox's own trees (own) shows the way to them, nothing else.
func dirDetail(path string, names, own []string) (visible bool, detail string) {
	var theirs []string
	for _, n := range names {
		full := filepath.Join(path, n)
		if !slices.ContainsFunc(own, func(o string) bool { return full == o || strings.HasPrefix(o, full+"/") }) {
			theirs = append(theirs, n)
		}
	}
	switch {
	case len(theirs) > 0:
		return true, fmt.Sprintf("directory with %d entries", len(theirs))
	case len(names) > 0:
		return false, "only the way to the throwaway's own files"
	}
	return false, "empty directory (masked)"
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
