package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// oldRoot is where the host's root stays reachable while the new root is built.
const oldRoot = "/.oldroot"

// initMain is the sandbox's PID 1: it builds the private root, starts the program as the
// sandbox uid, forwards signals to it, reaps every orphan, and exits with its status. When it
// exits, the kernel kills whatever is left in the PID namespace.
func initMain() {
	status := os.NewFile(3, "status")
	syscall.CloseOnExec(3)
	fail := func(err error) {
		fmt.Fprintf(status, "%v", err)
		fmt.Fprintf(os.Stderr, "firedrill sandbox: %v\n", err)
		os.Exit(126)
	}
	var s Spec
	if err := json.Unmarshal([]byte(os.Getenv(specEnv)), &s); err != nil {
		fail(fmt.Errorf("while reading the sandbox spec: %w", err))
	}
	os.Clearenv()
	if os.Getpid() != 1 {
		fail(errors.New("the sandbox init is not PID 1 of a new PID namespace"))
	}
	if err := s.buildRoot(); err != nil {
		fail(err)
	}
	if err := unix.Sethostname([]byte("firedrill-sandbox")); err != nil {
		fail(fmt.Errorf("while setting the hostname: %w", err))
	}
	// Nothing inside may gain privileges again (setuid binaries under /usr are nosuid anyway).
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fail(fmt.Errorf("while setting no_new_privs: %w", err))
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGCHLD)
	dir := s.Dir
	if dir == "" {
		dir = "/"
	}
	sys := &syscall.SysProcAttr{
		// setuid to a non-zero uid clears every capability; Groups empty drops the
		// supplementary groups root had.
		Credential: &syscall.Credential{Uid: s.UID, Gid: s.GID, Groups: []uint32{}},
		Pdeathsig:  syscall.SIGKILL,
	}
	if s.UserNS {
		// Only firedrill's own uid exists here (as 0): the program gets a nested user namespace
		// in which that uid is UID again, not root, and exec leaves it no capability.
		sys.Credential = nil
		sys.Cloneflags = syscall.CLONE_NEWUSER
		sys.UidMappings = []syscall.SysProcIDMap{{ContainerID: int(s.UID), HostID: 0, Size: 1}}
		sys.GidMappings = []syscall.SysProcIDMap{{ContainerID: int(s.GID), HostID: 0, Size: 1}}
	}
	pid, err := syscall.ForkExec(s.Path, s.Args, &syscall.ProcAttr{Dir: dir, Env: s.Env, Files: []uintptr{0, 1, 2}, Sys: sys})
	if err != nil {
		fail(fmt.Errorf("while starting %s as uid %d in the sandbox: %w", s.Path, s.UID, err))
	}
	fmt.Fprint(status, "ok")
	status.Close()
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			_ = syscall.Kill(pid, sig.(syscall.Signal))
			continue
		}
		for {
			var ws syscall.WaitStatus
			got, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if err != nil || got <= 0 {
				break
			}
			if got != pid {
				continue // an orphaned backend: reaped, nothing more
			}
			switch {
			case ws.Exited():
				os.Exit(ws.ExitStatus())
			case ws.Signaled():
				os.Exit(128 + int(ws.Signal()))
			}
		}
	}
}

// buildRoot makes the private root and pivots into it. Host paths in the spec are resolved
// before the pivot, while the host's absolute symlinks still mean what they say.
func (s *Spec) buildRoot() error {
	type bind struct{ src, dst string }
	var ro, rw []bind
	for _, p := range append(slices.Clone(SystemTrees), s.ReadOnly...) {
		fi, err := os.Lstat(p)
		if err != nil {
			continue
		}
		if fi.Mode()&os.ModeSymlink != 0 && isSystemTree(p) {
			continue // recreated as the same symlink below
		}
		ro = append(ro, bind{resolve(p), p})
	}
	for _, p := range etcFiles {
		if _, err := os.Stat(p); err == nil {
			ro = append(ro, bind{resolve(p), p})
		}
	}
	for _, p := range s.Writable {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("while binding %s into the sandbox: %w", p, err)
		}
		rw = append(rw, bind{resolve(p), p})
	}
	links := map[string]string{}
	for _, p := range SystemTrees {
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			t, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("while reading %s: %w", p, err)
			}
			links[p] = t
		}
	}
	// A mask over a path that does not exist has nothing to hide (and no mount point).
	var masks []string
	maskIsFile := map[string]bool{}
	for _, m := range s.Masks {
		if fi, err := os.Stat(m); err == nil {
			masks = append(masks, m)
			maskIsFile[m] = !fi.IsDir()
		}
	}

	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("while making mounts private: %w", err)
	}
	// The new root is a tmpfs mounted over /tmp of this mount namespace only; after the pivot
	// the host's root, with its own /tmp, is at oldRoot.
	if err := unix.Mount("tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=8m"); err != nil {
		return fmt.Errorf("while mounting the sandbox root: %w", err)
	}
	if err := os.Mkdir("/tmp"+oldRoot, 0o700); err != nil {
		return err
	}
	if err := unix.PivotRoot("/tmp", "/tmp"+oldRoot); err != nil {
		return fmt.Errorf("while pivoting into the sandbox root: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	for p, t := range links {
		if err := os.Symlink(t, p); err != nil {
			return fmt.Errorf("while linking %s: %w", p, err)
		}
	}
	// The sandbox's own /tmp first: shown and writable trees may lie under the host's /tmp.
	if err := mountTmpfs("/tmp", "mode=1777,size=64m", false); err != nil {
		return err
	}
	sort.Slice(ro, func(i, j int) bool { return ro[i].dst < ro[j].dst })
	for _, b := range ro {
		if err := bindMount(oldRoot+b.src, b.dst, true); err != nil {
			return err
		}
	}
	if err := s.writeEtc(); err != nil {
		return err
	}
	if err := makeDev(); err != nil {
		return err
	}
	if err := os.Mkdir("/proc", 0o555); err != nil {
		return err
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("while mounting /proc of the sandbox's PID namespace: %w", err)
	}
	// Masks go before the writable binds: MaskPlan never covers a writable tree's way.
	sort.Strings(masks)
	for _, m := range masks {
		if maskIsFile[m] {
			if err := bindMount("/dev/null", m, true); err != nil {
				return fmt.Errorf("while masking %s: %w", m, err)
			}
			continue
		}
		if err := mountTmpfs(m, "mode=0555,size=4k", true); err != nil {
			return fmt.Errorf("while masking %s: %w", m, err)
		}
	}
	sort.Slice(rw, func(i, j int) bool { return rw[i].dst < rw[j].dst })
	for _, b := range rw {
		if err := bindMount(oldRoot+b.src, b.dst, false); err != nil {
			return err
		}
	}
	if err := unix.Unmount(oldRoot, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("while detaching the host's root: %w", err)
	}
	if err := os.Remove(oldRoot); err != nil {
		return err
	}
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("while making the sandbox root read-only: %w", err)
	}
	return nil
}

