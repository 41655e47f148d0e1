package harness

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ComponentPrefix starts the log line every starter writes once its component is ready, so the
// test-output summariser (integration/setup/testsummary) can list the components a run used.
const ComponentPrefix = "harness: component "

// logComponent records, in the test's log, that the test used a component and which version:
// "harness: component mariadb 10.11.19-MariaDB (started on 127.0.0.1:34041)".
func logComponent(t testing.TB, component, version, detail string) {
	t.Helper()
	t.Logf("%s%s %s (%s)", ComponentPrefix, component, version, detail)
}

// daemon is a server process a starter runs for one test. It runs in its own process group with
// SIGKILL as its parent-death signal, so neither it nor its children outlive the test binary,
// even when a test panics and no cleanup runs.
type daemon struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed when the process has exited
	waitErr error         // valid once exited is closed
}

// startDaemon starts cmd with its output in logPath and registers a t.Cleanup that stops its
// whole process group: SIGTERM, then SIGKILL after grace.
func startDaemon(t testing.TB, name string, cmd *exec.Cmd, logPath string, grace time.Duration) *daemon {
	t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("while creating the log of %s: %v", name, err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("while starting %s (%s): %v", name, cmd.Path, err)
	}
	d := &daemon{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		d.waitErr = cmd.Wait()
		logFile.Close()
		close(d.exited)
	}()
	t.Cleanup(func() { d.stop(t, grace) })
	return d
}

func (d *daemon) stop(t testing.TB, grace time.Duration) {
	pgid := d.cmd.Process.Pid // Setpgid: the group id is the leader's pid
	select {
	case <-d.exited:
		// The leader is gone; its children may not be.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return
	default:
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(grace):
		t.Logf("harness: %s did not stop within %s of SIGTERM; killing it", d.name, grace)
	}
	// Whatever is left of the group (or the leader itself after the grace period).
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-d.exited
}

// running reports whether the process is still up.
func (d *daemon) running() bool {
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

// waitReady calls ready until it returns nil, the process exits, or timeout passes; in the two
// last cases it fails the test with the end of the process's log.
func (d *daemon) waitReady(t testing.TB, timeout time.Duration, ready func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = ready(); err == nil {
			return
		}
		if !d.running() {
			t.Fatalf("%s exited before it was ready (%v); end of its log %s:\n%s",
				d.name, d.waitErr, d.logPath, fileTail(d.logPath, 30))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was not ready within %s (last error: %v); end of its log %s:\n%s",
				d.name, timeout, err, d.logPath, fileTail(d.logPath, 30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fileTail returns the last n lines of a file, for error messages.
func fileTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// shortTempDir makes a temporary directory with a short path, removed when t ends. Unix socket
// paths are limited to 107 bytes and t.TempDir() paths grow with the test's name.
func shortTempDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatalf("while making a temporary directory: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("while removing %s: %v", dir, err)
		}
	})
	return dir
}

// findBinary finds a binary on PATH or in the usual Debian sbin directories, which a non-root
// PATH often lacks.
func findBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin"} {
		p := dir + "/" + name
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// commandOutput runs a short command and returns its combined output, trimmed.
func commandOutput(name string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}
