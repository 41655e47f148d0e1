package mariadb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/drill"
	enginemariadb "github.com/firedrill/firedrill/restore/engine/mariadb"
)

// Engine drills MariaDB copies on the local runtime.
type Engine struct {
	// Server is mariadbd's path; empty: /usr/sbin/mariadbd, else found on PATH.
	Server string
}

var _ drill.EngineDrill = (*Engine)(nil)

// drillUser is the throwaway account the init file creates; its password is random, lives in
// memory only and dies with the throwaway.
const drillUser = "firedrill_drill"

// maxSocketPath leaves room in sockaddr_un's 108 bytes.
const maxSocketPath = 100

// Runtimes implements drill.EngineDrill: the local sandbox, or a container of an image with
// mariadbd and mariadb-backup (there the tool that prepares and the server match), or a pod on
// a CSI snapshot's scratch PVC (kubernetes.go).
func (*Engine) Runtimes() []string { return []string{"local", "docker", "kubernetes"} }

// defaultImage is the container image of a snapshot's server: the official image of its
// major.minor version (restore.docker.image overrides it).
func defaultImage(serverVersion string) string {
	parts := strings.SplitN(serverVersion, ".", 3)
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		return "mariadb:lts"
	}
	minor := parts[1]
	if i := strings.IndexFunc(minor, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minor = minor[:i]
	}
	return "mariadb:" + parts[0] + "." + minor
}

// Start implements drill.EngineDrill: prepare a mariadb-backup copy, then start mariadbd on it.
func (e *Engine) Start(ctx context.Context, req drill.EngineStart) (drill.Server, []checks.Finding, error) {
	if req.Copy != nil && req.Copy.Logical != nil {
		return e.startLogical(ctx, req) // dump.go: a mariadb-dump loaded into an empty server
	}
	if req.Remote != nil {
		return e.startRemote(ctx, req) // kubernetes.go: a CSI snapshot's data directory in a pod
	}
	if req.Copy == nil || req.Copy.DataDir == "" {
		return nil, nil, fmt.Errorf("%w: MariaDB drills need a local copy of the data directory (a local snapshot)", drill.ErrUnsupported)
	}
	if req.Snapshot != nil && req.Snapshot.Attributes[enginemariadb.AttrFlavor] == "mysql" {
		return nil, nil, fmt.Errorf("%w: the snapshot is of MySQL, whose files mariadbd does not start on", drill.ErrUnsupported)
	}
	serverPath, err := e.serverPath()
	if err != nil {
		return nil, nil, err
	}
	if req.Launch == nil {
		return nil, nil, fmt.Errorf("%w: restore.runtime %s cannot launch mariadbd", drill.ErrUnsupported, req.Runtime.Kind)
	}
	dataDir, scratch := req.Copy.DataDir, req.ScratchDir
	socket := filepath.Join(scratch, "mysqld.sock")
	if len(socket) > maxSocketPath {
		return nil, nil, fmt.Errorf("%w: the socket path %s is longer than a unix socket allows (%d bytes): use a shorter restore.local.scratchDir", drill.ErrUsage, socket, maxSocketPath)
	}
	tmp := filepath.Join(scratch, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, nil, fmt.Errorf("while creating %s: %w", tmp, err)
	}
	// The copy was made as firedrill's user; the tool and the server run as the scratch
	// directory's owner.
	if err := req.RunAs.ChownTree(scratch); err != nil {
		return nil, nil, fmt.Errorf("while handing the scratch copy to user %s: %w", req.RunAs.Name, err)
	}
	var findings []checks.Finding
	isBackup, prepared := backupState(dataDir)
	if isBackup && !prepared {
		req.Status("preparing the copy (mariadb-backup --prepare)")
		f, err := prepare(ctx, req, dataDir, tmp)
		if err != nil {
			return nil, nil, err
		}
		findings = append(findings, f)
		if f.Status == checks.Fail {
			return nil, findings, nil
		}
	}
	layout, err := layoutArgs(dataDir)
	if err != nil {
		return nil, findings, err
	}
	password, err := randomPassword()
	if err != nil {
		return nil, findings, err
	}
	initFile := filepath.Join(scratch, "init.sql")
	if err := os.WriteFile(initFile, []byte(initSQL(password)), 0o600); err != nil {
		return nil, findings, fmt.Errorf("while writing the throwaway account's init file: %w", err)
	}
	if err := req.RunAs.Chown(initFile); err != nil {
		return nil, findings, fmt.Errorf("while handing the init file to user %s: %w", req.RunAs.Name, err)
	}
	// --no-defaults first: nothing of the host's or the source's configuration (plugins,
	// replication, paths) is read; only the files' layout comes from backup-my.cnf.
	args := []string{"--no-defaults",
		"--datadir=" + dataDir,
		"--socket=" + socket,
		"--pid-file=" + filepath.Join(scratch, "mysqld.pid"),
		"--tmpdir=" + tmp,
		"--init-file=" + initFile,
		"--skip-networking",
		"--skip-slave-start",
		"--skip-log-bin",
		"--event-scheduler=OFF",
		"--performance-schema=OFF",
		"--innodb-buffer-pool-size=128M",
		"--log-warnings=2",
	}
	args = append(args, layout...)
	if (req.Runtime.Kind == "" || req.Runtime.Kind == "local") && req.RunAs.IsCurrent() && os.Geteuid() == 0 {
		// mariadbd refuses to run as root unless told to.
		args = append(args, "--user=root")
	}
	version := ""
	if req.Snapshot != nil {
		version = req.Snapshot.EngineVersion
	}
	req.Status("starting mariadbd on the copy")
	proc, err := req.Launch(ctx, drill.LaunchSpec{
		Name: "mariadbd", Path: serverPath, Args: args, Image: defaultImage(version),
		EngineVersion: version,
		Listen:        "unix:" + socket,
	})
	if err != nil {
		return nil, findings, fmt.Errorf("while starting mariadbd on %s: %w", dataDir, err)
	}
	s := &Server{Process: proc, socket: socket, password: password, initFile: initFile, dataDir: dataDir,
		recorded: map[string]string{}, prepared: isBackup}
	if req.Snapshot != nil {
		s.recorded, s.snapshotVersion = req.Snapshot.Attributes, req.Snapshot.EngineVersion
	}
	return s, findings, nil
}

