package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/runtime/local"
)

// The docker runtime runs registered engines' servers too.
var _ drill.Launcher = (*Runtime)(nil)

// Server is an engine's server (redis-server, mariadbd) in a container: a uid of its own chosen
// for the drill, no network, every capability dropped, a read-only root, and only the scratch
// directory mounted, at its own path, so that the unix socket the server makes there is
// reachable from firedrill.
type Server struct {
	r          *Runtime
	ctx        context.Context // not cancelled: teardown runs after an interrupt
	in         drill.LaunchIn
	s          drill.LaunchSpec
	image      string
	uid, gid   int
	id         string
	done       chan struct{}
	stopped    bool
	isolation  *reports.Isolation
	production []string
}

// Launch starts an engine's server in a container of restore.docker.image (default: the
// engine's image). The scratch directory is handed to a uid chosen for this drill, which the
// container runs as.
func (r *Runtime) Launch(ctx context.Context, in drill.LaunchIn, s drill.LaunchSpec) (drill.Process, error) {
	c, err := r.server(ctx, in, s)
	if err != nil {
		return nil, err
	}
	// In a container, binaries are run by name, found on the image's PATH.
	id, err := c.create(ctx, "server", append([]string{filepath.Base(s.Path)}, s.Args...))
	if err != nil {
		return nil, err
	}
	c.id = id
	wait := r.cli.ContainerWait(c.ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := r.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		_ = c.Remove()
		return nil, fmt.Errorf("while starting container %s of image %s: %w", short(id), c.image, err)
	}
	go func() {
		select {
		case <-wait.Result:
		case <-wait.Error:
		}
		close(c.done)
	}()
	return c, nil
}

// Run runs an engine's one-shot tool (redis-check-rdb, mariadb-install-db) to completion in a
// container made like the server's: same image, uid, mount and isolation.
func (r *Runtime) Run(ctx context.Context, in drill.LaunchIn, s drill.LaunchSpec) ([]byte, int, error) {
	c, err := r.server(ctx, in, s)
	if err != nil {
		return nil, -1, err
	}
	return c.Exec(ctx, s.Path, s.Args...)
}

// server is a container-to-be of image restore.docker.image (default: the engine's) for the
// drill, its scratch directory handed to the uid it runs as.
func (r *Runtime) server(ctx context.Context, in drill.LaunchIn, s drill.LaunchSpec) (*Server, error) {
	image := r.o.Docker.Image
	if image == "" {
		image = s.Image
	}
	if image == "" {
		return nil, fmt.Errorf("%w: engine server %s has no default image: set restore.docker.image", ErrImage, s.Name)
	}
	if err := r.ensureImage(ctx, image); err != nil {
		return nil, err
	}
	uid := r.o.Docker.UID
	if uid <= 0 {
		runAs, _, err := local.ResolveRunAs("", in.DrillID)
		if err != nil {
			return nil, fmt.Errorf("while choosing the container's uid: %w", err)
		}
		uid = int(runAs.UID)
	}
	c := &Server{r: r, ctx: context.WithoutCancel(ctx), in: in, s: s, image: image, uid: uid, gid: uid, done: make(chan struct{}), production: in.ProductionPaths}
	if err := chownTree(in.ScratchDir, uid, uid); err != nil {
		return nil, fmt.Errorf("while handing the scratch copy to the container's uid %d: %w", uid, err)
	}
	c.isolation = &reports.Isolation{
		Namespaces: []string{"mount", "pid", "ipc", "uts", "net"}, UID: uid, GID: uid, User: fmt.Sprintf("uid %d (no account)", uid), UserFrom: local.UserFromSandbox,
		Filesystem: fmt.Sprintf("container of image %s: read-only root, tmpfs /tmp and /run, only the drill's scratch directory mounted; network none; all capabilities dropped", image),
	}
	return c, nil
}

func (c *Server) spec(role string, argv []string) spec {
	return spec{Image: c.image, UID: c.uid, GID: c.gid, DrillID: c.in.DrillID, Target: c.in.Target, ScratchDir: c.in.ScratchDir,
		Mounts: []string{c.in.ScratchDir}, Entrypoint: argv[:1], Cmd: argv[1:], Role: role,
		MemoryBytes: c.r.o.Docker.MemoryBytes, NanoCPUs: c.r.o.Docker.NanoCPUs}
}

func (c *Server) create(ctx context.Context, role string, argv []string) (string, error) {
	cfg, hc := containerConfig(c.spec(role, argv))
	if c.s.Env != nil {
		cfg.Env = c.s.Env
	}
	res, err := c.r.cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: hc})
	if err != nil {
		return "", fmt.Errorf("while creating a container of image %s: %w", c.image, err)
	}
	return res.ID, nil
}

