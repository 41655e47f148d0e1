package mongodb

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/drill"
)

func TestArgs(t *testing.T) {
	a := Args("/scratch/d/clone/data", "/scratch/d")
	for _, want := range [][]string{{"--dbpath", "/scratch/d/clone/data"}, {"--unixSocketPrefix", "/scratch/d"}, {"--bind_ip", "/scratch/d/mongod.sock"}} {
		if i := slices.Index(a, want[0]); i < 0 || a[i+1] != want[1] {
			t.Errorf("args %v: want %s %s", a, want[0], want[1])
		}
	}
	for _, never := range []string{"--replSet", "--config", "--auth", "--keyFile"} {
		if slices.Contains(a, never) {
			t.Errorf("args %v include %s", a, never)
		}
	}
}

func TestURI(t *testing.T) {
	sock := SocketPath("/tmp/fd/scratch")
	if sock != "/tmp/fd/scratch/mongod.sock" {
		t.Errorf("socket %s", sock)
	}
	if u := URI(sock); !strings.HasPrefix(u, "mongodb://%2Ftmp%2Ffd%2Fscratch%2Fmongod.sock/?directConnection=true") {
		t.Errorf("uri %s", u)
	}
}

func TestRecoveryProblem(t *testing.T) {
	lines := []string{`{"t":{"$date":"2026-11-30"},"s":"I","c":"STORAGE","msg":"WiredTiger opened"}`,
		`{"s":"E","c":"WT","msg":"WiredTiger error message","attr":{"message":"__wt_block_read_off: collection-0: read checksum error for 4096B block"}}`}
	if got := recoveryProblem(lines); !strings.Contains(got, "checksum error") {
		t.Errorf("recoveryProblem = %q", got)
	}
	if got := recoveryProblem(lines[:1]); got != "" {
		t.Errorf("a clean log: %q", got)
	}
}

func TestRestoreArgs(t *testing.T) {
	a := RestoreArgs("/s/mongod.sock", "/s/dump.archive")
	for _, want := range []string{"--archive=/s/dump.archive", "--stopOnError", "--objcheck", "--uri=" + URI("/s/mongod.sock")} {
		if !slices.Contains(a, want) {
			t.Errorf("args %v lack %s", a, want)
		}
	}
	for _, never := range []string{"--drop", "--gzip"} {
		if slices.Contains(a, never) {
			t.Errorf("args %v include %s", a, never)
		}
	}
}

func TestLoadFinding(t *testing.T) {
	l := &drill.LogicalDump{Path: "/s/shop.archive", Format: drill.LogicalMongoArchive, Bytes: 4096}
	ok := []byte("2026-11-30T10:00:00.000+0000\tpreparing collections to restore from\n2026-11-30T10:00:01.000+0000\t2000 document(s) restored successfully. 0 document(s) failed to restore.\n")
	for _, tc := range []struct {
		name string
		out  []byte
		code int
		err  error
		want checks.Status
		msg  string
	}{
		{"loaded", ok, 0, nil, checks.Pass, "loaded 2000 documents"},
		{"truncated archive", []byte("2026-11-30T10:00:00.000+0000\tFailed: shop.orders: error restoring from archive on stdin: reading bson input: unexpected EOF\n"), 1, errors.New("exit status 1"), checks.Fail, "unexpected EOF"},
		{"documents failed", []byte("10 document(s) restored successfully. 3 document(s) failed to restore.\n"), 0, nil, checks.Fail, "failed to restore 3"},
		{"no summary", []byte("done\n"), 0, nil, checks.Warn, "no summary"},
		{"tool missing", nil, -1, errors.New("exec: no such file"), checks.Error, "could not run"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := loadFinding(tc.out, tc.code, tc.err, time.Second, l)
			if f.Status != tc.want || f.Check != LoadName || !strings.Contains(f.Message, tc.msg) {
				t.Errorf("finding %s %q, want %s containing %q", f.Status, f.Message, tc.want, tc.msg)
			}
			if f.Evidence["archive"] != "shop.archive" {
				t.Errorf("evidence %v", f.Evidence)
			}
		})
	}
}

func TestStartRefusesOtherDumps(t *testing.T) {
	_, _, err := Drill{Server: "/bin/true"}.Start(t.Context(), drill.EngineStart{ScratchDir: t.TempDir(), Status: func(string) {},
		Copy: &drill.Copy{Logical: &drill.LogicalDump{Path: "/x.sql", Format: drill.LogicalSQL}}})
	if !errors.Is(err, drill.ErrUsage) || !strings.Contains(err.Error(), "mongodump") {
		t.Errorf("a SQL dump for MongoDB: %v", err)
	}
	_, _, err = Drill{Server: "/bin/true"}.Start(t.Context(), drill.EngineStart{ScratchDir: t.TempDir(), Status: func(string) {}, Copy: &drill.Copy{}})
	if !errors.Is(err, drill.ErrUnsupported) {
		t.Errorf("no copy: %v", err)
	}
}

func TestEmptyDBPath(t *testing.T) {
	dir := t.TempDir()
	p, err := emptyDBPath(dir)
	if err != nil || p != filepath.Join(dir, dbDir) {
		t.Fatalf("emptyDBPath = %s, %v", p, err)
	}
	if fi, err := os.Stat(p); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("dbpath %v %v", fi, err)
	}
}
