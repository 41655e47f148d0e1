package demo

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// mariadbDemo is a production MariaDB on a unix socket in the sandbox (no TCP port): a shop
// schema with customers and orders, InnoDB, binary log on.
type mariadbDemo struct {
	srv     *server
	dir     string
	dataDir string
	socket  string
	orders  int
}

// mariadbCommon comes first on every command line: /etc/mysql/my.cnf names the system's
// socket and data directory. Root may only run mariadbd when it says so.
func mariadbCommon() []string {
	common := []string{"--no-defaults"}
	if os.Geteuid() == 0 {
		common = append(common, "--user=root")
	}
	return common
}

func startMariaDBDemo(ctx context.Context, s *Sandbox, status func(string)) (production, error) {
	const install = "apt-get install mariadb-server mariadb-backup"
	bin, err := findServer("mariadbd", install)
	if err != nil {
		return nil, err
	}
	installDB, err := findServer("mariadb-install-db", install)
	if err != nil {
		return nil, err
	}
	d := &mariadbDemo{dir: filepath.Join(s.Dir, "production"), orders: s.opts.Scale * 2000}
	d.dataDir, d.socket = filepath.Join(d.dir, "data"), filepath.Join(d.dir, "mysqld.sock")
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return nil, fmt.Errorf("while creating %s: %w", d.dir, err)
	}
	small := []string{"--innodb-buffer-pool-size=64M", "--innodb-log-file-size=16M", "--skip-name-resolve", "--performance-schema=OFF"}
	status("creating the production MariaDB (mariadb-install-db)")
	cmd := exec.CommandContext(ctx, installDB, append(append(mariadbCommon(), "--datadir="+d.dataDir,
		"--auth-root-authentication-method=socket", "--skip-test-db"), small...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("while running mariadb-install-db: %w\n%s", err, lastLines(string(out), 10))
	}
	status("starting the production MariaDB (unix socket, binary log on)")
	d.srv, err = startServer("mariadbd", append(append(append([]string{bin}, mariadbCommon()...), "--datadir="+d.dataDir, "--socket="+d.socket,
		"--pid-file="+filepath.Join(d.dir, "mysqld.pid"), "--skip-networking", "--tmpdir="+d.dir,
		"--log-bin=binlog", "--server-id=1", "--binlog-format=ROW"), small...), filepath.Join(d.dir, "mariadbd.log"), false)
	if err != nil {
		return nil, err
	}
	if err := d.srv.waitReady(ctx, 60*time.Second, d.ping); err != nil {
		_ = d.srv.stop()
		return nil, err
	}
	status(fmt.Sprintf("loading a shop schema (%d orders)", d.orders))
	db, err := d.open()
	if err != nil {
		_ = d.srv.stop()
		return nil, err
	}
	defer db.Close()
	for _, q := range []string{
		"CREATE DATABASE shop",
		"CREATE TABLE shop.customers (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100) NOT NULL, KEY by_name (name)) ENGINE=InnoDB",
		"CREATE TABLE shop.orders (id BIGINT PRIMARY KEY AUTO_INCREMENT, customer_id INT NOT NULL, amount DECIMAL(12,2) NOT NULL, created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), KEY by_customer (customer_id), KEY by_time (created_at)) ENGINE=InnoDB",
		"INSERT INTO shop.customers (name) SELECT concat('customer ', seq) FROM shop.seq_1_to_1000",
		fmt.Sprintf("INSERT INTO shop.orders (customer_id, amount, created_at) SELECT 1 + seq %% 1000, (seq %% 500) + 0.99, now(6) - INTERVAL seq SECOND FROM shop.seq_1_to_%d", d.orders),
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			_ = d.srv.stop()
			return nil, fmt.Errorf("while loading the demo shop (%s): %w", q, err)
		}
	}
	return d, nil
}

// dsn reaches production as root over the socket (unix_socket authentication: firedrill runs
// as root, and so connects as root@localhost).
func (d *mariadbDemo) dsn() string {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr = "root", "unix", d.socket
	return cfg.FormatDSN()
}

// The driver logs connections the server closed (while it starts, or at shutdown) on stderr,
// over the demo's progress: the demo reports errors itself.
var quietDriver = sync.OnceFunc(func() { _ = mysql.SetLogger(log.New(io.Discard, "", 0)) })

func (d *mariadbDemo) open() (*sql.DB, error) {
	quietDriver()
	db, err := sql.Open("mysql", d.dsn())
	if err != nil {
		return nil, fmt.Errorf("while opening production MariaDB: %w", err)
	}
	return db, nil
}

func (d *mariadbDemo) ping(ctx context.Context) error {
	db, err := d.open()
	if err != nil {
		return err
	}
	defer db.Close()
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return db.PingContext(pctx)
}

// load inserts orders until ctx is done.
func (d *mariadbDemo) load(ctx context.Context) {
	db, err := d.open()
	if err != nil {
		return
	}
	defer db.Close()
	for ctx.Err() == nil {
		_, _ = db.ExecContext(ctx, "INSERT INTO shop.orders (customer_id, amount) VALUES (1 + FLOOR(RAND() * 1000), ROUND(RAND() * 500, 2))")
		time.Sleep(2 * time.Millisecond)
	}
}

func (d *mariadbDemo) config(s *Sandbox) string {
	return fmt.Sprintf(`    engine: mariadb
    connection:
      dsn: %q
%s    checks:
      checkTable: true
      rowCounts:
        min:
          shop.orders: %d
      sql:
        - name: every-order-has-a-customer
          query: "SELECT count(*) FROM shop.orders o LEFT JOIN shop.customers c ON c.id = o.customer_id WHERE c.id IS NULL"
          expect: {equals: "0"}
      freshness:
        query: "SELECT max(created_at) FROM shop.orders"
`, d.dsn(), s.localSections(d.dataDir), d.orders)
}

func (d *mariadbDemo) stop() error     { return d.srv.stop() }
func (d *mariadbDemo) daemon() *server { return d.srv }
