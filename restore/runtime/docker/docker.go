package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/jackc/pgx/v5"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/runtime/local"
)

// Name is the runtime's restore.runtime name.
const Name = "docker"

// ErrUnreachable means no Docker engine answered.
var ErrUnreachable = errors.New("no Docker engine is reachable")

// ErrImage means the server's image is not there and could not be pulled.
var ErrImage = errors.New("image not available")

// Runtime starts throwaways in containers of one Docker engine.
type Runtime struct {
	cli *client.Client
	o   drill.RuntimeOptions
}

// NewClient connects to the Docker engine the environment names (DOCKER_HOST, else the
// default socket) and checks that it answers.
func NewClient(ctx context.Context) (*client.Client, error) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		cli.Close()
		return nil, fmt.Errorf("%w at %s: %w", ErrUnreachable, cli.DaemonHost(), err)
	}
	return cli, nil
}

// Factory is the "docker" runtime's drill.RuntimeFactory: the client is built when a drill
// asks for this runtime, once per drill.
func Factory(ctx context.Context, o drill.RuntimeOptions) (drill.Runtime, error) {
	cli, err := NewClient(ctx)
	if err != nil {
		return nil, err
	}
	return New(cli, o), nil
}

// New is a runtime on an engine client built once by the caller.
func New(cli *client.Client, o drill.RuntimeOptions) *Runtime { return &Runtime{cli: cli, o: o} }

// ScratchOwner: firedrill makes the scratch copy as itself; Start hands it to the image's
// database user.
func (r *Runtime) ScratchOwner(string) (postgres.RunAs, error) { return postgres.RunAs{}, nil }

// Image is the image a drill of major version major runs.
func (r *Runtime) Image(major string) string {
	if r.o.Docker.Image != "" {
		return r.o.Docker.Image
	}
	return "postgres:" + major
}

// Container is a throwaway server running in a container.
type Container struct {
	r          *Runtime
	ctx        context.Context // not cancelled: teardown runs after an interrupt
	s          drill.StartSpec
	image      string
	uid, gid   int
	socketDir  string
	ownSocket  bool
	shimDir    string
	id         string
	exitCode   int
	stopped    bool
	isolation  *reports.Isolation
	production []string
}

// Start pulls the image if missing, hands the copy to the image's database user, prepares it,
// and starts the server in a container.
func (r *Runtime) Start(ctx context.Context, s drill.StartSpec) (drill.Throwaway, error) {
	c := &Container{r: r, ctx: context.WithoutCancel(ctx), s: s, image: r.Image(s.Major), production: s.ProductionPaths}
	if err := r.ensureImage(ctx, c.image); err != nil {
		return nil, err
	}
	if err := c.start(ctx); err != nil {
		_ = c.Remove()
		return nil, err
	}
	return c, nil
}

func (r *Runtime) ensureImage(ctx context.Context, image string) error {
	if _, err := r.cli.ImageInspect(ctx, image); err == nil {
		return nil
	}
	resp, err := r.cli.ImagePull(ctx, image, client.ImagePullOptions{})
	if err == nil {
		err = resp.Wait(ctx)
	}
	if err != nil {
		return fmt.Errorf("%w: image %s is not in the Docker engine and could not be pulled (set restore.docker.image to an image the engine has): %w", ErrImage, image, err)
	}
	return nil
}