func (e *Engine) serverPath() (string, error) {
	if e.Server != "" {
		return e.Server, nil
	}
	for _, p := range []string{"/usr/sbin/mariadbd", "/usr/sbin/mysqld"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	for _, n := range []string{"mariadbd", "mysqld"} {
		if p, err := exec.LookPath(n); err == nil {
			return filepath.Abs(p)
		}
	}
	return "", errors.New("mariadbd is not installed (Debian: mariadb-server)")
}

func randomPassword() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("while making the throwaway account's password: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// initSQL makes the throwaway account. It runs with every privilege before the server
// accepts connections; the grant tables stay on (no --skip-grant-tables), so the copy's own
// accounts keep their privileges and nothing else can log in without a password.
func initSQL(password string) string {
	return fmt.Sprintf("CREATE OR REPLACE USER '%s'@'localhost' IDENTIFIED BY '%s';\nGRANT ALL PRIVILEGES ON *.* TO '%s'@'localhost' WITH GRANT OPTION;\n",
		drillUser, password, drillUser)
}

// Server is a throwaway mariadbd on a restored copy: the runtime's process plus what MariaDB
// needs to be waited for, judged and checked.
type Server struct {
	drill.Process
	socket, password, initFile, dataDir string
	recorded                            map[string]string
	snapshotVersion                     string
	prepared                            bool
	db                                  *sql.DB
}

var _ drill.Server = (*Server)(nil)

// pool is the checks' connection pool over the socket, as the throwaway account.
func (s *Server) pool() (*sql.DB, error) {
	if s.db != nil {
		return s.db, nil
	}
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr = "unix", s.socket
	cfg.User, cfg.Passwd = drillUser, s.password
	cfg.Timeout = 5 * time.Second
	// Timestamps come back as the instants they are (freshness compares them with now).
	cfg.Params = map[string]string{"time_zone": "'+00:00'"}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("while configuring the connection to the throwaway: %w", err)
	}
	s.db = sql.OpenDB(conn)
	s.db.SetConnMaxIdleTime(time.Minute)
	return s.db, nil
}

// WaitReady implements drill.Lifecycle: it pings over the socket until the server answers
// (InnoDB's recovery done, the init file run), the server exits, or ctx ends.
func (s *Server) WaitReady(ctx context.Context, status func(string)) error {
	status("waiting for mariadbd to recover the copy and accept connections")
	db, err := s.pool()
	if err != nil {
		return err
	}
	var last error
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		last = db.PingContext(pctx)
		cancel()
		if last == nil {
			// The password is in memory; the file that set it goes.
			if err := os.Remove(s.initFile); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("while removing the init file: %w", err)
			}
			return nil
		}
		select {
		case <-s.Exited():
			how := "it exited"
			if ee, ok := s.Process.(interface{ ExitError() error }); ok && ee.ExitError() != nil {
				how = ee.ExitError().Error()
			}
			return fmt.Errorf("mariadbd exited before accepting connections (%s); its log: %s", how, strings.Join(s.LogEvidence(5), " | "))
		case <-ctx.Done():
			return fmt.Errorf("while waiting for mariadbd to accept connections (last: %v): %w", last, ctx.Err())
		case <-tick.C:
		}
	}
}

