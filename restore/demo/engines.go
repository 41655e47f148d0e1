package demo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNoServer means the demo of an engine cannot run here: its server binaries are missing.
var ErrNoServer = errors.New("the engine's server binaries are not installed")

// production is a demo's production database of an engine other than PostgreSQL (whose
// production is the Sandbox's own Instance).
type production interface {
	// load writes until ctx is done; it returns when it stopped.
	load(ctx context.Context)
	// config is the target's YAML lines after "  - name: demo" (engine, connection,
	// snapshot.local.dataDir, checks), indented for the targets list.
	config(s *Sandbox) string
	// stop stops the server; the files stay.
	stop() error
	// daemon is the running server, for --keep; ping answers once it accepts clients.
	daemon() *server
	ping(ctx context.Context) error
}

// engineDemos are the demos of engines other than PostgreSQL, by engine name.
var engineDemos = map[string]func(ctx context.Context, s *Sandbox, status func(string)) (production, error){
	"redis":   startRedisDemo,
	"mariadb": startMariaDBDemo,
}

// Engines lists the engines the demo runs on: postgres first.
func Engines() []string {
	out := []string{"postgres"}
	names := make([]string, 0, len(engineDemos))
	for n := range engineDemos {
		names = append(names, n)
	}
	sort.Strings(names)
	return append(out, names...)
}

// ErrEngine means the demo was asked for an engine it does not know.
var ErrEngine = errors.New("unknown engine")

// CheckEngine says, before anything is built, whether the demo knows engine.
func CheckEngine(engine string) error {
	if slices.Contains(Engines(), engine) {
		return nil
	}
	return fmt.Errorf("%w %q: --engine is one of %s", ErrEngine, engine, strings.Join(Engines(), ", "))
}

// server is a production server the demo started as a child process.
type server struct {
	name    string
	argv    []string
	logFile string
	cmd     *exec.Cmd
	done    chan struct{}
}

// startServer starts argv with its output in logFile; the server dies with firedrill unless
// detached.
func startServer(name string, argv []string, logFile string, detached bool) (*server, error) {
	logf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("while creating the %s log: %w", name, err)
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if detached {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("while starting production %s: %w", name, err)
	}
	s := &server{name: name, argv: argv, logFile: logFile, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	return s, nil
}

// waitReady polls ready until it answers, the server exits, or timeout.
func (s *server) waitReady(ctx context.Context, timeout time.Duration, ready func(ctx context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ready(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			b, _ := os.ReadFile(s.logFile)
			return fmt.Errorf("production %s exited while starting: %s", s.name, lastLines(string(b), 10))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("production %s did not answer within %s: %w", s.name, timeout, err)
		}
	}
}

// stop stops the server with SIGTERM, then SIGKILL.
func (s *server) stop() error {
	if s == nil || s.cmd == nil {
		return nil
	}
	select {
	case <-s.done:
		return nil
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return nil
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("production %s did not stop on SIGTERM within 30 s: killed", s.name)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// keepDetached stops a production server and starts it again detached, so that it outlives
// firedrill (--keep).
func keepDetached(ctx context.Context, p production) (Kept, error) {
	old := p.daemon()
	words := make([]string, len(old.argv))
	for i, w := range old.argv {
		words[i] = shellQuote(w)
	}
	k := Kept{Start: strings.Join(words, " ") + " >>" + shellQuote(old.logFile) + " 2>&1 &"}
	if err := old.stop(); err != nil {
		return k, err
	}
	srv, err := startServer(old.name, old.argv, old.logFile, true)
	if err != nil {
		return k, err
	}
	if err := srv.waitReady(ctx, 60*time.Second, p.ping); err != nil {
		_ = srv.stop()
		return k, err
	}
	*old = *srv
	k.PID = srv.cmd.Process.Pid
	k.Stop = "kill " + strconv.Itoa(k.PID)
	return k, nil
}

// loader runs a write load until stopped.
type loader struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startLoader(ctx context.Context, p production) *loader {
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l := &loader{cancel: cancel}
	l.wg.Add(1)
	go func() { defer l.wg.Done(); p.load(lctx) }()
	return l
}

func (l *loader) stop() {
	if l == nil {
		return
	}
	l.cancel()
	l.wg.Wait()
}

// findServer finds an engine's server binary in PATH or the usual sbin directories.
func findServer(name, install string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: %s not found (%s)", ErrNoServer, name, install)
}
