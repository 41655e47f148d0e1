package local

import (
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/firedrill/firedrill/restore/engine/postgres"
)

func TestPickSandboxID(t *testing.T) {
	cases := []struct {
		name    string
		drillID string
		taken   func(uint32) bool
		check   func(t *testing.T, id uint32, err error)
	}{
		{"in the sandbox range", "a1b2c3d4", func(uint32) bool { return false }, func(t *testing.T, id uint32, err error) {
			if err != nil || id < SandboxUIDBase || id >= SandboxUIDBase+SandboxUIDRange {
				t.Errorf("id %d err %v, want one in [%d, %d)", id, err, SandboxUIDBase, SandboxUIDBase+SandboxUIDRange)
			}
		}},
		{"skips taken ids", "a1b2c3d4", func() func(uint32) bool {
			first, _ := pickSandboxID("a1b2c3d4", func(uint32) bool { return false })
			return func(id uint32) bool { return id == first || id == first+1 }
		}(), func(t *testing.T, id uint32, err error) {
			first, _ := pickSandboxID("a1b2c3d4", func(uint32) bool { return false })
			if err != nil || id == first || id == first+1 {
				t.Errorf("id %d (first choice %d) err %v: a taken id was handed out", id, first, err)
			}
		}},
		{"every id taken", "x", func(uint32) bool { return true }, func(t *testing.T, id uint32, err error) {
			if err == nil {
				t.Errorf("id %d handed out although every id is taken", id)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := pickSandboxID(tc.drillID, tc.taken)
			tc.check(t, id, err)
		})
	}
	// Concurrent drills (different ids) get different uids, and the choice is stable.
	a, _ := pickSandboxID("0000beef", func(uint32) bool { return false })
	b, _ := pickSandboxID("0000bef0", func(uint32) bool { return false })
	a2, _ := pickSandboxID("0000beef", func(uint32) bool { return false })
	if a == b || a != a2 {
		t.Errorf("drills 0000beef and 0000bef0 got uids %d and %d (again: %d)", a, b, a2)
	}
}

// The real check: an id an account has, or a running process uses, is taken.
func TestIDTaken(t *testing.T) {
	cases := []struct {
		name string
		id   uint32
		want bool
	}{
		{"root has an account", 0, true},
		{"this process runs as it", uint32(os.Getuid()), true},
		{"nobody has the sandbox base", SandboxUIDBase + 12345, false},
	}
	if u, err := user.Lookup("postgres"); err == nil {
		id, _ := strconv.ParseUint(u.Uid, 10, 32)
		cases = append(cases, struct {
			name string
			id   uint32
			want bool
		}{"production's postgres account", uint32(id), true})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := idTaken(tc.id); got != tc.want {
				t.Errorf("idTaken(%d) = %v, want %v", tc.id, got, tc.want)
			}
		})
	}
}

func TestResolveRunAsAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the sandbox uid is chosen as root only")
	}
	cases := []struct {
		name      string
		runAsUser string
		wantFrom  string
	}{
		{"default: a sandbox uid, not production's postgres", "", UserFromSandbox},
		{"runAsUser is honoured", "nobody", UserFromRunAsUser},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, from, err := ResolveRunAs(tc.runAsUser, "deadbeef")
			if err != nil {
				t.Fatal(err)
			}
			if from != tc.wantFrom || r.IsCurrent() {
				t.Errorf("from %s current %v, want %s", from, r.IsCurrent(), tc.wantFrom)
			}
			if tc.wantFrom == UserFromSandbox {
				if _, err := user.LookupId(strconv.Itoa(int(r.UID))); err == nil {
					t.Errorf("sandbox uid %d has an account", r.UID)
				}
				if pg, err := user.Lookup("postgres"); err == nil && pg.Uid == strconv.Itoa(int(r.UID)) {
					t.Errorf("the server runs as production's postgres user")
				}
			}
		})
	}
}

func TestCommandDirs(t *testing.T) {
	cases := []struct {
		name string
		conf string
		want []string
	}{
		{"archive to a directory", "archive_command = 'test ! -f /mnt/archive/%f && cp %p /mnt/archive/%f'\n", []string{"/mnt/archive", "/mnt/archive"}},
		{"restore from one, cleanup commented", "restore_command = 'cp /wal/in/%f \"%p\"'\n#archive_cleanup_command = 'x /nope/%r'\n", []string{"/wal/in"}},
		{"tools without placeholders are not directories", "archive_command = '/usr/bin/pgbackrest --stanza=main archive-push %p'\n", nil},
		{"other settings are ignored", "data_directory = '/var/lib/x/%f'\nlog_directory = 'log'\n", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := commandDirs([]byte(tc.conf)); !slices.Equal(got, tc.want) {
				t.Errorf("commandDirs = %q, want %q", got, tc.want)
			}
		})
	}
}

// productionPaths adds what the snapshot names to what config gave: tablespace locations and
// archive command directories, with symlinks resolved too.
func TestProductionPaths(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	real := filepath.Join(dir, "real-archive")
	link := filepath.Join(dir, "archive")
	for _, d := range []string{data, real} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "postgresql.conf"), []byte("archive_command = 'cp %p "+link+"/%f'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got := productionPaths(Options{DataDir: data, ProductionPaths: []string{"/srv/pg/main", "relative/ignored", ""},
		Files: map[string][]byte{postgres.TablespaceMapFile: []byte("16384 /srv/pg/spc\n")}})
	want := []string{"/srv/pg/main", "/srv/pg/spc", link, real}
	if !slices.Equal(got, want) {
		t.Errorf("productionPaths = %q, want %q", got, want)
	}
}
