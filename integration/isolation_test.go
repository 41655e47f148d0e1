package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/firedrill/firedrill/integration/harness"
	"github.com/firedrill/firedrill/restore/runtime/local"
)

type isolationCheck struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

// isolationJSON is the part of a drill result the isolation test reads.
type isolationJSON struct {
	Status  string `json:"status"`
	Error   string `json:"error"`
	Runtime struct {
		RunAs           string           `json:"runAs"`
		NetworkIsolated bool             `json:"networkIsolated"`
		Isolation       *isolationRecord `json:"isolation"`
	} `json:"runtime"`
	Checks []isolationCheck `json:"checks"`
	Kept   struct {
		ScratchDir string `json:"scratchDir"`
		PID        int    `json:"pid"`
		Connect    string `json:"connect"`
	} `json:"kept"`
}

// isolationRecord is runtime.isolation.
type isolationRecord struct {
	Namespaces  []string `json:"namespaces"`
	UID         int      `json:"uid"`
	GID         int      `json:"gid"`
	User        string   `json:"user"`
	UserFrom    string   `json:"userFrom"`
	Filesystem  string   `json:"filesystem"`
	NotPossible []string `json:"notPossible"`
	Proof       *struct {
		Paths []struct {
			Path    string `json:"path"`
			Visible bool   `json:"visible"`
			Detail  string `json:"detail"`
		} `json:"paths"`
	} `json:"proof"`
}

// From inside a kept throwaway, as the superuser the checks use, every way a superuser has to
// reach files, programs, sockets and the network finds nothing of production: not its data
// directory, socket, WAL archive, snapshot repository or processes. The result says what
// isolation was in force and proves it with the isolation finding. Needs root (namespaces).
func TestIsolationFromInsideKeptThrowaway(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{DataChecksums: true, Archive: true, TCP: true})
	if os.Geteuid() != 0 {
		t.Skip("the throwaway is isolated from production only when firedrill runs as root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tg, cfg := newTarget(t, pg, "")
	snapshotID(t, ctx, cfg)
	r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json", "--keep")
	var res isolationJSON
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("drill output is not JSON (%v): exit %d\n%s\n%s", err, r.code, r.stdout, r.stderr)
	}
	t.Cleanup(func() {
		if res.Kept.PID > 0 {
			_ = syscall.Kill(-res.Kept.PID, syscall.SIGKILL)
		}
		_ = os.RemoveAll(res.Kept.ScratchDir)
	})
	if r.code != 0 || res.Status != "pass" || res.Kept.Connect == "" {
		t.Fatalf("drill --keep: exit %d status %s (%s), kept %+v\n%s", r.code, res.Status, res.Error, res.Kept, r.stderr)
	}

	attackProduction(t, ctx, res.Kept.Connect, pg, tg.repo, true)

	// The result says what isolation was in force (all of it), and proves it.
	iso := checkIsolationRecord(t, res, pg, tg.repo, []string{"mount", "pid", "ipc", "uts", "net"})
	if iso.UID == 0 || iso.UID == int(pg.RunAs.UID) || iso.UserFrom != "sandbox" || len(iso.NotPossible) != 0 {
		t.Errorf("isolation uid %d (production's %d) from %q, not possible %v: want a sandbox uid and nothing missing", iso.UID, pg.RunAs.UID, iso.UserFrom, iso.NotPossible)
	}

	// A kept server is stopped by the leftover cleanup (firedrill gc, the next drill).
	stopped, err := local.CleanupLeftover(ctx, res.Kept.ScratchDir)
	if err != nil || len(stopped) == 0 {
		t.Errorf("CleanupLeftover of the kept drill: stopped %v, err %v", stopped, err)
	}
	if procs := processesUnder(res.Kept.ScratchDir); len(procs) != 0 {
		t.Errorf("processes still run on the kept scratch directory: %v", procs)
	}
}

