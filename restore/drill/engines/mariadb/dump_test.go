package mariadb

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/drill"
	enginemariadb "github.com/firedrill/firedrill/restore/engine/mariadb"
)

func TestLoadScript(t *testing.T) {
	got := loadScript("/s/clone/dump/shop.sql", "sh`op", "/s/regrant.sql")
	want := "CREATE DATABASE IF NOT EXISTS `sh``op`;\nUSE `sh``op`;\nsource /s/clone/dump/shop.sql\nsource /s/regrant.sql\n"
	if got != want {
		t.Errorf("loadScript = %q, want %q", got, want)
	}
	// A dump of every database (no database in its header) selects its own.
	if got := loadScript("/d.sql", "", "/r.sql"); got != "source /d.sql\nsource /r.sql\n" {
		t.Errorf("loadScript without a database = %q", got)
	}
}

func TestLoadFinding(t *testing.T) {
	l := &drill.LogicalDump{Path: "/s/clone/dump/shop.sql", Format: drill.LogicalSQL, Bytes: 2048}
	h := enginemariadb.DumpHeader{Tool: "MariaDB dump", Database: "shop", ServerVersion: "10.11.19-MariaDB"}
	for _, tc := range []struct {
		name   string
		out    string
		code   int
		err    error
		status checks.Status
		msg    string
	}{
		{"loaded", "", 0, nil, checks.Pass, "loaded shop.sql (2.0 KiB) into an empty MariaDB"},
		{"syntax error", "--------------\nINSERT INTOO `orders`\n--------------\n\nERROR 1064 (42000) at line 164 in file: '/s/clone/dump/shop.sql': You have an error in your SQL syntax\n", 1, errors.New("exit status 1"),
			checks.Fail, "the dump does not load (the mariadb client stopped with exit status 1): ERROR 1064 (42000) at line 164"},
		{"no error line", "Killed\n", 137, errors.New("exit status 137"), checks.Fail, "exit status 137): Killed"},
		{"client missing", "", -1, errors.New("fork/exec /usr/bin/mariadb: no such file or directory"), checks.Error, "could not run the mariadb client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := loadFinding([]byte(tc.out), tc.code, tc.err, 1500*time.Millisecond, l, h)
			if f.Check != LoadName || f.Status != tc.status || !strings.Contains(f.Message, tc.msg) {
				t.Errorf("finding %s %s %q, want %s %s with %q", f.Check, f.Status, f.Message, LoadName, tc.status, tc.msg)
			}
			if f.Evidence["database"] != "shop" || f.Evidence["exitCode"] != tc.code {
				t.Errorf("evidence %v", f.Evidence)
			}
		})
	}
}

func TestStartLogicalRefusesOtherFormats(t *testing.T) {
	req := drill.EngineStart{Copy: &drill.Copy{Logical: &drill.LogicalDump{Format: drill.LogicalMongoArchive}}, Status: func(string) {}}
	if _, _, err := (&Engine{}).Start(t.Context(), req); !errors.Is(err, drill.ErrUsage) {
		t.Errorf("Start of a mongodump archive: %v, want ErrUsage", err)
	}
}
