package sandbox

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/reexec"
)

func TestMain(m *testing.M) {
	if reexec.Init() {
		return
	}
	os.Exit(m.Run())
}

func TestMaskPlan(t *testing.T) {
	dirs := map[string][]string{
		"/usr/local/pgsql":   {"bin", "data", "lib", "share"},
		"/opt/pg":            {"15", "backups"},
		"/opt/pg/15":         {"bin", "lib", "main"},
		"/srv/scratch-owner": {"drill", "other"},
	}
	readDir := func(p string) ([]string, error) {
		if e, ok := dirs[p]; ok {
			return e, nil
		}
		return nil, os.ErrNotExist
	}
	cases := []struct {
		name          string
		exposed       []string
		needed        []string
		production    []string
		wantMasks     []string
		wantUncovered []string
	}{
		{"outside every exposed tree: invisible already", []string{"/usr", "/srv/scratch/d1"}, []string{"/usr/lib/postgresql/15", "/srv/scratch/d1"},
			[]string{"/var/lib/postgresql/15/main", "/var/run/postgresql", "/srv/repo"}, nil, nil},
		{"data directory under /usr/local", []string{"/usr", "/srv/scratch/d1"}, []string{"/usr/local/pgsql/bin", "/srv/scratch/d1"},
			[]string{"/usr/local/pgsql/data", "/var/lib/x"}, []string{"/usr/local/pgsql/data"}, nil},
		{"production path holding the binaries: its other entries", []string{"/usr", "/opt/pg/15", "/srv/scratch/d1"}, []string{"/opt/pg/15/bin", "/opt/pg/15/lib", "/srv/scratch/d1"},
			[]string{"/opt/pg/15/main", "/opt/pg"}, []string{"/opt/pg/15/main"}, nil},
		{"production path inside a binaries tree holding needed dirs", []string{"/usr"}, []string{"/usr/local/pgsql/bin", "/usr/local/pgsql/lib"},
			[]string{"/usr/local/pgsql"}, []string{"/usr/local/pgsql/data", "/usr/local/pgsql/share"}, nil},
		{"a whole exposed tree cannot be covered", []string{"/usr", "/srv/scratch/d1"}, []string{"/usr/lib/postgresql/15"},
			[]string{"/usr"}, nil, []string{"/usr"}},
		{"a directory above the scratch directory shows nothing of its own", []string{"/usr", "/srv/scratch-owner/drill"}, []string{"/srv/scratch-owner/drill"},
			[]string{"/srv/scratch-owner", "/srv"}, nil, nil},
		{"nested production paths: one mask", []string{"/usr"}, []string{"/usr/lib/postgresql/15"},
			[]string{"/usr/local/pgsql/data/pg_wal", "/usr/local/pgsql/data"}, []string{"/usr/local/pgsql/data"}, nil},
		{"relative and empty paths are ignored", []string{"/usr"}, nil, []string{"", "usr/local"}, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			masks, uncovered := MaskPlan(tc.exposed, tc.needed, tc.production, readDir)
			if !slices.Equal(masks, tc.wantMasks) {
				t.Errorf("masks = %q, want %q", masks, tc.wantMasks)
			}
			if !slices.Equal(uncovered, tc.wantUncovered) {
				t.Errorf("uncovered = %q, want %q", uncovered, tc.wantUncovered)
			}
		})
	}
}

// testUID is a uid no account has (checked), for the sandboxed program.
const testUID = 2130706000