// Not root, no other uid is possible, but where the kernel lets unprivileged users create user
// namespaces (as here) the same sandbox is built inside one: from a kept throwaway started by
// production's own user (the case that matters: the same uid as production), every attack
// still finds nothing, and the record says what was missing. As root, the test runs firedrill
// as production's user to get there.
func TestIsolationNotRoot(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{Archive: true, TCP: true})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var cred *syscall.Credential
	bin := binary
	if os.Geteuid() == 0 {
		cred = pg.RunAs.Credential()
		// The binary's own directory is private to root: give the user a copy it can run.
		b, err := os.ReadFile(binary)
		if err != nil {
			t.Fatal(err)
		}
		bin = filepath.Join(harness.TempDir(t), "firedrill")
		if err := os.WriteFile(bin, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tg, cfg := newTarget(t, pg, "")
	for _, p := range []string{tg.scratch, filepath.Dir(tg.repo), cfg} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := pg.RunAs.Chown(p); err != nil {
			t.Fatal(err)
		}
	}
	if r := runCLIAs(t, ctx, bin, cred, "snapshot", "--config", cfg, "--target", "orders"); r.code != 0 {
		t.Fatalf("snapshot as %s: exit %d\n%s%s", pg.RunAs.Name, r.code, r.stdout, r.stderr)
	}
	r := runCLIAs(t, ctx, bin, cred, "drill", "--config", cfg, "--output", "json", "--keep")
	var res isolationJSON
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("drill output is not JSON (%v): exit %d\n%s\n%s", err, r.code, r.stdout, r.stderr)
	}
	t.Cleanup(func() {
		if res.Kept.PID > 0 {
			_ = syscall.Kill(-res.Kept.PID, syscall.SIGKILL)
		}
	})
	if r.code != 0 || res.Status != "pass" || res.Kept.Connect == "" {
		t.Fatalf("drill not root: exit %d status %s (%s): the drill must still run\n%s", r.code, res.Status, res.Error, r.stderr)
	}
	attackProduction(t, ctx, res.Kept.Connect, pg, tg.repo, false)
	iso := checkIsolationRecord(t, res, pg, tg.repo, []string{"user", "mount", "pid", "ipc", "uts", "net"})
	if iso.UserFrom != "current" || iso.UID != int(pg.RunAs.UID) || !slices.ContainsFunc(iso.NotPossible, func(s string) bool { return strings.Contains(s, "not root") }) {
		t.Errorf("not root: uid %d from %q, notPossible %q; want firedrill's own uid and why no other", iso.UID, iso.UserFrom, iso.NotPossible)
	}
}

// checkIsolationRecord checks runtime.isolation names namespaces, that the isolation finding
// passed, and that its proof probed production's paths and saw none of them.
func checkIsolationRecord(t *testing.T, res isolationJSON, pg *harness.Postgres, repo string, namespaces []string) isolationRecord {
	t.Helper()
	iso := res.Runtime.Isolation
	if iso == nil {
		t.Fatalf("runtime.isolation missing: %+v", res.Runtime)
	}
	for _, ns := range namespaces {
		if !slices.Contains(iso.Namespaces, ns) {
			t.Errorf("runtime.isolation.namespaces = %v, missing %s", iso.Namespaces, ns)
		}
	}
	i := slices.IndexFunc(res.Checks, func(c isolationCheck) bool { return c.Name == "isolation" })
	if i < 0 || res.Checks[i].Status != "pass" {
		t.Errorf("isolation finding missing or not pass: %+v", res.Checks)
	}
	probed := map[string]bool{}
	if iso.Proof != nil {
		for _, p := range iso.Proof.Paths {
			probed[p.Path] = true
			if p.Visible {
				t.Errorf("the proof says %s is visible: %s", p.Path, p.Detail)
			}
		}
	}
	for _, p := range []string{pg.DataDir, pg.SocketDir, pg.ArchiveDir, repo} {
		if !probed[p] {
			t.Errorf("the isolation proof did not probe %s (probed %v)", p, probed)
		}
	}
	return *iso
}