func (c *Container) start(ctx context.Context) error {
	uid, gid, err := c.dbUser(ctx)
	if err != nil {
		return err
	}
	c.uid, c.gid = uid, gid
	c.socketDir = filepath.Join(c.s.ScratchDir, "socket")
	// Unix socket paths are limited to 107 bytes.
	if len(c.socketDir)+len("/.s.PGSQL.5432") > 100 {
		d, err := os.MkdirTemp("", "fd-sock-")
		if err != nil {
			return fmt.Errorf("while creating a socket directory: %w", err)
		}
		c.socketDir, c.ownSocket = d, true
	}
	if err := os.MkdirAll(c.socketDir, 0o700); err != nil {
		return fmt.Errorf("while creating socket directory %s: %w", c.socketDir, err)
	}
	owner := postgres.NewRunAs("postgres", uint32(uid), uint32(gid))
	chown := func() error {
		if err := owner.ChownTree(c.s.ScratchDir); err != nil {
			return fmt.Errorf("while handing the scratch copy to the image's uid %d: %w", uid, err)
		}
		return owner.Chown(c.socketDir)
	}
	if err := chown(); err != nil {
		return err
	}
	// pg_control is read by the image's own pg_controldata: the host may have no binaries.
	out, code, err := c.run(ctx, "tool", []string{"pg_controldata"}, []string{"-D", c.s.DataDir})
	if err != nil || code != 0 {
		return fmt.Errorf("while reading pg_control of %s in image %s (exit %d): %w: %s", c.s.DataDir, c.image, code, err, bytes.TrimSpace(out))
	}
	if c.shimDir, err = controlDataShim(out); err != nil {
		return err
	}
	if err := postgres.PrepareRestore(ctx, postgres.RestoreOptions{
		BinDir: c.shimDir, DataDir: c.s.DataDir, SocketDir: c.socketDir, Port: 5432,
		Files: c.s.Files, Tablespaces: c.s.Tablespaces,
	}); err != nil {
		return err
	}
	if err := chown(); err != nil {
		return err
	}
	c.isolation = c.describeIsolation()
	id, err := c.create(ctx, "server", []string{"postgres"}, []string{"-D", c.s.DataDir})
	if err != nil {
		return err
	}
	c.id = id
	if _, err := c.r.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("while starting container %s of image %s: %w", short(id), c.image, err)
	}
	return nil
}

// controlDataShim is a directory whose pg_controldata prints what the image's printed, so that
// PrepareRestore, which reads pg_control through BinDir, needs no binaries on the host.
func controlDataShim(out []byte) (string, error) {
	dir, err := os.MkdirTemp("", "fd-controldata-")
	if err != nil {
		return "", fmt.Errorf("while creating a directory for pg_control's output: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "output"), out, 0o600); err != nil {
		return dir, err
	}
	script := "#!/bin/sh\nexec cat '" + filepath.Join(dir, "output") + "'\n"
	if err := os.WriteFile(filepath.Join(dir, "pg_controldata"), []byte(script), 0o700); err != nil {
		return dir, fmt.Errorf("while writing pg_controldata's output: %w", err)
	}
	return dir, nil
}

// dbUser is the image's database user: restore.docker.uid, else `id -u postgres` in the image.
func (c *Container) dbUser(ctx context.Context) (int, int, error) {
	if c.r.o.Docker.UID > 0 {
		return c.r.o.Docker.UID, c.r.o.Docker.UID, nil
	}
	// As root for this one question, with no capability and no network.
	out, code, err := c.runAs(ctx, 0, 0, "tool", []string{"id"}, []string{"postgres"}, false)
	if err != nil || code != 0 {
		return 0, 0, fmt.Errorf("while finding the database user of image %s (id postgres, exit %d; set restore.docker.uid): %w: %s", c.image, code, err, bytes.TrimSpace(out))
	}
	return parseID(string(out))
}

// parseID reads uid and gid from id's output: uid=999(postgres) gid=999(postgres) ...
func parseID(out string) (int, int, error) {
	var uid, gid = -1, -1
	for _, f := range strings.Fields(out) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(v, "(")
		n, err := strconv.Atoi(num)
		if err != nil {
			continue
		}
		switch k {
		case "uid":
			uid = n
		case "gid":
			gid = n
		}
	}
	if uid <= 0 || gid < 0 {
		return 0, 0, fmt.Errorf("unexpected output of id postgres: %q", strings.TrimSpace(out))
	}
	return uid, gid, nil
}

func (c *Container) spec(role string, uid, gid int, entrypoint, cmd []string, mounts bool) spec {
	s := spec{Image: c.image, UID: uid, GID: gid, DrillID: c.s.DrillID, Target: c.s.Target, ScratchDir: c.s.ScratchDir,
		Entrypoint: entrypoint, Cmd: cmd, Role: role, MemoryBytes: c.r.o.Docker.MemoryBytes, NanoCPUs: c.r.o.Docker.NanoCPUs}
	if mounts {
		s.Mounts = []string{c.s.ScratchDir}
		if c.ownSocket {
			s.Mounts = append(s.Mounts, c.socketDir)
		}
	}
	return s
}

func (c *Container) create(ctx context.Context, role string, entrypoint, cmd []string) (string, error) {
	return c.createSpec(ctx, c.spec(role, c.uid, c.gid, entrypoint, cmd, true))
}

func (c *Container) createSpec(ctx context.Context, s spec) (string, error) {
	cfg, hc := containerConfig(s)
	res, err := c.r.cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: hc})
	if err != nil {
		return "", fmt.Errorf("while creating a container of image %s: %w", s.Image, err)
	}
	return res.ID, nil
}

