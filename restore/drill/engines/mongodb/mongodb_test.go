package mongodb

import (
	"slices"
	"strings"
	"testing"
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