// A program in the sandbox sees only what the spec shows, as the sandbox uid without
// capabilities, alone in its PID namespace, without network, and masked paths are empty.
func TestSandboxShowsOnlyWhatItShould(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("sandboxes need root: %v", err)
	}
	host := t.TempDir()
	secret := filepath.Join(host, "production")
	scratch := filepath.Join(host, "scratch")
	shown := filepath.Join(host, "shown")
	masked := filepath.Join(shown, "prod-data")
	for _, d := range []string{secret, scratch, masked} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(secret, "PG_VERSION"), filepath.Join(masked, "PG_VERSION"), filepath.Join(shown, "visible")} {
		if err := os.WriteFile(f, []byte("15\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(scratch, testUID, testUID); err != nil {
		t.Fatal(err)
	}
	spec := Spec{UID: testUID, GID: testUID, Writable: []string{scratch}, ReadOnly: []string{shown}, Tag: scratch}
	spec.Masks, _ = MaskPlan(spec.Exposed(), []string{scratch}, []string{secret, masked}, nil)
	if !slices.Equal(spec.Masks, []string{masked}) {
		t.Fatalf("mask plan = %q, want only %s", spec.Masks, masked)
	}
	selfNet, _ := os.Readlink("/proc/self/ns/net")
	cases := []struct {
		name  string
		shell string
		want  string
	}{
		{"runs as the sandbox uid, no groups", "id -u; id -g; id -G", "2130706000\n2130706000\n2130706000\n"},
		{"has no capabilities", "grep CapEff /proc/self/status", "CapEff:\t0000000000000000\n"},
		{"production is not there", "test -e " + secret + " && echo visible || echo gone", "gone\n"},
		// Only the way to the scratch and shown trees (t.TempDir is under /tmp).
		{"the host's /tmp is not there", "ls -A " + os.TempDir(), strings.SplitN(strings.TrimPrefix(host, os.TempDir()+"/"), "/", 2)[0] + "\n"},
		{"masked path is empty", "ls -A " + masked + " | wc -l; cat " + masked + "/PG_VERSION 2>/dev/null || echo unreadable", "0\nunreadable\n"},
		{"shown tree is read-only", "cat " + shown + "/visible; touch " + shown + "/new 2>/dev/null && echo wrote || echo refused", "15\nrefused\n"},
		{"/usr is read-only", "touch /usr/firedrill-test 2>/dev/null && echo wrote || echo refused", "refused\n"},
		{"scratch is writable at its own path", "echo hello > " + scratch + "/out && echo wrote", "wrote\n"},
		{"alone in its PID namespace", "ls /proc | grep -c '^[0-9]'", "3\n"}, // sh, ls, grep (init is 1: 4 with it)
		{"only loopback, and no route out", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '", "lo\n"},
		{"own hostname", "cat /proc/sys/kernel/hostname", "firedrill-sandbox\n"},
		{"the root holds only the sandbox's own tree", "ls -A / | tr '\\n' ' '", "bin dev etc lib lib64 proc sbin tmp usr "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			inner := exec.Command("/bin/sh", "-c", tc.shell)
			inner.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
			inner.Stdout, inner.Stderr = &out, &errb
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd, err := spec.Start(ctx, inner, false)
			if err != nil {
				t.Fatal(err)
			}
			if theirs, _ := os.Readlink("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/net"); theirs == selfNet {
				t.Errorf("the sandbox shares the host's network namespace")
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("%v\nstdout: %s\nstderr: %s", err, out.String(), errb.String())
			}
			got := out.String()
			if tc.name == "alone in its PID namespace" {
				// ls and grep run concurrently with sh; init (PID 1) makes one more.
				if n, _ := strconv.Atoi(strings.TrimSpace(got)); n < 2 || n > 4 {
					t.Errorf("%d processes visible, want the sandbox's own few", n)
				}
				return
			}
			if tc.name == "the root holds only the sandbox's own tree" {
				for _, e := range strings.Fields(got) {
					if !slices.Contains([]string{"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "sbin", "tmp", "usr"}, e) {
						t.Errorf("unexpected %s in the sandbox's root: %q", e, got)
					}
				}
				return
			}
			if got != tc.want {
				t.Errorf("got %q, want %q (stderr %s)", got, tc.want, errb.String())
			}
		})
	}
	if b, err := os.ReadFile(filepath.Join(scratch, "out")); err != nil || string(b) != "hello\n" {
		t.Errorf("the write to scratch did not reach the host: %q %v", b, err)
	}
}

// Killing the init process (kill -9 of firedrill kills it through Pdeathsig) kills every
// process in the sandbox.
func TestSandboxDiesWithInit(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("sandboxes need root: %v", err)
	}
	scratch := t.TempDir()
	marker := filepath.Join(scratch, "marker-"+strconv.Itoa(os.Getpid()))
	inner := exec.Command("/bin/sh", "-c", "sleep 300 & sleep 301 & wait", "sh", marker)
	inner.Env = []string{"PATH=/usr/bin:/bin"}
	cmd, err := Spec{UID: testUID, GID: testUID, Writable: []string{scratch}, Tag: marker}.Start(nil, inner, true)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	// The sleeps run inside; find them on the host by their parent (the shell, child of init).
	var inside []int
	for try := 0; try < 100 && len(inside) < 3; try++ {
		inside = descendants(cmd.Process.Pid)
		time.Sleep(20 * time.Millisecond)
	}
	if len(inside) < 3 {
		t.Fatalf("found %v inside the sandbox, want the shell and two sleeps", inside)
	}
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-done
	for try := 0; try < 100; try++ {
		alive := 0
		for _, p := range inside {
			if st, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/stat"); err == nil && !strings.Contains(string(st), ") Z ") {
				alive++
			}
		}
		if alive == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("processes %v outlived the sandbox init", inside)
}

// descendants lists the host pids of every process below pid.
func descendants(pid int) []int {
	parents := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 2 {
			pp, _ := strconv.Atoi(f[1])
			parents[pp] = append(parents[pp], p)
		}
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for _, c := range parents[p] {
			out = append(out, c)
			walk(c)
		}
	}
	walk(pid)
	return out
}
