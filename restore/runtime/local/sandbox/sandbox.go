package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/moby/sys/reexec"
)

// initName is the argv[0] under which firedrill re-executes itself as the sandbox's PID 1.
const initName = "firedrill-sandbox-init"

// specEnv carries the Spec (JSON) to the init process; it never reaches the program.
const specEnv = "FIREDRILL_SANDBOX_SPEC"

func init() { reexec.Register(initName, initMain) }

// Namespaces a sandbox always gets, and the network namespace it gets unless Spec.HostNetwork.
var (
	BaseNamespaces = []string{"mount", "pid", "ipc", "uts"}
	NetNamespace   = "net"
)

// SystemTrees are the host trees every sandbox shows read-only: /usr, and the merged-/usr
// links (or directories, on systems without merged /usr) that the dynamic loader needs.
var SystemTrees = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}

// etcFiles are host files of /etc shown read-only when present; the rest of /etc is synthetic.
var etcFiles = []string{"/etc/ld.so.cache", "/etc/localtime"}

// Spec is one sandbox: who runs inside and what it sees.
type Spec struct {
	// UID and GID run the program (never 0); UserName names them in the sandbox's /etc/passwd.
	UID, GID uint32
	UserName string
	// ReadOnly are further host paths shown read-only at the same path (server binaries
	// outside /usr).
	ReadOnly []string
	// Writable are host directories shown read-write at the same absolute path (the drill's
	// scratch directory), so that every path recorded in the copy stays valid.
	Writable []string
	// Masks are paths inside the shown trees covered by an empty read-only tmpfs (MaskPlan).
	Masks []string
	// HostNetwork keeps the host's network namespace (a server listening on 127.0.0.1 must be
	// reachable from the host); otherwise the sandbox has an empty one (loopback down).
	HostNetwork bool
	// Tag is an extra argument of the init process, so that it can be found by command line
	// (the scratch directory).
	Tag string
	// UserNS is set by Start when firedrill is not root: the sandbox then lives in a user
	// namespace of its own (firedrill's uid is root there, with no power outside it), and the
	// program in a second one nested in it, as UID (firedrill's own uid: the one its files have).
	UserNS bool `json:",omitempty"`

	// Set by Start for the init process.
	Path string   `json:",omitempty"`
	Args []string `json:",omitempty"`
	Env  []string `json:",omitempty"`
	Dir  string   `json:",omitempty"`
}

// Namespaces lists the namespaces the sandbox gets.
func (s *Spec) Namespaces() []string {
	ns := slices.Clone(BaseNamespaces)
	if os.Geteuid() != 0 {
		ns = append([]string{"user"}, ns...)
	}
	if !s.HostNetwork {
		ns = append(ns, NetNamespace)
	}
	return ns
}

// Exposed lists the host trees the sandbox shows (for MaskPlan), as resolved host paths.
func (s *Spec) Exposed() []string {
	var out []string
	for _, p := range SystemTrees {
		if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
			out = append(out, p) // a symlink is recreated as a symlink: it shows nothing itself
		}
	}
	out = append(out, etcFiles...)
	for _, p := range append(slices.Clone(s.ReadOnly), s.Writable...) {
		out = append(out, resolve(p))
	}
	return out
}

// Available reports why sandboxes cannot be used here (nil when they can). Root always can;
// another user can when the kernel lets unprivileged users create user namespaces (Start
// proves it).
func Available() error {
	if os.Geteuid() == 0 {
		return nil
	}
	if b, err := os.ReadFile("/proc/sys/kernel/unprivileged_userns_clone"); err == nil && strings.TrimSpace(string(b)) == "0" {
		return errors.New("firedrill is not root and unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)")
	}
	if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil && strings.TrimSpace(string(b)) == "0" {
		return errors.New("firedrill is not root and user namespaces are disabled (user.max_user_namespaces = 0)")
	}
	return nil
}

// Start runs inner (an unstarted command: Path, Args, Env, Dir, Stdin/Stdout/Stderr) inside a
// new sandbox and returns the started init process. Its exit status is the program's. It
// returns once the sandbox is built and the program started, or with the reason it could not
// be. The init process dies with the calling thread (Pdeathsig) unless detached, and with it
// everything inside. ctx, when not nil, kills the sandbox when done (exec.CommandContext).
func (s Spec) Start(ctx context.Context, inner *exec.Cmd, detached bool) (*exec.Cmd, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if s.UID == 0 || s.GID == 0 {
		return nil, errors.New("a sandbox never runs its program as root")
	}
	s.Path, s.Args, s.Env, s.Dir = inner.Path, inner.Args, inner.Env, inner.Dir
	for i, p := range s.Writable {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("sandbox path %q is not absolute", p)
		}
		s.Writable[i] = filepath.Clean(p)
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	if ctx != nil {
		cmd = exec.CommandContext(ctx, reexec.Self())
	} else {
		cmd = exec.Command(reexec.Self())
	}
	cmd.Args = []string{initName}
	if s.Tag != "" {
		cmd.Args = append(cmd.Args, s.Tag)
	}
	cmd.Env = []string{specEnv + "=" + string(b)}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inner.Stdin, inner.Stdout, inner.Stderr
	cmd.Dir = "/"
	flags := syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS
	if !s.HostNetwork {
		flags |= syscall.CLONE_NEWNET
	}
	attr := &syscall.SysProcAttr{Cloneflags: uintptr(flags), Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if s.UserNS = os.Geteuid() != 0; s.UserNS {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
		if b, err = json.Marshal(s); err != nil {
			return nil, err
		}
		cmd.Env = []string{specEnv + "=" + string(b)}
	}
	if detached {
		attr.Pdeathsig = 0
	}
	cmd.SysProcAttr = attr
	// The init process says "ok" on fd 3 once the program runs, or why it could not.
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("while creating the sandbox's status pipe: %w", err)
	}
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("while creating the sandbox (namespaces %s): %w", strings.Join(s.Namespaces(), ", "), err)
	}
	w.Close()
	msg, _ := io.ReadAll(r)
	r.Close()
	if string(msg) != "ok" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		why := strings.TrimSpace(string(msg))
		if why == "" {
			why = "the sandbox init exited without saying why"
		}
		return nil, fmt.Errorf("while building the sandbox: %s", why)
	}
	return cmd, nil
}

// resolve returns p with symlinks resolved (p itself when it does not exist).
func resolve(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return filepath.Clean(p)
}
