package checks

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

const pgChecksumsOK = "Checksum operation completed\nFiles scanned: 10\nBlocks scanned: 100\nBad checksums: 0\nData checksum version: 1"

const pgChecksumsBad = `pg_checksums: error: checksum verification failed in file "/scratch/data/base/5/16384", block 0: calculated checksum 7A3C but block contains 1B2F
Checksum operation completed
Files scanned:   1237
Blocks scanned:  3985
Bad checksums:  3
Data checksum version: 1`

// fakeExec is an Env.Exec that returns canned output and records how it was called.
type fakeExec struct {
	out   string
	code  int
	err   error
	calls [][]string
}

func (f *fakeExec) exec(_ context.Context, name string, args ...string) ([]byte, int, error) {
	f.calls = append(f.calls, append([]string{name}, args...))
	return []byte(f.out), f.code, f.err
}

func TestChecksumsRunStopped(t *testing.T) {
	exitStatus1 := errors.New("exit status 1")
	tests := []struct {
		name     string
		exec     fakeExec
		want     Status
		msg      string
		evidence Evidence
	}{
		{
			name:     "clean",
			exec:     fakeExec{out: pgChecksumsOK},
			want:     Pass,
			msg:      "every block of the stopped copy has a valid checksum",
			evidence: Evidence{"badChecksums": 0, "blocksScanned": int64(100), "exitCode": 0},
		},
		{
			name:     "bad checksums",
			exec:     fakeExec{out: "Bad checksums: 3", code: 1, err: exitStatus1},
			want:     Fail,
			msg:      "3 block(s) with bad checksums in the stopped copy",
			evidence: Evidence{"badChecksums": int64(3), "exitCode": 1, "output": "Bad checksums: 3"},
		},
		{
			name:     "bad checksums in full output",
			exec:     fakeExec{out: pgChecksumsBad, code: 1, err: exitStatus1},
			want:     Fail,
			msg:      "3 block(s) with bad checksums",
			evidence: Evidence{"badChecksums": int64(3), "blocksScanned": int64(3985), "exitCode": 1},
		},
		{
			name:     "bad checksums reported with exit 0",
			exec:     fakeExec{out: "Blocks scanned: 5\nBad checksums: 2\n"},
			want:     Fail,
			msg:      "2 block(s) with bad checksums",
			evidence: Evidence{"badChecksums": int64(2), "blocksScanned": int64(5)},
		},
		{
			name: "command error without output",
			exec: fakeExec{code: 0, err: errors.New(`fork/exec /usr/lib/postgresql/15/bin/pg_checksums: no such file or directory`)},
			want: Error,
			msg:  "pg_checksums could not run: fork/exec",
		},
		{
			name:     "error output without a summary",
			exec:     fakeExec{out: "pg_checksums: error: cluster must be shut down", code: 1, err: exitStatus1},
			want:     Error,
			msg:      "pg_checksums could not run: exit status 1",
			evidence: Evidence{"exitCode": 1, "output": "pg_checksums: error: cluster must be shut down"},
		},
		{
			// A truncated segment: pg_checksums stops before printing a summary.
			name:     "short read of a data file",
			exec:     fakeExec{out: "pg_checksums: error: could not read block 12 in file \"/scratch/data/base/5/16397\": read 4096 of 8192", code: 1, err: exitStatus1},
			want:     Fail,
			msg:      "pg_checksums could not read a data file of the stopped copy: pg_checksums: error: could not read block 12",
			evidence: Evidence{"exitCode": 1, "damage": "pg_checksums: error: could not read block 12 in file \"/scratch/data/base/5/16397\": read 4096 of 8192"},
		},
		{
			name: "non-zero exit with zero bad checksums",
			exec: fakeExec{out: pgChecksumsOK + "\npg_checksums: error: could not read block", code: 1, err: exitStatus1},
			want: Fail,
			msg:  "pg_checksums reported a problem: pg_checksums: error: could not read block",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fe := tt.exec
			env := &Env{DataDir: "/scratch/data", Exec: fe.exec}
			c := &Checksums{enabled: true}
			fs := c.RunStopped(context.Background(), env)
			if len(fs) != 1 {
				t.Fatalf("RunStopped returned %d findings, want 1: %+v", len(fs), fs)
			}
			f := fs[0]
			if f.Check != PgChecksumsName {
				t.Errorf("check = %q, want %q", f.Check, PgChecksumsName)
			}
			if f.Status != tt.want {
				t.Errorf("status = %v, want %v (%s)", f.Status, tt.want, f.Message)
			}
			if !strings.Contains(f.Message, tt.msg) {
				t.Errorf("message = %q, want it to contain %q", f.Message, tt.msg)
			}
			if want := []string{"pg_checksums", "--check", "-D", "/scratch/data"}; len(fe.calls) != 1 || !slices.Equal(fe.calls[0], want) {
				t.Errorf("Exec calls = %q, want one call %q", fe.calls, want)
			}
			if got, want := f.Evidence["command"], "pg_checksums --check -D /scratch/data"; got != want {
				t.Errorf("evidence command = %v, want %q", got, want)
			}
			for k, want := range tt.evidence {
				if got := f.Evidence[k]; got != want {
					t.Errorf("evidence %s = %v (%T), want %v (%T)", k, got, got, want, want)
				}
			}
		})
	}
}

func TestChecksumsRunStoppedSkips(t *testing.T) {
	tests := []struct {
		name    string
		enabled bool
		exec    bool
	}{
		{"data checksums off", false, true},
		{"no exec", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fe := &fakeExec{out: pgChecksumsOK}
			env := &Env{DataDir: "/scratch/data"}
			if tt.exec {
				env.Exec = fe.exec
			}
			if fs := (&Checksums{enabled: tt.enabled}).RunStopped(context.Background(), env); fs != nil {
				t.Errorf("RunStopped = %+v, want no findings", fs)
			}
			if len(fe.calls) != 0 {
				t.Errorf("pg_checksums ran: %q", fe.calls)
			}
		})
	}
}

func TestLastLinesOf(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc", 2, "b\nc"},
		{"a\nb\nc", 5, "a\nb\nc"},
		{"a", 1, "a"},
		{"", 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := lastLinesOf(tt.in, tt.n); got != tt.want {
				t.Errorf("lastLinesOf(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
			}
		})
	}
}