func isSystemTree(p string) bool {
	for _, t := range SystemTrees {
		if t == p {
			return true
		}
	}
	return false
}

// bindMount shows host path src at dst (created as a directory or an empty file).
func bindMount(src, dst string, readOnly bool) error {
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("while binding %s into the sandbox: %w", strings.TrimPrefix(src, oldRoot), err)
	}
	if fi.IsDir() {
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return fmt.Errorf("while creating %s in the sandbox: %w", dst, err)
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("while creating %s in the sandbox: %w", filepath.Dir(dst), err)
		}
		if _, err := os.Lstat(dst); errors.Is(err, os.ErrNotExist) {
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o444)
			if err != nil {
				return fmt.Errorf("while creating %s in the sandbox: %w", dst, err)
			}
			f.Close()
		}
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("while binding %s at %s: %w", strings.TrimPrefix(src, oldRoot), dst, err)
	}
	// A remount must keep the flags the source mount has (in a user namespace they are
	// locked, and dropping one is refused); it may only add restrictions.
	flags := uintptr(unix.MS_BIND|unix.MS_REMOUNT|unix.MS_NOSUID) | lockedFlags(dst)
	if readOnly {
		flags |= unix.MS_RDONLY
	}
	if fi.Mode()&os.ModeDevice == 0 {
		flags |= unix.MS_NODEV
	}
	if err := unix.Mount("", dst, "", flags, ""); err != nil {
		return fmt.Errorf("while restricting %s in the sandbox: %w", dst, err)
	}
	return nil
}

// lockedFlags returns the mount flags of the mount at path that a remount must keep.
func lockedFlags(path string) uintptr {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0
	}
	var f uintptr
	for _, m := range []struct{ st, ms uintptr }{
		{unix.ST_RDONLY, unix.MS_RDONLY}, {unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC}, {unix.ST_NOATIME, unix.MS_NOATIME},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME}, {unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if uintptr(st.Flags)&m.st != 0 {
			f |= m.ms
		}
	}
	return f
}

func mountTmpfs(dst, opts string, readOnly bool) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("while creating %s in the sandbox: %w", dst, err)
	}
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if readOnly {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("tmpfs", dst, "tmpfs", flags, opts); err != nil {
		return fmt.Errorf("while mounting a tmpfs at %s: %w", dst, err)
	}
	return nil
}

// writeEtc writes the synthetic /etc: the sandbox user is the only user besides root.
func (s *Spec) writeEtc() error {
	name := s.UserName
	if name == "" {
		name = "firedrill-sandbox"
	}
	files := map[string]string{
		"/etc/passwd":        fmt.Sprintf("root:x:0:0:root:/nonexistent:/usr/sbin/nologin\n%s:x:%d:%d:firedrill sandbox:/nonexistent:/usr/sbin/nologin\n", name, s.UID, s.GID),
		"/etc/group":         fmt.Sprintf("root:x:0:\n%s:x:%d:\n", name, s.GID),
		"/etc/hosts":         "127.0.0.1 localhost\n::1 localhost\n",
		"/etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
	}
	if err := os.MkdirAll("/etc", 0o755); err != nil {
		return err
	}
	for p, c := range files {
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			return fmt.Errorf("while writing the sandbox's %s: %w", p, err)
		}
	}
	return nil
}

// makeDev builds a minimal /dev: the harmless character devices bound from the host, the
// usual links, and a private /dev/shm (POSIX shared memory of the server).
func makeDev() error {
	if err := os.MkdirAll("/dev", 0o755); err != nil {
		return err
	}
	for _, d := range []string{"null", "zero", "full", "random", "urandom"} {
		if err := bindMount(oldRoot+"/dev/"+d, "/dev/"+d, false); err != nil {
			return err
		}
	}
	for l, t := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(t, "/dev/"+l); err != nil {
			return err
		}
	}
	return mountTmpfs("/dev/shm", "mode=1777", false)
}