// run runs a one-shot container of the image as the database user on the mounted copy and
// returns its output and exit code; the container is removed.
func (c *Container) run(ctx context.Context, role string, entrypoint, cmd []string) ([]byte, int, error) {
	return c.runAs(ctx, c.uid, c.gid, role, entrypoint, cmd, true)
}

func (c *Container) runAs(ctx context.Context, uid, gid int, role string, entrypoint, cmd []string, mounts bool) ([]byte, int, error) {
	id, err := c.createSpec(ctx, c.spec(role, uid, gid, entrypoint, cmd, mounts))
	if err != nil {
		return nil, -1, err
	}
	return c.r.runToCompletion(ctx, c.ctx, id, strings.Join(entrypoint, " "), c.image)
}

// runToCompletion starts the created one-shot container id (what runs in it, of image), waits
// for it to exit and returns its output and exit code; the container is removed with cleanup,
// a context that outlives a cancellation.
func (r *Runtime) runToCompletion(ctx, cleanup context.Context, id, what, image string) ([]byte, int, error) {
	defer func() {
		_, _ = r.cli.ContainerRemove(cleanup, id, client.ContainerRemoveOptions{Force: true})
	}()
	wait := r.cli.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := r.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return nil, -1, fmt.Errorf("while starting %s in image %s: %w", what, image, err)
	}
	code := -1
	select {
	case w := <-wait.Result:
		code = int(w.StatusCode)
	case err := <-wait.Error:
		return nil, -1, fmt.Errorf("while waiting for %s in image %s: %w", what, image, err)
	case <-ctx.Done():
		return nil, -1, ctx.Err()
	}
	out, err := r.logs(ctx, id, "all")
	if err != nil {
		return nil, code, err
	}
	if code != 0 {
		return out, code, fmt.Errorf("%s exited with status %d", what, code)
	}
	return out, code, nil
}

func (c *Container) logs(ctx context.Context, id, tail string) ([]byte, error) {
	return c.r.logs(ctx, id, tail)
}

// logs reads a container's output (its last tail lines, or "all").
func (r *Runtime) logs(ctx context.Context, id, tail string) ([]byte, error) {
	rc, err := r.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: tail})
	if err != nil {
		return nil, fmt.Errorf("while reading the output of container %s: %w", short(id), err)
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil && !errors.Is(err, io.EOF) {
		return out.Bytes(), fmt.Errorf("while reading the output of container %s: %w", short(id), err)
	}
	return out.Bytes(), nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func (c *Container) connString(user, database string) string {
	return postgres.SocketConnString(c.socketDir, 5432, user, database)
}

// WaitReady waits until the server accepts connections and has left recovery.
func (c *Container) WaitReady(ctx context.Context, status func(string)) error {
	return postgres.Readiness{
		ConnString: c.connString(c.s.Superuser, "postgres"), User: c.s.Superuser, Running: c.Running,
		ExitDetail: func() string { return strings.Join(c.LogEvidence(20), "\n") }, Where: "in container " + short(c.id),
	}.Wait(ctx, status)
}

// Databases implements checks.DB.
func (c *Container) Databases(ctx context.Context) ([]string, error) {
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return postgres.Databases(ctx, conn)
}

// Connect implements checks.DB: a connection over the socket in the mounted directory.
func (c *Container) Connect(ctx context.Context, database string) (*pgx.Conn, error) {
	return postgres.ConnectCopy(ctx, c.connString(c.s.Superuser, database))
}

// Exec runs one of the image's tools (pg_checksums on the stopped copy) in a container of its
// own on the same mount, as the database user.
func (c *Container) Exec(ctx context.Context, name string, args ...string) ([]byte, int, error) {
	return c.run(ctx, "tool", []string{name}, args)
}

// BinDir: the tools are the image's, found on its PATH.
func (c *Container) BinDir() string { return "" }

// Running reports whether the server's container is running.
func (c *Container) Running() bool {
	if c.id == "" || c.stopped {
		return false
	}
	res, err := c.r.cli.ContainerInspect(c.ctx, c.id, client.ContainerInspectOptions{})
	if err != nil || res.Container.State == nil {
		return false
	}
	return res.Container.State.Running
}

// Stop shuts the server down (fast shutdown, SIGINT; SIGKILL after grace) and reports whether
// it shut down cleanly. The server's log is saved into the scratch directory first.
func (c *Container) Stop(grace time.Duration) (bool, error) {
	if c.id == "" {
		return false, nil
	}
	secs := int(grace.Seconds())
	_, err := c.r.cli.ContainerStop(c.ctx, c.id, client.ContainerStopOptions{Signal: "SIGINT", Timeout: &secs})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return false, fmt.Errorf("while stopping container %s: %w", short(c.id), err)
	}
	c.saveLog()
	res, ierr := c.r.cli.ContainerInspect(c.ctx, c.id, client.ContainerInspectOptions{})
	if ierr != nil || res.Container.State == nil {
		return false, err
	}
	c.stopped, c.exitCode = true, res.Container.State.ExitCode
	return c.exitCode == 0 && !res.Container.State.OOMKilled, nil
}

