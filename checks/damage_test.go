package checks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// The errors below are PostgreSQL 15's own wording (src/backend/storage/smgr/md.c, bufmgr.c,
// access/common/detoast.c, utils/init/postinit.c, commands/extension.c).
func TestDamage(t *testing.T) {
	pg := func(code, msg, detail string) error {
		return &pgconn.PgError{Severity: "ERROR", Code: code, Message: msg, Detail: detail}
	}
	tests := []struct {
		name    string
		err     error
		damaged bool
		state   string
	}{
		{"invalid page (heap)", pg("XX001", "invalid page in block 3 of relation base/5/16397", ""), true, "XX001"},
		{"short read of a truncated segment", pg("XX001", `could not read block 1200 in file "base/5/16397": read only 4096 of 8192 bytes`, ""), true, "XX001"},
		{"index corrupted", pg("XX002", `index "pgbench_accounts_pkey" contains unexpected zero page at block 4`, "Please REINDEX it."), true, "XX002"},
		{"amcheck index finding", pg("XX002", `item order invariant violated for index "i"`, ""), true, "XX002"},
		{"missing segment", pg("58P01", `could not open file "base/5/16397": No such file or directory`, ""), true, "58P01"},
		{"missing later segment", pg("58P01", `could not open file "base/5/16397.1" (target block 131072): previous segment is only 1000 blocks`, ""), true, "58P01"},
		{"missing segment in a tablespace", pg("58P01", `could not open file "pg_tblspc/16400/PG_15_202209061/5/16401": No such file or directory`, ""), true, "58P01"},
		{"read error", pg("58030", `could not read block 7 in file "base/5/16397": Input/output error`, ""), true, "58030"},
		{"missing transaction status", pg("58P01", "could not access status of transaction 1234", `Could not open file "pg_xact/0000": No such file or directory.`), true, "58P01"},
		{"missing toast chunk", pg("XX000", "missing chunk number 0 for toast value 16420 in pg_toast_16397", ""), true, "XX000"},
		{"could not read block as internal error", pg("XX000", `could not read block 5 in file "base/5/16397": read only 0 of 8192 bytes`, ""), true, "XX000"},
		{"xmin before relfrozenxid", pg("XX000", "found xmin 1234 from before relfrozenxid 5678", ""), true, "XX000"},
		{"database directory missing", pg("3D000", `database "app" does not exist`, `The database subdirectory "base/16384" is missing.`), true, "3D000"},
		{"wrapped with %w", fmt.Errorf("while counting: %w", pg("XX001", "invalid page in block 0 of relation base/5/1", "")), true, "XX001"},
		{"wrapped by wrapPG", wrapPG(pg("XX001", "invalid page in block 0 of relation base/5/1", ""), "while listing tables of %s", "app"), true, "XX001"},
		{"joined", errors.Join(errors.New("x"), pg("XX002", "index corrupted", "")), true, "XX002"},

		{"missing extension", pg("58P01", `could not open extension control file "/usr/share/postgresql/15/extension/amcheck.control": No such file or directory`, ""), false, "58P01"},
		{"file outside the cluster", pg("58P01", `could not open file "/etc/nothing": No such file or directory`, ""), false, "58P01"},
		{"unrelated internal error", pg("XX000", "cache lookup failed for type 0", ""), false, "XX000"},
		{"database that never existed", pg("3D000", `database "nope" does not exist`, ""), false, "3D000"},
		{"statement timeout", pg("57014", "canceling statement due to statement timeout", ""), false, "57014"},
		{"undefined table", pg("42P01", `relation "orders" does not exist`, ""), false, "42P01"},
		{"connection refused", &net.OpError{Op: "dial", Net: "unix", Err: errors.New("connect: connection refused")}, false, ""},
		{"context deadline", context.DeadlineExceeded, false, ""},
		{"nil", nil, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := Damage(tt.err)
			if got != tt.damaged {
				t.Fatalf("Damage(%v) = %v, want %v", tt.err, got, tt.damaged)
			}
			if why.SQLState != tt.state {
				t.Errorf("SQLState = %q, want %q", why.SQLState, tt.state)
			}
			if got && (why.Name == "" || why.Message == "" || !strings.HasPrefix(why.String(), tt.state+" "+why.Name+": ")) {
				t.Errorf("reason = %+v (%s): want the SQLSTATE, its name and the message", why, why)
			}
		})
	}
}

