package local

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/runtime/local/sandbox"
)

// DaemonOptions is a throwaway server of an engine other than PostgreSQL (redis-server,
// mariadbd) run as a local process: in the same sandbox as PostgreSQL's when there can be one.
type DaemonOptions struct {
	// Name names the server in messages ("redis-server").
	Name string
	// Path is the server binary (absolute); Args its arguments, Env its environment (nil:
	// LC_ALL=C and PATH=/usr/bin:/bin only).
	Path string
	Args []string
	Env  []string
	// ScratchDir is the drill's private directory: writable inside the sandbox, at its own
	// path; nothing else of the host is.
	ScratchDir string
	RunAs      postgres.RunAs
	// UserFrom says where RunAs came from (UserFrom*).
	UserFrom string
	// IsolateNetwork gives the server an empty network namespace (loopback down): it must
	// listen on a unix socket inside ScratchDir.
	IsolateNetwork bool
	// ReadOnly are further host paths the server needs (an installation outside /usr).
	ReadOnly []string
	// ProductionPaths are production's paths the drill knows: masked where the sandbox would
	// show them, and probed from inside by CheckIsolation.
	ProductionPaths []string
	// LogFile gets the server's stdout and stderr; default ScratchDir/server.log.
	LogFile string
	// Keep lets the server outlive firedrill (--keep).
	Keep bool
	// StopSignal asks the server to shut down cleanly; default SIGTERM.
	StopSignal syscall.Signal
	// EngineVersion and Listen are what the report says of the server.
	EngineVersion string
	Listen        string
}

// Daemon is a running throwaway server started by StartDaemon.
type Daemon struct {
	opts       DaemonOptions
	cmd        *exec.Cmd
	done       chan struct{}
	mu         sync.Mutex
	state      *os.ProcessState
	stopped    bool // Stop sent the stop signal: an exit after it is a shutdown, not a crash
	sandbox    *sandbox.Spec
	sandboxErr error
	production []string
	isolation  *reports.Isolation
}

// StartDaemon starts the server and returns once it runs (not once it is ready).
func StartDaemon(ctx context.Context, o DaemonOptions) (*Daemon, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if o.LogFile == "" {
		o.LogFile = filepath.Join(o.ScratchDir, "server.log")
	}
	if o.StopSignal == 0 {
		o.StopSignal = syscall.SIGTERM
	}
	d := &Daemon{opts: o, done: make(chan struct{}), production: resolvedPaths(o.ProductionPaths)}
	logf, err := os.OpenFile(o.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("while creating the %s log %s: %w", o.Name, o.LogFile, err)
	}
	defer logf.Close()
	if err := o.RunAs.Chown(o.LogFile); err != nil {
		return nil, fmt.Errorf("while handing the %s log to %s: %w", o.Name, o.RunAs.Name, err)
	}
	inner := exec.Command(o.Path, o.Args...)
	inner.Env, inner.Dir = o.Env, o.ScratchDir
	inner.Stdout, inner.Stderr = logf, logf
	if d.sandboxErr = sandbox.Available(); d.sandboxErr == nil {
		d.sandbox = o.sandbox(d.production)
		outer, err := d.sandbox.Start(nil, inner, o.Keep)
		switch {
		case err == nil:
			d.cmd = outer
		case os.Geteuid() == 0:
			return nil, fmt.Errorf("while starting %s in its sandbox: %w", o.Name, err)
		default:
			// Not root, the kernel may still refuse what a user namespace sandbox needs: run
			// on the host, and say why.
			d.sandbox, d.sandboxErr = nil, fmt.Errorf("firedrill is not root and its user namespace sandbox failed (%w)", err)
		}
	}
	if d.cmd == nil {
		inner.SysProcAttr = &syscall.SysProcAttr{Credential: o.RunAs.Credential(), Setpgid: true}
		if !o.Keep {
			inner.SysProcAttr.Pdeathsig = syscall.SIGKILL
		}
		if err := inner.Start(); err != nil {
			return nil, fmt.Errorf("while starting %s: %w", o.Name, err)
		}
		d.cmd = inner
	}
	d.isolation = isolationRecord(o.RunAs, o.UserFrom, d.sandbox, d.sandboxErr, false)
	go func() {
		_ = d.cmd.Wait()
		d.mu.Lock()
		d.state = d.cmd.ProcessState
		d.mu.Unlock()
		close(d.done)
	}()
	kind := KindProcess
	if d.sandbox != nil {
		kind = KindSandbox
	}
	pid := d.cmd.Process.Pid
	if err := writeRuntimeRecord(o.ScratchDir, runtimeRecord{HostPID: pid, Kind: kind, StartTicks: processStart(pid), StartedAt: time.Now().UTC(), DataDir: o.ScratchDir}); err != nil {
		_, _ = d.Stop(5 * time.Second)
		return nil, err
	}
	_ = ctx // starting does not wait: WaitReady of the engine's server does
	return d, nil
}