func (c *Container) saveLog() {
	if out, err := c.logs(c.ctx, c.id, "all"); err == nil {
		_ = os.WriteFile(c.ServerLog(), out, 0o600)
	}
}

// Remove removes the server's container and what was made outside the scratch directory.
func (c *Container) Remove() error {
	var errs []error
	if c.id != "" {
		if !c.stopped {
			c.saveLog()
		}
		if _, err := c.r.cli.ContainerRemove(c.ctx, c.id, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("while removing container %s: %w", short(c.id), err))
		} else {
			c.id = ""
		}
	}
	if c.ownSocket {
		_ = os.RemoveAll(c.socketDir)
	}
	if c.shimDir != "" {
		_ = os.RemoveAll(c.shimDir)
	}
	return errors.Join(errs...)
}

// ServerLog is where the server's log is saved when it stops.
func (c *Container) ServerLog() string { return filepath.Join(c.s.ScratchDir, "server.log") }

// LogEvidence returns the server's last log lines.
func (c *Container) LogEvidence(n int) []string {
	var out []byte
	if c.id != "" {
		out, _ = c.logs(c.ctx, c.id, strconv.Itoa(n))
	} else {
		out, _ = os.ReadFile(c.ServerLog())
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

func (c *Container) describeIsolation() *reports.Isolation {
	name := "postgres"
	if u, err := user.LookupId(strconv.Itoa(c.uid)); err == nil {
		name = "postgres (host: " + u.Username + ")"
	}
	return &reports.Isolation{
		Namespaces: []string{"mount", "pid", "ipc", "uts", "net"}, UID: c.uid, GID: c.gid, User: name, UserFrom: "image",
		Filesystem: fmt.Sprintf("container of image %s: read-only root, tmpfs /tmp and /run, only the drill's scratch directory mounted; network none; all capabilities dropped", c.image),
	}
}

// Describe says where and how the server ran, for the report.
func (c *Container) Describe() *reports.Runtime {
	return &reports.Runtime{Kind: Name, EngineVersion: c.s.EngineVersion, RunAs: fmt.Sprintf("uid %d of image %s", c.uid, c.image),
		Listen: "unix socket " + c.socketDir, NetworkIsolated: true, Isolation: c.isolation}
}

// Kept says how to reach a server left running by --keep.
func (c *Container) Kept() *reports.Kept {
	return &reports.Kept{ScratchDir: c.s.ScratchDir, SocketDir: c.socketDir, ServerLog: c.ServerLog(),
		Connect: c.connString(c.s.Superuser, "postgres"), Container: c.id}
}

// CheckIsolation probes production's paths from inside the container.
func (c *Container) CheckIsolation(ctx context.Context) checks.Finding {
	proof := &reports.IsolationProof{Method: fmt.Sprintf("pg_stat_file and pg_ls_dir as superuser %q from inside the container", c.s.Superuser)}
	c.isolation.Proof = proof
	ev := checks.Evidence{"paths": len(c.production), "container": short(c.id)}
	if len(c.production) == 0 {
		return checks.Warnf(local.IsolationName, ev, "no production path known to probe")
	}
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		return checks.Warnf(local.IsolationName, ev, "could not probe isolation: %v", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	proof.Paths = local.ProbePaths(ctx, conn, c.production, []string{c.s.ScratchDir, c.socketDir})
	var visible []string
	for _, pr := range proof.Paths {
		if pr.Visible {
			visible = append(visible, pr.Path+" ("+pr.Detail+")")
		}
	}
	ev["visible"] = visible
	if len(visible) > 0 {
		return checks.Warnf(local.IsolationName, ev, "production is visible from inside the container: %s", strings.Join(visible, "; "))
	}
	return checks.Passf(local.IsolationName, ev, "none of production's %d known paths is visible from inside the container", len(c.production))
}
