package mariadb

import (
	"context"
	"crypto/sha1"
	"database/sql"
	"encoding/hex"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/drill"
	enginemariadb "github.com/firedrill/firedrill/restore/engine/mariadb"
)

// initFileName is the init file's name among the launch's files.
const initFileName = "init.sql"

// startRemote starts mariadbd on a copy only the runtime's processes see (a Kubernetes pod's
// scratch PVC, a CSI snapshot's data directory): the server reads the copy in place (InnoDB's
// crash recovery is the restore), listens on TCP at the runtime's Bind:Port, and the
// throwaway account's init file reaches it as one of the launch's files. That file holds only
// the password's mysql_native_password hash, which cannot be used to log in: the password
// itself stays in firedrill's memory.
func (e *Engine) startRemote(ctx context.Context, req drill.EngineStart) (drill.Server, []checks.Finding, error) {
	if req.Snapshot != nil && req.Snapshot.Attributes[enginemariadb.AttrFlavor] == "mysql" {
		return nil, nil, fmt.Errorf("%w: the snapshot is of MySQL, whose files mariadbd does not start on", drill.ErrUnsupported)
	}
	if req.Launch == nil {
		return nil, nil, fmt.Errorf("%w: restore.runtime %s cannot launch mariadbd", drill.ErrUnsupported, req.Runtime.Kind)
	}
	password, err := randomPassword()
	if err != nil {
		return nil, nil, err
	}
	rm := req.Remote
	host := "%" // reached on the pod's IP: the runtime's network policy admits only the runner
	if rm.Bind == "127.0.0.1" {
		host = "127.0.0.1" // a port-forward arrives on the pod's loopback
	}
	args := []string{"--no-defaults",
		"--datadir=" + rm.DataDir,
		"--socket=/tmp/mysqld.sock",
		"--pid-file=/tmp/mysqld.pid",
		"--tmpdir=/tmp",
		"--init-file=" + path.Join(rm.FilesDir, initFileName),
		"--bind-address=" + rm.Bind,
		"--port=" + strconv.Itoa(rm.Port),
		"--skip-name-resolve",
		"--skip-slave-start",
		"--skip-log-bin",
		"--event-scheduler=OFF",
		"--performance-schema=OFF",
		"--innodb-buffer-pool-size=128M",
		"--log-warnings=2",
	}
	version := ""
	if req.Snapshot != nil {
		version = req.Snapshot.EngineVersion
	}
	req.Status("starting mariadbd on the copy")
	proc, err := req.Launch(ctx, drill.LaunchSpec{
		Name: "mariadbd", Path: "/usr/sbin/mariadbd", Args: args, Image: defaultImage(version),
		Listen: fmt.Sprintf("tcp:%s:%d (where it runs)", rm.Bind, rm.Port),
		Files:  map[string]string{initFileName: remoteInitSQL(host, password)},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("while starting mariadbd on %s: %w", rm.DataDir, err)
	}
	reach, ok := proc.(drill.Reachable)
	if !ok {
		_ = proc.Remove()
		return nil, nil, fmt.Errorf("%w: restore.runtime %s runs mariadbd where firedrill cannot reach it", drill.ErrUnsupported, req.Runtime.Kind)
	}
	s := &Server{Process: proc, password: password, dataDir: rm.DataDir, recorded: map[string]string{}}
	if req.Snapshot != nil {
		s.recorded, s.snapshotVersion = req.Snapshot.Attributes, req.Snapshot.EngineVersion
	}
	return &podServer{Server: s, reach: reach}, nil, nil
}

// nativeHash is MySQL's mysql_native_password hash of a password: '*' and the hex of
// SHA1(SHA1(password)). A client proves it knows SHA1(password), which the hash does not give.
func nativeHash(password string) string {
	a := sha1.Sum([]byte(password))
	b := sha1.Sum(a[:])
	return "*" + strings.ToUpper(hex.EncodeToString(b[:]))
}

// remoteInitSQL makes the throwaway account over TCP from host, by the password's hash.
func remoteInitSQL(host, password string) string {
	return fmt.Sprintf("CREATE OR REPLACE USER '%s'@'%s' IDENTIFIED BY PASSWORD '%s';\nGRANT ALL PRIVILEGES ON *.* TO '%s'@'%s' WITH GRANT OPTION;\n",
		drillUser, host, nativeHash(password), drillUser, host)
}

// podServer is a throwaway mariadbd firedrill reaches over TCP once the runtime says where.
type podServer struct {
	*Server
	reach drill.Reachable
}

// WaitReady waits for the runtime to run the server (and forward to it), opens the checks'
// pool over TCP, then waits as for a local server.
func (p *podServer) WaitReady(ctx context.Context, status func(string)) error {
	if p.db == nil {
		addr, err := p.reach.Addr(ctx, status)
		if err != nil {
			return fmt.Errorf("mariadbd did not start on the copy: %w", err)
		}
		cfg := mysql.NewConfig()
		cfg.Net, cfg.Addr = "tcp", addr
		cfg.User, cfg.Passwd = drillUser, p.password
		cfg.Timeout = 5 * time.Second
		cfg.Params = map[string]string{"time_zone": "'+00:00'"}
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			return fmt.Errorf("while configuring the connection to the throwaway: %w", err)
		}
		p.db = sql.OpenDB(conn)
		p.db.SetConnMaxIdleTime(time.Minute)
	}
	return p.Server.WaitReady(ctx, status)
}

// CheckEnv implements drill.Server: the checks use the TCP pool WaitReady opened.
func (p *podServer) CheckEnv(env *checks.Env) {
	if p.db != nil {
		env.SQL = p.db
	}
	env.DataDir = p.dataDir
	env.Exec = p.Exec
}
