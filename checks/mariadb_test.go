package checks

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// A read MariaDB refuses because the data is damaged is proof (fail); other errors prove
// nothing (error).
func TestMariaDBDamage(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"InnoDB corrupt table via the handler", &mysql.MySQLError{Number: 1030, Message: `Got error 1877 "Unknown error 1877" from storage engine InnoDB`}, true},
		{"tablespace missing via the handler", &mysql.MySQLError{Number: 1030, Message: `Got error 194 "Tablespace is missing for a table" from storage engine InnoDB`}, true},
		{"out of disk via the handler", &mysql.MySQLError{Number: 1030, Message: `Got error 28 "No space left on device" from storage engine InnoDB`}, false},
		{"table corrupt", &mysql.MySQLError{Number: 1877, Message: "Operation cannot be performed. The table 'shop.orders' is missing, corrupt or contains bad data."}, true},
		{"marked as crashed", &mysql.MySQLError{Number: 1194, Message: "Table 'orders' is marked as crashed and should be repaired"}, true},
		{"not in the engine", &mysql.MySQLError{Number: 1932, Message: "Table 'shop.orders' doesn't exist in engine"}, true},
		{"wrapped", fmt.Errorf("while counting: %w", &mysql.MySQLError{Number: 1712, Message: "Index orders is corrupted"}), true},
		{"syntax error", &mysql.MySQLError{Number: 1064, Message: "You have an error in your SQL syntax"}, false},
		{"access denied", &mysql.MySQLError{Number: 1045, Message: "Access denied"}, false},
		{"lost connection", mysql.ErrInvalidConn, false},
		{"nil", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := mariadbDamage(tc.err)
			if got != tc.want {
				t.Fatalf("mariadbDamage = %v (%+v), want %v", got, why, tc.want)
			}
			if got && why.Code == 0 {
				t.Errorf("no error number in the evidence: %+v", why)
			}
		})
	}
	f := mariadbQueryFailed("sql:x", Evidence{}, &mysql.MySQLError{Number: 1877, Message: "corrupt"}, "query failed")
	if f.Status != Fail {
		t.Errorf("a damaged table's query is %s, want fail", f.Status)
	}
	if f := mariadbQueryFailed("sql:x", Evidence{}, &mysql.MySQLError{Number: 1146, Message: "no such table"}, "query failed"); f.Status != Error {
		t.Errorf("a missing table's query is %s, want error", f.Status)
	}
}

func TestParseMariaDBTime(t *testing.T) {
	want := time.Date(2026, 11, 30, 14, 5, 6, 123456000, time.UTC)
	for _, in := range []string{"2026-11-30 14:05:06.123456", "2026-11-30T14:05:06.123456Z"} {
		if got, err := parseMariaDBTime(in); err != nil || !got.Equal(want) {
			t.Errorf("parseMariaDBTime(%q) = %v, %v", in, got, err)
		}
	}
	if got, err := parseMariaDBTime("2026-11-30"); err != nil || !got.Equal(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("a date: %v, %v", got, err)
	}
	if _, err := parseMariaDBTime("42"); err == nil {
		t.Error("a number parsed as a time")
	}
}

func TestRecordedBinlog(t *testing.T) {
	ev := Evidence{}
	addRecordedBinlog(ev, &Env{Recorded: map[string]string{"binlogFile": "binlog.000003", "binlogPosition": "1234", "gtidBinlogPos": "0-1-56"}})
	if ev["snapshotBinlogPosition"] != "binlog.000003:1234" || ev["snapshotGTIDBinlogPos"] != "0-1-56" {
		t.Errorf("evidence %v", ev)
	}
	ev = Evidence{}
	addRecordedBinlog(ev, &Env{})
	if len(ev) != 0 {
		t.Errorf("no binlog recorded, evidence %v", ev)
	}
}

// The MariaDB checks answer to the same configuration keys as PostgreSQL's; CHECK TABLE runs
// when configured (the policy's defaults turn it on for MariaDB targets), and no other
// engine's drill names it skipped unless it is.
func TestBuildForMariaDB(t *testing.T) {
	off, on := false, true
	if cs, skipped := BuildFor(Config{}, "postgres"); slices.ContainsFunc(skipped, func(s Skipped) bool { return s.Check == CheckTableName }) ||
		slices.ContainsFunc(cs, func(c Check) bool { return c.Name() == CheckTableName }) {
		t.Errorf("check-table built or skipped for postgres without being configured")
	}
	cfg := Config{CheckTable: &on, SQL: []SQLAssertion{{Name: "a", Query: "SELECT 1"}}, Freshness: &FreshnessConfig{Query: "SELECT NOW()"}}
	cs, _ := BuildFor(cfg, "mariadb")
	var got []string
	for _, c := range cs {
		got = append(got, c.Name())
	}
	if want := []string{CheckTableName, RowCountsName, "sql:a", FreshnessName}; !slices.Equal(got, want) {
		t.Errorf("BuildFor(mariadb) = %v, want %v", got, want)
	}
	cfg.CheckTable, cfg.RowCounts = &off, &RowCountConfig{Enabled: &off}
	cs, _ = BuildFor(cfg, "mariadb")
	got = nil
	for _, c := range cs {
		got = append(got, c.Name())
	}
	if want := []string{"sql:a", FreshnessName}; !slices.Equal(got, want) {
		t.Errorf("checkTable and rowCounts off: BuildFor(mariadb) = %v, want %v", got, want)
	}
}
