package redis

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

var damagedOutput = []string{
	"[offset 0] Checking RDB file dump.rdb",
	"[offset 27] AUX FIELD redis-ver = '7.0.15'",
	"[offset 53] AUX FIELD ctime = '1796046842'",
	"[offset 82] Selecting DB ID 0",
	"--- RDB ERROR DETECTED ---",
	"[offset 56629] Unexpected EOF reading RDB file",
	"[additional info] While doing: read-object-value",
	"[info] 2543 keys read",
	"[info] 255 expires",
}

func TestToolOutput(t *testing.T) {
	aux := auxFields(damagedOutput)
	if aux["ctime"] != "1796046842" || aux["redis-ver"] != "7.0.15" {
		t.Errorf("auxFields() = %v", aux)
	}
	if n, ok := infoCount(damagedOutput, "keys read"); !ok || n != 2543 {
		t.Errorf("infoCount(keys read) = %d, %v", n, ok)
	}
	if n, ok := infoCount(damagedOutput, "already expired"); ok {
		t.Errorf("infoCount(already expired) = %d, found in output without it", n)
	}
	if got, want := toolError(damagedOutput), "Unexpected EOF reading RDB file (at offset 56629)"; got != want {
		t.Errorf("toolError() = %q, want %q", got, want)
	}
	// redis-check-aof says what is wrong on its last line.
	aof := []string{"Start checking Multi Part AOF", "0x               0: Expected prefix '*', got: 'x'", "AOF analyzed: filename=appendonly.aof.1.incr.aof, size=10, ok_up_to=0, ok_up_to_line=1, diff=10"}
	if got := toolError(aof); got != aof[2] {
		t.Errorf("toolError(aof) = %q", got)
	}
}

func TestFindData(t *testing.T) {
	write := func(t *testing.T, dir string, names ...string) {
		for _, n := range names {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, n)), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name    string
		files   []string
		rdbFile string
		want    dataFiles
		wantErr error
	}{
		{"default rdb", []string{"dump.rdb"}, "", dataFiles{rdb: "dump.rdb"}, nil},
		{"recorded rdb name", []string{"cache.rdb", "dump.rdb"}, "cache.rdb", dataFiles{rdb: "cache.rdb"}, nil},
		{"the rdb wins over an aof", []string{"dump.rdb", "appendonlydir/appendonly.aof.manifest"}, "", dataFiles{rdb: "dump.rdb"}, nil},
		{"aof directory", []string{"appendonlydir/appendonly.aof.manifest"}, "", dataFiles{aof: "appendonlydir"}, nil},
		{"legacy aof", []string{"appendonly.aof"}, "", dataFiles{aof: "appendonly.aof"}, nil},
		{"nothing", []string{"other"}, "", dataFiles{}, ErrNoData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, tt.files...)
			got, err := findData(dir, tt.rdbFile)
			tt.want.dir = dir
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Errorf("findData() = %+v, %v; want %+v, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestLoadFailure(t *testing.T) {
	lines := []string{
		"1:M 30 Nov 2026 14:00:00.000 * Server initialized",
		"1:M 30 Nov 2026 14:00:00.001 # Short read or OOM loading DB. Unrecoverable error, aborting now.",
	}
	if got := loadFailure(lines); got != lines[1] {
		t.Errorf("loadFailure() = %q", got)
	}
	if got := loadedLine([]string{"1:M * DB loaded from disk: 0.002 seconds"}); got == "" {
		t.Error("loadedLine() missed the line")
	}
}