func TestDamageReasonCarriesDetail(t *testing.T) {
	_, why := Damage(&pgconn.PgError{Code: "58P01", Message: "could not access status of transaction 9", Detail: `Could not open file "pg_xact/0000": No such file or directory.`})
	if !strings.Contains(why.Message, "pg_xact/0000") {
		t.Errorf("reason %q does not carry the detail naming the file", why.Message)
	}
}

func TestCouldNotRead(t *testing.T) {
	pg := func(code string) error { return &pgconn.PgError{Code: code, Message: "m"} }
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"statement timeout", pg("57014"), true},
		{"admin shutdown", pg("57P01"), true},
		{"connection failure", pg("08006"), true},
		{"out of memory", pg("53200"), true},
		{"context canceled, wrapped", fmt.Errorf("while counting: %w", context.Canceled), true},
		{"network error", &net.OpError{Op: "read", Net: "unix", Err: errors.New("connection reset by peer")}, true},
		{"unexpected EOF", io.ErrUnexpectedEOF, true},
		{"connect error", &pgconn.ConnectError{}, true},
		{"data corrupted", pg("XX001"), false},
		{"syntax error", pg("42601"), false},
		{"scan error", errors.New("can't scan into dest[0]: cannot scan text into *time.Time"), false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CouldNotRead(tt.err); got != tt.want {
				t.Errorf("CouldNotRead(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestQueryFailed(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		want  Status
		state string
		msg   string
	}{
		{"damaged read fails with the reason", &pgconn.PgError{Code: "XX001", Message: "invalid page in block 3 of relation base/5/16397"}, Fail, "XX001", "PostgreSQL reports the data damaged: XX001 data_corrupted: invalid page in block 3"},
		{"missing segment fails", &pgconn.PgError{Code: "58P01", Message: `could not open file "base/5/16397": No such file or directory`}, Fail, "58P01", "damaged: 58P01 undefined_file"},
		{"timeout could not check", &pgconn.PgError{Code: "57014", Message: "canceling statement due to statement timeout"}, Error, "57014", "nothing was proved"},
		{"lost connection could not check", io.ErrUnexpectedEOF, Error, "", "nothing was proved"},
		{"a wrong query still fails", &pgconn.PgError{Code: "42P01", Message: `relation "orders" does not exist`}, Fail, "42P01", `q failed: relation "orders" does not exist`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := queryFailed("sql:x", Evidence{"query": "SELECT 1"}, tt.err, "q failed")
			if f.Status != tt.want || !strings.Contains(f.Message, tt.msg) {
				t.Errorf("got %v %q, want %v containing %q", f.Status, f.Message, tt.want, tt.msg)
			}
			if st, _ := f.Evidence["sqlstate"].(string); st != tt.state {
				t.Errorf("evidence sqlstate = %q, want %q", st, tt.state)
			}
			if f.Evidence["query"] != "SELECT 1" {
				t.Errorf("evidence lost the query: %v", f.Evidence)
			}
			if _, has := f.Evidence["damage"]; has != (tt.want == Fail && tt.state != "42P01") {
				t.Errorf("evidence damage present = %v for %v", has, tt.err)
			}
		})
	}
}

func TestDamagedFileOutput(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want bool
	}{
		{"short read", "pg_checksums: error: could not read block 12 in file \"/scratch/clone/data/base/5/16397\": read 4096 of 8192", true},
		{"read error", "pg_checksums: error: could not read block 0 in file \"/d/global/1262\": Input/output error", true},
		{"open error", "pg_checksums: error: could not open file \"/d/base/5/16397.1\" for reading: No such file or directory", true},
		{"cluster running", "pg_checksums: error: cluster must be shut down", false},
		{"permission is not damage", "pg_checksums: error: could not open file \"/d/global/pg_control\" for reading: Permission denied", false},
		{"not a data file", "pg_checksums: error: could not open directory \"/d/base\": Permission denied", false},
		{"nothing", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, line := DamagedFileOutput(tt.out); got != tt.want || (got && line == "") {
				t.Errorf("DamagedFileOutput(%q) = %v, %q; want %v", tt.out, got, line, tt.want)
			}
		})
	}
}