// Stop implements drill.Lifecycle: the pool closes first, then the server shuts down cleanly.
func (s *Server) Stop(grace time.Duration) (bool, error) {
	s.closePool()
	return s.Process.Stop(grace)
}

// Remove implements drill.Lifecycle.
func (s *Server) Remove() error {
	s.closePool()
	_ = os.Remove(s.initFile)
	return s.Process.Remove()
}

func (s *Server) closePool() {
	if s.db != nil {
		_ = s.db.Close()
		s.db = nil
	}
}

// CheckEnv implements drill.Server.
func (s *Server) CheckEnv(env *checks.Env) {
	if db, err := s.pool(); err == nil {
		env.SQL = db
	}
	env.DataDir = s.dataDir
	env.Exec = s.Exec
}

// InnoDB's and Aria's log lines that say the copy is damaged or did not recover.
var damagedLogRe = regexp.MustCompile(`(?i)(\[ERROR\].*(InnoDB|Aria|corrupt|recover|tablespace|page)|database page corruption|page .* is corrupted|is marked as crashed|\[FATAL\]|assertion failure|got signal 6|got signal 11)`)

// recoveryLogRe are the lines that say how recovery went.
var recoveryLogRe = regexp.MustCompile(`(?i)(crash recovery|recovery|log sequence number|rolled back|to recover|applying|ready for connections|InnoDB: .*(LSN|completed))`)

// Recovered implements drill.Server: the recovery finding. Pass when mariadbd answered and its
// log shows no damage; fail, with the log lines, when InnoDB or Aria reported damage or
// recovery errors while starting.
func (s *Server) Recovered(ctx context.Context) checks.Finding {
	lines := serverLines(s.LogEvidence(1 << 20))
	var damaged, recovery []string
	for _, l := range lines {
		switch {
		case damagedLogRe.MatchString(l):
			damaged = append(damaged, l)
		case recoveryLogRe.MatchString(l):
			recovery = append(recovery, l)
		}
	}
	ev := checks.Evidence{"serverLog": lastN(recovery, 20), "preparedWithMariaDBBackup": s.prepared}
	pitr := ""
	if pos := checks.RecordedBinlogPosition(s.recorded); pos != "" {
		ev["snapshotBinlogPosition"] = pos
		pitr = "; a point-in-time recovery would continue from binary log position " + pos
		if g := s.recorded[enginemariadb.AttrGTIDBinlogPos]; g != "" {
			ev["snapshotGTIDBinlogPos"] = g
			pitr += " (GTID " + g + ")"
		}
	}
	if s.snapshotVersion != "" {
		ev["snapshotVersion"] = s.snapshotVersion
	}
	var version string
	if s.db != nil {
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := s.db.QueryRowContext(qctx, "SELECT VERSION()").Scan(&version)
		cancel()
		if err != nil && len(damaged) == 0 {
			return checks.Errorf(drill.RecoveryName, ev, "mariadbd answered a ping but not SELECT VERSION(): %v", err)
		}
		ev["version"] = version
	}
	if len(damaged) > 0 {
		ev["serverLog"] = lastN(damaged, 30)
		return checks.Failf(drill.RecoveryName, ev, "mariadbd started on the copy but reported damage or recovery errors: %s", strings.TrimSpace(damaged[0]))
	}
	return checks.Passf(drill.RecoveryName, ev, "MariaDB %s recovered the copy and accepts connections%s", version, pitr)
}

// serverLines are the log's lines from the server's last start on: a local runtime's log
// holds the prepare tool's output first.
func serverLines(lines []string) []string {
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "Starting MariaDB ") && strings.Contains(lines[i], " as process ") {
			return lines[i:]
		}
	}
	return lines
}

func lastN(s []string, n int) []string {
	if s == nil {
		return []string{}
	}
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
