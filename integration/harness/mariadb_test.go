package harness_test

import (
	"database/sql"
	"strings"
	"testing"

	_ "github.com/go-sql-driver/mysql" // registers the "mysql" driver

	"github.com/firedrill/firedrill/integration/harness"
)

func TestMariaDBQueryAndBinlog(t *testing.T) {
	harness.Integration(t)
	m := harness.StartMariaDB(t)
	db := m.Open(t)
	ctx := t.Context()

	if !strings.Contains(m.Version, "MariaDB") {
		t.Errorf("Version = %q, want a MariaDB version", m.Version)
	}
	for _, stmt := range []string{
		"CREATE TABLE drills (id INT PRIMARY KEY, target VARCHAR(64) NOT NULL) ENGINE=InnoDB",
		"INSERT INTO drills VALUES (1, 'orders'), (2, 'billing')",
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM drills").Scan(&n); err != nil {
		t.Fatalf("while counting rows: %v", err)
	}
	if n != 2 {
		t.Errorf("COUNT(*) = %d, want 2", n)
	}

	// Binary logging is on: the snapshot code records this position.
	file, pos := masterStatus(t, db)
	if !strings.HasPrefix(file, "binlog.") || pos == 0 {
		t.Errorf("SHOW MASTER STATUS = %q, %d; want a binlog.NNNNNN file and a position", file, pos)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO drills VALUES (3, 'ledger')"); err != nil {
		t.Fatalf("while inserting: %v", err)
	}
	if file2, pos2 := masterStatus(t, db); file2 == file && pos2 <= pos {
		t.Errorf("binlog position did not move after a write: %s:%d then %s:%d", file, pos, file2, pos2)
	}

	// DSNFor reaches another database with the same account.
	other, err := sql.Open("mysql", m.DSNFor("mysql"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.PingContext(ctx); err != nil {
		t.Errorf("while connecting with DSNFor(mysql): %v", err)
	}
}

// masterStatus returns the binlog file and position of SHOW MASTER STATUS.
func masterStatus(t *testing.T, db *sql.DB) (string, uint64) {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "SHOW MASTER STATUS")
	if err != nil {
		t.Fatalf("SHOW MASTER STATUS: %v", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	if !rows.Next() {
		t.Fatalf("SHOW MASTER STATUS returned no row: binary logging is off (%v)", rows.Err())
	}
	var file string
	var pos uint64
	dest := make([]any, len(cols))
	for i := range dest {
		dest[i] = new(sql.RawBytes)
	}
	dest[0], dest[1] = &file, &pos
	if err := rows.Scan(dest...); err != nil {
		t.Fatalf("while reading SHOW MASTER STATUS: %v", err)
	}
	return file, pos
}