// withDefaults checks what every run of the options needs and fills the environment's default.
func (o DaemonOptions) withDefaults() (DaemonOptions, error) {
	if !filepath.IsAbs(o.Path) {
		return o, fmt.Errorf("the %s binary %q is not an absolute path", o.Name, o.Path)
	}
	if o.Env == nil {
		o.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin"}
	}
	return o, nil
}

// sandbox is the sandbox the options' process runs in: only the scratch directory writable,
// the binary's directory and ReadOnly shown, production's paths masked.
func (o DaemonOptions) sandbox(production []string) *sandbox.Spec {
	return buildSandbox(o.RunAs, o.IsolateNetwork, []string{o.ScratchDir}, append([]string{filepath.Dir(o.Path)}, o.ReadOnly...), production)
}

// resolvedPaths are the absolute paths among paths, each also as its symlinks resolve.
func resolvedPaths(paths []string) []string {
	var out []string
	for _, p := range paths {
		if p == "" || !filepath.IsAbs(p) {
			continue
		}
		for _, q := range []string{filepath.Clean(p), resolvePath(p)} {
			if !slices.Contains(out, q) {
				out = append(out, q)
			}
		}
	}
	return out
}

// RunOnce runs one of an engine's one-shot tools (a file checker such as redis-check-rdb, an
// initialiser such as mariadb-install-db) to completion where StartDaemon would run its
// server: in a sandbox made the same way, as RunAs, with only the scratch directory writable.
// It returns the combined output and the exit code (an error too when the code is not 0).
// o.LogFile, Keep and StopSignal are not used.
func RunOnce(ctx context.Context, o DaemonOptions) ([]byte, int, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, -1, err
	}
	command := func() *exec.Cmd {
		cmd := exec.CommandContext(ctx, o.Path, o.Args...)
		cmd.Env, cmd.Dir = o.Env, o.ScratchDir
		return cmd
	}
	if sandbox.Available() != nil {
		return runTool(ctx, command(), nil, o.RunAs)
	}
	out, code, err := runTool(ctx, command(), o.sandbox(resolvedPaths(o.ProductionPaths)), o.RunAs)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) && ctx.Err() == nil && os.Geteuid() != 0 {
		// Not root, the kernel may refuse what a user namespace sandbox needs (as for the
		// server in StartDaemon): run on the host as RunAs.
		return runTool(ctx, command(), nil, o.RunAs)
	}
	return out, code, err
}

// Exited is closed once the server process (or its sandbox) has exited.
func (d *Daemon) Exited() <-chan struct{} { return d.done }