// attackProduction connects to a kept throwaway as its superuser and tries every way a
// superuser has to reach production: each must find nothing. checkUID also requires that the
// server does not run as production's user (only possible when firedrill is root).
func attackProduction(t *testing.T, ctx context.Context, connect string, pg *harness.Postgres, repo string, checkUID bool) {
	t.Helper()
	prodData, prodSocket, prodArchive := pg.DataDir, pg.SocketDir, pg.ArchiveDir
	conn, err := pgx.Connect(ctx, connect)
	if err != nil {
		t.Fatalf("connecting to the kept throwaway: %v", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	exec := func(sql string, args ...any) error {
		_, err := conn.Exec(ctx, sql, args...)
		return err
	}
	mustExec := func(sql string) {
		t.Helper()
		if err := exec(sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// program runs a shell command inside the throwaway (COPY FROM PROGRAM) and returns its lines.
	program := func(cmd string) ([]string, error) {
		if err := exec("TRUNCATE out"); err != nil {
			return nil, err
		}
		if err := exec("COPY out FROM PROGRAM " + quote(cmd)); err != nil {
			return nil, err
		}
		rows, err := conn.Query(ctx, "SELECT line FROM out")
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, pgx.RowTo[string])
	}
	mustExec("CREATE TABLE out (line text)")
	mustExec("CREATE EXTENSION dblink")
	mustExec("CREATE EXTENSION postgres_fdw")

	archiveBefore := treeState(t, prodArchive)
	socketConn := fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres connect_timeout=3", prodSocket, pg.Port)
	tcpConn := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres connect_timeout=3", pg.Port)

	// Each attack returns what it got from production; any answer at all is a leak.
	cases := []struct {
		name   string
		attack func() (string, error)
	}{
		{"dblink over production's unix socket", func() (string, error) {
			var dir string
			err := conn.QueryRow(ctx, "SELECT x FROM dblink($1, 'select current_setting(''data_directory'')') AS t(x text)", socketConn).Scan(&dir)
			return dir, err
		}},
		{"dblink over production's 127.0.0.1 port", func() (string, error) {
			var dir string
			err := conn.QueryRow(ctx, "SELECT x FROM dblink($1, 'select current_setting(''data_directory'')') AS t(x text)", tcpConn).Scan(&dir)
			return dir, err
		}},
		{"postgres_fdw to production's socket", func() (string, error) {
			for _, sql := range []string{
				"CREATE SERVER prod FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host " + quote(prodSocket) + ", port " + quote(strconv.Itoa(pg.Port)) + ", dbname 'postgres')",
				"CREATE USER MAPPING FOR CURRENT_USER SERVER prod OPTIONS (user 'postgres')",
				"CREATE FOREIGN TABLE prod_settings (name text, setting text) SERVER prod OPTIONS (schema_name 'pg_catalog', table_name 'pg_settings')",
			} {
				if err := exec(sql); err != nil {
					return "", fmt.Errorf("setup %q: %w", sql, err)
				}
			}
			var dir string
			err := conn.QueryRow(ctx, "SELECT setting FROM prod_settings WHERE name = 'data_directory'").Scan(&dir)
			return dir, err
		}},
		{"pg_ls_dir of production's data directory", func() (string, error) {
			rows, err := conn.Query(ctx, "SELECT pg_ls_dir($1)", prodData)
			if err != nil {
				return "", err
			}
			names, err := pgx.CollectRows(rows, pgx.RowTo[string])
			return strings.Join(names, " "), err
		}},
		{"pg_read_file of production's PG_VERSION", func() (string, error) {
			var s string
			err := conn.QueryRow(ctx, "SELECT pg_read_file($1)", filepath.Join(prodData, "PG_VERSION")).Scan(&s)
			return s, err
		}},
		{"COPY TO PROGRAM ls of production's data directory", func() (string, error) {
			return "ls succeeded", exec("COPY (SELECT 1) TO PROGRAM " + quote("ls "+prodData))
		}},
		{"COPY FROM PROGRAM cat of production's PG_VERSION", func() (string, error) {
			lines, err := program("cat " + filepath.Join(prodData, "PG_VERSION"))
			return strings.Join(lines, " "), err
		}},
		{"lo_import of production's PG_VERSION", func() (string, error) {
			var oid uint32
			err := conn.QueryRow(ctx, "SELECT lo_import($1)", filepath.Join(prodData, "PG_VERSION")).Scan(&oid)
			return fmt.Sprint(oid), err
		}},
		{"pg_ls_dir of the snapshot repository", func() (string, error) {
			rows, err := conn.Query(ctx, "SELECT pg_ls_dir($1)", repo)
			if err != nil {
				return "", err
			}
			names, err := pgx.CollectRows(rows, pgx.RowTo[string])
			return strings.Join(names, " "), err
		}},
		{"pg_ls_dir of production's WAL archive", func() (string, error) {
			rows, err := conn.Query(ctx, "SELECT pg_ls_dir($1)", prodArchive)
			if err != nil {
				return "", err
			}
			names, err := pgx.CollectRows(rows, pgx.RowTo[string])
			return strings.Join(names, " "), err
		}},
		{"COPY TO PROGRAM writing into production's WAL archive", func() (string, error) {
			return "wrote", exec("COPY (SELECT 'x') TO PROGRAM " + quote("cat > "+filepath.Join(prodArchive, "firedrill-isolation-test")))
		}},
		{"production's socket file", func() (string, error) {
			var st *string
			err := conn.QueryRow(ctx, "SELECT pg_stat_file($1, true)::text", filepath.Join(prodSocket, ".s.PGSQL."+strconv.Itoa(pg.Port))).Scan(&st)
			if err == nil && st == nil {
				err = fmt.Errorf("not there")
			}
			return fmt.Sprint(st), err
		}},
		{"production's processes", func() (string, error) {
			// Every process the throwaway can see, with its command line: none is production's.
			// (Backslashes dropped: COPY's text format would read them as escapes.)
			lines, err := program("for p in /proc/[0-9]*; do printf '%s %s\\n' \"${p#/proc/}\" \"$(tr '\\0' ' ' < $p/cmdline 2>/dev/null)\"; done | tr -d '\\\\'")
			if err != nil {
				return "the listing itself failed, so it proves nothing: " + err.Error(), nil
			}
			var theirs []string
			for _, l := range lines {
				if strings.Contains(l, prodData) || strings.Contains(l, "pgbench") || strings.Contains(l, ".test") {
					theirs = append(theirs, l)
				}
			}
			if len(lines) > 30 {
				theirs = append(theirs, fmt.Sprintf("%d processes visible", len(lines)))
			}
			if len(theirs) == 0 {
				return "", fmt.Errorf("only the sandbox's own %d processes", len(lines))
			}
			return strings.Join(theirs, "; "), nil
		}},
		{"the server runs as production's user or root", func() (string, error) {
			if !checkUID {
				return "", errors.New("not checked: not root, the server runs as firedrill's own user")
			}
			lines, err := program("id -u")
			if err != nil {
				return "id -u failed, so it proves nothing: " + err.Error(), nil
			}
			if len(lines) == 1 && (lines[0] == strconv.Itoa(int(pg.RunAs.UID)) || lines[0] == "0") {
				return "uid " + lines[0], nil
			}
			return "", fmt.Errorf("uid %v", lines)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.attack()
			if err == nil {
				t.Errorf("reached production: %q", got)
			} else {
				t.Logf("refused: %v", err)
			}
		})
	}

	// archive_command set at runtime: the throwaway's archiver never writes to production.
	t.Run("archive_command set with ALTER SYSTEM", func(t *testing.T) {
		mustExec("ALTER SYSTEM SET archive_command = " + quote("cp %p "+prodArchive+"/%f"))
		mustExec("SELECT pg_reload_conf()")
		mustExec("CREATE TABLE churn AS SELECT generate_series(1, 10000) AS i")
		mustExec("SELECT pg_switch_wal()")
		mustExec("CHECKPOINT")
		after := treeState(t, prodArchive)
		for p := range after {
			if _, ok := archiveBefore[p]; !ok {
				t.Errorf("a new file appeared in production's WAL archive: %s", p)
			}
		}
	})
}

// runCLIAs runs firedrill binary bin with cred (nil: as this process).
func runCLIAs(t *testing.T, ctx context.Context, bin string, cred *syscall.Credential, args ...string) cliResult {
	t.Helper()
	harness.Integration(t)
	cmd := osexec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Dir = os.TempDir()
	var so, se strings.Builder
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	var ee *osexec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running firedrill %v: %v", args, err)
	}
	return cliResult{code: code, stdout: so.String(), stderr: se.String()}
}
