package harness

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MariaDB is a private mariadbd for one test: its own data directory, socket and port on
// 127.0.0.1, binary logging on (snapshot code records binlog positions), stopped by t.Cleanup.
type MariaDB struct {
	// Addr is host:port on 127.0.0.1.
	Addr string
	Port int
	// Socket is the server's unix socket; root connects there without a password.
	Socket string
	// DataDir holds the databases; the binary logs are DataDir/binlog.NNNNNN.
	DataDir string
	// User and Password are a TCP account with every privilege (root is socket-only here).
	User, Password string
	// Database is created empty at start; DSN connects to it.
	Database string
	// DSN is a github.com/go-sql-driver/mysql DSN for User on Addr and Database.
	DSN string
	// Version is what SELECT VERSION() says.
	Version string
}

// MariaDBOption changes how StartMariaDB starts the server.
type MariaDBOption func(*mariadbOptions)

type mariadbOptions struct {
	args []string
}

// WithMariaDBArgs adds server options, such as "--binlog-format=STATEMENT"; later options win.
func WithMariaDBArgs(args ...string) MariaDBOption {
	return func(o *mariadbOptions) { o.args = append(o.args, args...) }
}

const (
	mariadbUser     = "firedrill"
	mariadbPassword = "firedrill"
	mariadbDatabase = "firedrill"
	mariadbHow      = "run 'make setup' as root, or apt-get install -y --no-install-recommends mariadb-server"
)

// Options that keep a throwaway server small and fast; durability does not matter here.
var mariadbSmallServer = []string{
	"--innodb-buffer-pool-size=32M",
	"--innodb-log-file-size=16M",
	"--innodb-flush-log-at-trx-commit=0",
	"--innodb-doublewrite=0",
	"--skip-name-resolve",
	"--performance-schema=OFF",
}

// StartMariaDB starts a private MariaDB server and returns when it accepts TCP connections
// (about 3 s, most of it mariadb-install-db). It calls Missing when MariaDB is not installed.
func StartMariaDB(t testing.TB, opts ...MariaDBOption) *MariaDB {
	t.Helper()
	var o mariadbOptions
	for _, opt := range opts {
		opt(&o)
	}
	server, err := findBinary("mariadbd")
	if err != nil {
		Missing(t, "MariaDB", "mariadbd not found", mariadbHow)
	}
	installDB, err := findBinary("mariadb-install-db")
	if err != nil {
		Missing(t, "MariaDB", "mariadb-install-db not found", mariadbHow)
	}

	dir := t.TempDir()
	run := shortTempDir(t, "fd-mariadb-") // socket and pid file: short paths
	m := &MariaDB{
		Port:     FreePort(t),
		Socket:   filepath.Join(run, "mariadbd.sock"),
		DataDir:  filepath.Join(dir, "data"),
		User:     mariadbUser,
		Password: mariadbPassword,
		Database: mariadbDatabase,
	}
	m.Addr = "127.0.0.1:" + strconv.Itoa(m.Port)

	// --no-defaults must come first: /etc/mysql/my.cnf names the system socket and data dir.
	// Root may only run mariadbd when it says so (--user=root); the temporary directories are
	// 0700, so switching to the mysql user would lock it out of them.
	common := []string{"--no-defaults"}
	if os.Geteuid() == 0 {
		common = append(common, "--user=root")
	}
	install := exec.Command(installDB, slices.Concat(common, []string{
		"--datadir=" + m.DataDir,
		"--auth-root-authentication-method=normal",
		"--skip-test-db",
	}, mariadbSmallServer)...)
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("while running mariadb-install-db: %v\n%s", err, out)
	}

	// The init file runs at every start with full privileges: it gives tests a TCP account
	// (the install made only root@localhost, which --skip-name-resolve keeps off TCP).
	initFile := filepath.Join(dir, "init.sql")
	initSQL := fmt.Sprintf(`CREATE USER IF NOT EXISTS '%[1]s'@'127.0.0.1' IDENTIFIED BY '%[2]s';
GRANT ALL PRIVILEGES ON *.* TO '%[1]s'@'127.0.0.1' WITH GRANT OPTION;
CREATE DATABASE IF NOT EXISTS %[3]s;
`, m.User, m.Password, m.Database)
	if err := os.WriteFile(initFile, []byte(initSQL), 0o600); err != nil {
		t.Fatalf("while writing the MariaDB init file: %v", err)
	}

	args := slices.Concat(common, []string{
		"--datadir=" + m.DataDir,
		"--socket=" + m.Socket,
		"--pid-file=" + filepath.Join(run, "mariadbd.pid"),
		"--port=" + strconv.Itoa(m.Port),
		"--bind-address=127.0.0.1",
		"--tmpdir=" + dir,
		"--init-file=" + initFile,
		"--log-bin=binlog",
		"--server-id=1",
		"--binlog-format=ROW",
	}, mariadbSmallServer, o.args)
	d := startDaemon(t, "mariadbd", exec.Command(server, args...), filepath.Join(dir, "mariadbd.log"), 20*time.Second)

	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = m.User, m.Password
	cfg.Net, cfg.Addr = "tcp", m.Addr
	cfg.DBName = m.Database
	cfg.ParseTime = true
	m.DSN = cfg.FormatDSN()

	db, err := sql.Open("mysql", m.DSN)
	if err != nil {
		t.Fatalf("while opening %s: %v", m.Addr, err)
	}
	defer db.Close()
	d.waitReady(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		return db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&m.Version)
	})
	logComponent(t, "mariadb", m.Version, "started on "+m.Addr)
	return m
}

// DSNFor returns a DSN for another database on this server.
func (m *MariaDB) DSNFor(database string) string {
	cfg, err := mysql.ParseDSN(m.DSN)
	if err != nil {
		panic(fmt.Sprintf("harness: the DSN this package built does not parse: %v", err))
	}
	cfg.DBName = database
	return cfg.FormatDSN()
}

// Open returns a *sql.DB on m's database, closed by t.Cleanup.
func (m *MariaDB) Open(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", m.DSN)
	if err != nil {
		t.Fatalf("while opening %s: %v", m.Addr, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
