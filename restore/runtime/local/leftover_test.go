package local

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParsePostmasterPID(t *testing.T) {
	cases := []struct {
		name   string
		in     string
		pid    int
		key    int64
		id     int
		hasShm bool
	}{
		{"running server", "4711\n/x/data\n1700000000\n5432\n/x/socket\n\n  5432001    131074\nready   \n", 4711, 5432001, 131074, true},
		{"no shared memory line yet", "4711\n/x/data\n1700000000\n5432\n", 4711, 0, 0, false},
		{"garbage", "x\n\n\n\n\n\nkey id extra\n", 0, 0, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pm := parsePostmasterPID([]byte(tc.in))
			if pm.pid != tc.pid || pm.shmKey != tc.key || pm.shmID != tc.id || pm.hasShm != tc.hasShm {
				t.Errorf("parse = %+v, want pid %d key %d id %d has %v", pm, tc.pid, tc.key, tc.id, tc.hasShm)
			}
		})
	}
}

// A dead drill's server: a process recorded in runtime.json and a process naming the scratch
// directory are killed; a stale record (pid reused: other start time) kills nothing.
func TestCleanupLeftoverStopsProcesses(t *testing.T) {
	cases := []struct {
		name        string
		record      bool // write runtime.json for the process
		staleTicks  bool // record a start time the process does not have
		nameScratch bool
		wantKilled  bool
	}{
		{"recorded server", true, false, false, true},
		{"unrecorded server naming the scratch dir", false, false, true, true},
		{"stale record, pid reused by a stranger", true, true, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			scratch := t.TempDir()
			args := []string{"-c", "sleep 300; exit 0", "sh"}
			if tc.nameScratch {
				args = append(args, filepath.Join(scratch, "clone", "data"))
			}
			cmd := exec.Command("/bin/sh", args...)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); <-done })
			if tc.record {
				ticks := processStart(cmd.Process.Pid)
				if tc.staleTicks {
					ticks++
				}
				if err := writeRuntimeRecord(scratch, runtimeRecord{HostPID: cmd.Process.Pid, Kind: KindProcess, StartTicks: ticks, StartedAt: time.Now()}); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			stopped, err := CleanupLeftover(ctx, scratch)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-done:
				if !tc.wantKilled {
					t.Errorf("a process the record did not match was killed")
				}
				if len(stopped) == 0 {
					t.Errorf("killed but not reported")
				}
			case <-time.After(2 * time.Second):
				if tc.wantKilled {
					t.Errorf("process %d still runs; stopped = %v", cmd.Process.Pid, stopped)
				}
				if len(stopped) != 0 {
					t.Errorf("reported %v but nothing was stopped", stopped)
				}
			}
		})
	}
}

// The SysV segment of a dead non-isolated postmaster is removed only when it is the recorded
// one (key, creator) and nothing is attached.
func TestCleanupLeftoverSharedMemory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("shared memory of other users needs root; the test creates its own segments, run as root")
	}
	cases := []struct {
		name       string
		attach     bool
		wrongKey   bool
		wantRemove bool
		wantErr    bool
	}{
		{"detached segment of the dead postmaster", false, false, true, false},
		{"segment still attached", true, false, false, true},
		{"id reused with another key", false, true, false, false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := 0x7f1d0000 + i + os.Getpid()%1000*8
			id, err := unix.SysvShmGet(key, 4096, unix.IPC_CREAT|unix.IPC_EXCL|0o600)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _, _ = unix.SysvShmCtl(id, unix.IPC_RMID, nil) })
			if tc.attach {
				b, err := unix.SysvShmAttach(id, 0, 0)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = unix.SysvShmDetach(b) })
			}
			recKey := key
			if tc.wrongKey {
				recKey++
			}
			scratch := t.TempDir()
			data := filepath.Join(scratch, "clone", "data")
			if err := os.MkdirAll(data, 0o700); err != nil {
				t.Fatal(err)
			}
			pm := fmt.Sprintf("%d\n%s\n1700000000\n5432\n%s\n\n%9d %9d\nstopping\n", os.Getpid(), data, scratch, recKey, id)
			if err := os.WriteFile(filepath.Join(data, "postmaster.pid"), []byte(pm), 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			stopped, err := CleanupLeftover(ctx, scratch)
			if (err != nil) != tc.wantErr {
				t.Errorf("err = %v, want error %v", err, tc.wantErr)
			}
			var d unix.SysvShmDesc
			_, serr := unix.SysvShmCtl(id, unix.IPC_STAT, &d)
			removed := serr != nil
			if removed != tc.wantRemove {
				t.Errorf("segment removed = %v, want %v (stopped %v)", removed, tc.wantRemove, stopped)
			}
			if tc.wantRemove && (len(stopped) != 1 || !strings.Contains(stopped[0], "shared memory")) {
				t.Errorf("stopped = %v, want the segment named", stopped)
			}
		})
	}
}
