package mariadb

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

func TestParseBinlogInfo(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     map[string]string
		err      bool
	}{
		{"file, position and GTID", "binlog.000003\t1234\t0-1-56\n", map[string]string{AttrBinlogFile: "binlog.000003", AttrBinlogPosition: "1234", AttrGTIDBinlogPos: "0-1-56", AttrBinlogExact: "true"}, false},
		{"no GTID", "binlog.000001\t4\n", map[string]string{AttrBinlogFile: "binlog.000001", AttrBinlogPosition: "4", AttrBinlogExact: "true"}, false},
		{"several domains", "binlog.000002\t99\t0-1-5,\n1-2-7\n", map[string]string{AttrBinlogFile: "binlog.000002", AttrBinlogPosition: "99", AttrGTIDBinlogPos: "0-1-5,1-2-7", AttrBinlogExact: "true"}, false},
		{"empty: binary logging off", "", map[string]string{}, false},
		{"no position", "binlog.000001\n", nil, true},
		{"position not a number", "binlog.000001\tx\n", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseBinlogInfo(tc.in)
			if (err != nil) != tc.err {
				t.Fatalf("err = %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestReadBinlogInfoEitherName(t *testing.T) {
	for _, name := range BinlogInfoFiles {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, name), []byte("binlog.000007\t42\t0-1-9\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := ReadBinlogInfo(dir)
			if err != nil || got[AttrBinlogFile] != "binlog.000007" || got[AttrBinlogPosition] != "42" {
				t.Fatalf("ReadBinlogInfo = %v, %v", got, err)
			}
		})
	}
	if got, err := ReadBinlogInfo(t.TempDir()); err != nil || len(got) != 0 {
		t.Errorf("no binlog info file: %v, %v", got, err)
	}
}

// The password reaches mariadb-backup only in the option file, quoted so that the option
// parser gives it back byte for byte; the connection is TCP or the socket as the DSN says.
func TestOptionFile(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  mysql.Config
		want []string
	}{
		{"tcp", mysql.Config{User: "backup", Passwd: `p"a\ss#1`, Net: "tcp", Addr: "10.0.0.5:3307"},
			[]string{"[client]", `user="backup"`, `password="p\"a\\ss#1"`, `host="10.0.0.5"`, `port="3307"`, `protocol="tcp"`}},
		{"localhost is TCP, not the default socket", mysql.Config{User: "u", Net: "tcp", Addr: "localhost:3306"},
			[]string{`host="127.0.0.1"`, `port="3306"`}},
		{"socket", mysql.Config{User: "root", Net: "unix", Addr: "/run/mysqld/mysqld.sock"},
			[]string{`socket="/run/mysqld/mysqld.sock"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(optionFile(&tc.cfg))
			for _, w := range tc.want {
				if !strings.Contains(got, w+"\n") {
					t.Errorf("option file lacks %s:\n%s", w, got)
				}
			}
			if tc.cfg.Passwd == "" && strings.Contains(got, "password") {
				t.Errorf("an empty password is written:\n%s", got)
			}
		})
	}
}

func TestScrubAndTail(t *testing.T) {
	out := []byte("line 1\n\nAccess denied for secret-pw\nline 3\n")
	got := Tail(scrub(out, "secret-pw"), 2)
	if got != "Access denied for [redacted] | line 3" {
		t.Errorf("Tail = %q", got)
	}
}