// ExitError says how the server exited when it exited on its own; nil while it runs.
func (d *Daemon) ExitError() error {
	select {
	case <-d.done:
	default:
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return fmt.Errorf("%s exited: %s", d.opts.Name, d.state)
}

// Running reports whether the server is alive.
func (d *Daemon) Running() bool {
	select {
	case <-d.done:
		return false
	default:
		return d.cmd != nil
	}
}

// Stop asks the server to shut down (StopSignal), waits up to grace, then kills it and all
// it started. clean is an exit with status 0 after the stop signal. It works after a
// cancellation.
func (d *Daemon) Stop(grace time.Duration) (clean bool, err error) {
	if d.cmd == nil {
		return false, nil
	}
	if grace <= 0 {
		grace = 30 * time.Second
	}
	pid := d.cmd.Process.Pid
	if d.Running() {
		d.mu.Lock()
		d.stopped = true
		d.mu.Unlock()
		_ = syscall.Kill(pid, d.opts.StopSignal) // the sandbox init forwards it
		select {
		case <-d.done:
		case <-time.After(grace):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			select {
			case <-d.done:
			case <-time.After(10 * time.Second):
				return false, fmt.Errorf("while stopping %s (pid %d): still running after SIGKILL", d.opts.Name, pid)
			}
			return false, nil
		}
	}
	// Whatever it started outside a sandbox dies with its group.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopped && d.state != nil && d.state.Success(), nil
}

// Remove removes nothing: everything the daemon made is in the scratch directory.
func (d *Daemon) Remove() error { return nil }

// Exec runs a tool (an absolute path) as the user owning the copy, in a sandbox like the
// server's when there is one; it returns output and exit code.
func (d *Daemon) Exec(ctx context.Context, path string, args ...string) ([]byte, int, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env, cmd.Dir = d.opts.Env, d.opts.ScratchDir
	var spec *sandbox.Spec
	if d.sandbox != nil {
		s := *d.sandbox
		s.ReadOnly = append(slices.Clone(s.ReadOnly), filepath.Dir(path))
		spec = &s
	}
	return runTool(ctx, cmd, spec, d.opts.RunAs)
}

// runTool runs cmd to completion in a sandbox made from spec, or, with no sandbox, as runAs
// in a process group of its own that dies with firedrill; it returns the combined output and
// the exit code.
func runTool(ctx context.Context, cmd *exec.Cmd, spec *sandbox.Spec, runAs postgres.RunAs) ([]byte, int, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	var err error
	if spec != nil {
		var outer *exec.Cmd
		if outer, err = spec.Start(ctx, cmd, false); err == nil {
			err = outer.Wait()
		}
	} else {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: runAs.Credential(), Setpgid: true, Pdeathsig: syscall.SIGKILL}
		err = cmd.Run()
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	return out.Bytes(), code, err
}

// ProbeScript prints, for each path argument, what a process sees there: "M" missing, "F
// size" a file, "D" a directory followed by one "E name" line per entry, "X reason" not
// readable; then the network interfaces ("N name") and routes ("R" lines) of its namespace.
const ProbeScript = `for p in "$@"; do
  printf 'P\t%s\n' "$p"
  if [ -d "$p" ]; then
    if names=$(ls -A1 -- "$p" 2>&1); then printf 'D\n'; printf '%s\n' "$names" | sed -n 's/^./E\t&/p'; else printf 'X\t%s\n' "$(printf '%s' "$names" | head -n1)"; fi
  elif [ -e "$p" ] || [ -L "$p" ]; then
    if [ -r "$p" ]; then printf 'F\t%s\n' "$(wc -c < "$p" 2>/dev/null || echo 0)"; else printf 'X\tnot readable\n'; fi
  else printf 'M\n'; fi
done
printf 'NET\n'
sed -n '3,$p' /proc/net/dev | cut -d: -f1 | tr -d ' ' | sed 's/^/N\t/'
sed -n '2,$p' /proc/net/route | sed 's/^/R\t/'
`

// CheckIsolation probes production's paths and the network from inside a sandbox like the
// server's, as the server's user: what the server itself could reach. Pass when nothing of
// production is visible and the network namespace has no interface but loopback; warn naming
// what is (never fail: it says nothing about the backup).
func (d *Daemon) CheckIsolation(ctx context.Context) checks.Finding {
	proof := &reports.IsolationProof{Method: fmt.Sprintf("a shell as the server's user in a sandbox like %s's lists each path and the network namespace's interfaces and routes", d.opts.Name), Paths: []reports.IsolationProbed{}}
	d.isolation.Proof = proof
	ev := checks.Evidence{"paths": len(d.production)}
	out, _, err := d.Exec(ctx, "/bin/sh", append([]string{"-c", ProbeScript, "probe"}, d.production...)...)
	if err != nil && len(out) == 0 {
		return checks.Warnf(IsolationName, ev, "could not probe isolation: %v", err)
	}
	own := []string{d.opts.ScratchDir}
	if d.sandbox != nil {
		own = append(append(append(own, d.sandbox.ReadOnly...), d.sandbox.Writable...), sandbox.SystemTrees...)
	}
	return ProbeFinding(out, own, d.production, d.isolation.NotPossible, proof, ev)
}

// ProbeFinding reads ProbeScript's output (run where the throwaway runs), records it in proof
// and returns the isolation finding: pass when nothing of production is visible and the
// network namespace has no interface but loopback and no route; warn naming what is (never
// fail: it says nothing about the backup). own are the throwaway's own trees.
func ProbeFinding(out []byte, own, production, notPossible []string, proof *reports.IsolationProof, ev checks.Evidence) checks.Finding {
	probed, ifaces, routes := parseProbe(out, own)
	proof.Paths = probed
	var visible []string
	for _, pr := range probed {
		if pr.Visible {
			visible = append(visible, pr.Path+" ("+pr.Detail+")")
		}
	}
	ev["interfaces"], ev["routes"] = ifaces, routes
	if slices.ContainsFunc(ifaces, func(i string) bool { return i != "lo" }) || routes > 0 {
		visible = append(visible, fmt.Sprintf("the network (interfaces %s, %d routes)", strings.Join(ifaces, ", "), routes))
	}
	ev["visible"] = visible
	if len(notPossible) > 0 {
		ev["notPossible"] = notPossible
	}
	if len(visible) > 0 {
		return checks.Warnf(IsolationName, ev, "production is visible from inside the throwaway: %s", strings.Join(visible, "; "))
	}
	if len(production) == 0 {
		return checks.Passf(IsolationName, ev, "no production path known to probe; the throwaway's network namespace has no interface but loopback and no route")
	}
	return checks.Passf(IsolationName, ev, "none of production's %d known paths is visible from inside the throwaway, and its network namespace has no interface but loopback and no route", len(production))
}

// parseProbe reads ProbeScript's output.
func parseProbe(out []byte, own []string) (probed []reports.IsolationProbed, ifaces []string, routes int) {
	var cur *reports.IsolationProbed
	var entries []string
	flush := func() {
		if cur == nil {
			return
		}
		if cur.Detail == "directory" {
			cur.Visible, cur.Detail = dirDetail(cur.Path, entries, own)
		}
		probed = append(probed, *cur)
		cur, entries = nil, nil
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		kind, rest, _ := strings.Cut(sc.Text(), "\t")
		switch kind {
		case "P":
			flush()
			cur = &reports.IsolationProbed{Path: rest}
		case "M":
			if cur != nil {
				cur.Detail = "does not exist"
			}
		case "D":
			if cur != nil {
				cur.Detail = "directory"
			}
		case "E":
			entries = append(entries, rest)
		case "F":
			if cur != nil {
				if n, _ := strconv.ParseInt(strings.TrimSpace(rest), 10, 64); n > 0 {
					cur.Visible, cur.Detail = true, fmt.Sprintf("file of %d bytes", n)
				} else {
					cur.Detail = "empty file (masked)"
				}
			}
		case "X":
			if cur != nil {
				cur.Visible, cur.Detail = true, "exists: "+rest
			}
		case "NET":
			flush()
		case "N":
			if rest != "" {
				ifaces = append(ifaces, rest)
			}
		case "R":
			routes++
		}
	}
	flush()
	return probed, ifaces, routes
}

// Describe says where and how the server ran, for the report.
func (d *Daemon) Describe() *reports.Runtime {
	runAs := d.opts.RunAs.Name
	if runAs == "" {
		runAs = "(current user)"
	}
	if d.sandbox != nil && d.opts.UserFrom == UserFromSandbox {
		runAs = fmt.Sprintf("%s uid %d", SandboxUserName, d.opts.RunAs.UID)
	}
	return &reports.Runtime{Kind: "local", EngineVersion: d.opts.EngineVersion, RunAs: runAs, Listen: d.opts.Listen,
		NetworkIsolated: d.sandbox != nil && !d.sandbox.HostNetwork, Isolation: d.isolation}
}

// Kept says how to reach a server left running by --keep.
func (d *Daemon) Kept() *reports.Kept {
	k := &reports.Kept{ScratchDir: d.opts.ScratchDir, ServerLog: d.opts.LogFile, Connect: d.opts.Listen}
	if d.cmd != nil {
		k.PID = d.cmd.Process.Pid
	}
	return k
}

// ServerLog is the path of the server's log.
func (d *Daemon) ServerLog() string { return d.opts.LogFile }

// LogEvidence returns the last n lines of the server's log.
func (d *Daemon) LogEvidence(n int) []string { return LogTail(d.opts.LogFile, n) }

// LogTail returns the last n non-empty lines of a log file.
func LogTail(file string, n int) []string {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}