// Exec runs a tool in a container of its own with the same mounts, uid and isolation; the
// tool is found by name on the image's PATH.
func (c *Server) Exec(ctx context.Context, path string, args ...string) ([]byte, int, error) {
	id, err := c.create(ctx, "tool", append([]string{filepath.Base(path)}, args...))
	if err != nil {
		return nil, -1, err
	}
	return c.r.runToCompletion(ctx, c.ctx, id, path, c.image)
}

func (c *Server) logs(ctx context.Context, id, tail string) ([]byte, error) {
	return c.r.logs(ctx, id, tail)
}

// Exited is closed once the server's container exited.
func (c *Server) Exited() <-chan struct{} { return c.done }

// Running reports whether the server's container runs.
func (c *Server) Running() bool {
	if c.id == "" || c.stopped {
		return false
	}
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// Stop asks the server to shut down with its stop signal (SIGKILL after grace) and reports
// whether it exited with status 0. The server's log is saved into the scratch directory.
func (c *Server) Stop(grace time.Duration) (bool, error) {
	if c.id == "" {
		return false, nil
	}
	sig := c.s.StopSignal
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	secs := int(grace.Seconds())
	_, err := c.r.cli.ContainerStop(c.ctx, c.id, client.ContainerStopOptions{Signal: unix.SignalName(sig), Timeout: &secs})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return false, fmt.Errorf("while stopping container %s: %w", short(c.id), err)
	}
	c.saveLog()
	res, ierr := c.r.cli.ContainerInspect(c.ctx, c.id, client.ContainerInspectOptions{})
	c.stopped = true
	if ierr != nil || res.Container.State == nil {
		return false, err
	}
	return res.Container.State.ExitCode == 0 && !res.Container.State.OOMKilled, nil
}

func (c *Server) saveLog() {
	if out, err := c.logs(c.ctx, c.id, "all"); err == nil {
		_ = os.WriteFile(c.ServerLog(), out, 0o600)
	}
}

// Remove removes the server's container.
func (c *Server) Remove() error {
	if c.id == "" {
		return nil
	}
	if !c.stopped {
		c.saveLog()
	}
	if _, err := c.r.cli.ContainerRemove(c.ctx, c.id, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("while removing container %s: %w", short(c.id), err)
	}
	c.id = ""
	return nil
}

// ServerLog is where the server's log is saved when it stops.
func (c *Server) ServerLog() string { return filepath.Join(c.in.ScratchDir, "server.log") }

// LogEvidence returns the server's last log lines.
func (c *Server) LogEvidence(n int) []string {
	if c.id == "" {
		return local.LogTail(c.ServerLog(), n)
	}
	out, _ := c.logs(c.ctx, c.id, fmt.Sprint(n))
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// Describe says where and how the server ran, for the report.
func (c *Server) Describe() *reports.Runtime {
	return &reports.Runtime{Kind: Name, EngineVersion: c.s.EngineVersion, RunAs: fmt.Sprintf("uid %d in image %s", c.uid, c.image),
		Listen: c.s.Listen, NetworkIsolated: true, Isolation: c.isolation}
}

// Kept says how to reach a server left running by --keep.
func (c *Server) Kept() *reports.Kept {
	return &reports.Kept{ScratchDir: c.in.ScratchDir, ServerLog: c.ServerLog(), Connect: c.s.Listen, Container: c.id}
}

// CheckIsolation probes production's paths and the network from a container made like the
// server's (same image, uid, mounts, no network): what the server itself could reach.
func (c *Server) CheckIsolation(ctx context.Context) checks.Finding {
	proof := &reports.IsolationProof{Method: fmt.Sprintf("a shell in a container made like the server's (image %s, uid %d, network none) lists each path and the network namespace's interfaces and routes", c.image, c.uid), Paths: []reports.IsolationProbed{}}
	c.isolation.Proof = proof
	ev := checks.Evidence{"paths": len(c.production), "container": short(c.id)}
	out, _, err := c.Exec(ctx, "sh", append([]string{"-c", local.ProbeScript, "probe"}, c.production...)...)
	if err != nil && len(out) == 0 {
		return checks.Warnf(local.IsolationName, ev, "could not probe isolation: %v", err)
	}
	return local.ProbeFinding(out, []string{c.in.ScratchDir}, c.production, nil, proof, ev)
}

// chownTree hands root and everything under it to uid:gid.
func chownTree(root string, uid, gid int) error {
	return filepath.WalkDir(root, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}
