package local

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/sys/reexec"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/engine/postgres"
)

func TestMain(m *testing.M) {
	if reexec.Init() {
		return
	}
	os.Exit(m.Run())
}

// A daemon runs in the sandbox as its own uid: it stops cleanly on SIGTERM, and from inside
// it production's paths (a file and a directory outside the sandbox's trees) are not there and
// the network namespace has only loopback.
func TestDaemonSandboxIsolationAndStop(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the sandbox with a uid of its own needs root")
	}
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	scratch := filepath.Join(root, "scratch")
	prod := filepath.Join(root, "production")
	for _, d := range []string{scratch, prod} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(prod, "secret"), []byte("production data"), 0o644); err != nil {
		t.Fatal(err)
	}
	runAs := postgres.NewRunAs(SandboxUserName, 3999871, 3999871)
	if err := runAs.Chown(scratch); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	d, err := StartDaemon(ctx, DaemonOptions{Name: "test-server", Path: "/bin/sh",
		Args:       []string{"-c", `trap 'echo bye; exit 0' TERM; echo "uid $(id -u)"; while :; do sleep 0.1; done`},
		ScratchDir: scratch, RunAs: runAs, UserFrom: UserFromSandbox, IsolateNetwork: true,
		ProductionPaths: []string{prod, filepath.Join(prod, "secret")}, Listen: "nothing"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop(time.Second)
	if !d.Running() {
		t.Fatal("not running after start")
	}
	f := d.CheckIsolation(ctx)
	if f.Status != checks.Pass {
		t.Errorf("isolation %s: %s (%v)", f.Status, f.Message, f.Evidence)
	}
	if ifs, _ := f.Evidence["interfaces"].([]string); !slices.Equal(ifs, []string{"lo"}) {
		t.Errorf("interfaces inside %v, want only lo", ifs)
	}
	iso := d.Describe().Isolation
	if iso == nil || iso.Proof == nil || len(iso.Proof.Paths) != 2 {
		t.Fatalf("isolation record %+v", iso)
	}
	clean, err := d.Stop(5 * time.Second)
	if err != nil || !clean {
		t.Errorf("stop: clean %v, err %v; log %v", clean, err, d.LogEvidence(5))
	}
	log := strings.Join(d.LogEvidence(5), "\n")
	if !strings.Contains(log, "uid 3999871") || !strings.Contains(log, "bye") {
		t.Errorf("log %q: want the server's uid and its clean exit", log)
	}
}

// Without a network namespace, the probe sees the host's interfaces and warns; a production
// file visible on the host filesystem is named.
func TestDaemonIsolationWarnsWhatIsVisible(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	root := t.TempDir()
	_ = os.Chmod(root, 0o755)
	scratch := filepath.Join(root, "scratch")
	if err := os.Mkdir(scratch, 0o777); err != nil {
		t.Fatal(err)
	}
	// /usr/share is shown read-only in every sandbox: a production path there is masked,
	// except what the server needs; a production path with content the sandbox shows is
	// named. Use the host's network to prove the network probe.
	d, err := StartDaemon(context.Background(), DaemonOptions{Name: "test-server", Path: "/bin/sleep", Args: []string{"60"},
		ScratchDir: scratch, RunAs: postgres.NewRunAs(SandboxUserName, 3999872, 3999872), UserFrom: UserFromSandbox, IsolateNetwork: false})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop(time.Second)
	f := d.CheckIsolation(t.Context())
	if f.Status != checks.Warn || !strings.Contains(f.Message, "the network") {
		t.Errorf("isolation %s: %s, want a warning naming the network", f.Status, f.Message)
	}
	if clean, err := d.Stop(2 * time.Second); err != nil || clean {
		t.Errorf("sleep killed by SIGTERM: clean %v err %v, want not clean", clean, err)
	}
}

// A one-shot tool runs in a sandbox like the server's: as the drill's uid, with production's
// paths out of sight and no network but loopback; its exit code comes back, and a non-zero
// one is an error.
func TestRunOnceSandboxedExitCode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the sandbox with a uid of its own needs root")
	}
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	scratch := filepath.Join(root, "scratch")
	prod := filepath.Join(root, "production")
	for _, d := range []string{scratch, prod} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(prod, "secret"), []byte("production data"), 0o644); err != nil {
		t.Fatal(err)
	}
	runAs := postgres.NewRunAs(SandboxUserName, 3999873, 3999873)
	if err := runAs.Chown(scratch); err != nil {
		t.Fatal(err)
	}
	o := DaemonOptions{Name: "tool", Path: "/bin/sh", ScratchDir: scratch, RunAs: runAs, IsolateNetwork: true,
		ProductionPaths: []string{prod}}
	o.Args = []string{"-c", `id -u; cat ` + filepath.Join(prod, "secret") + ` 2>&1 || echo unreadable; cut -d: -f1 /proc/net/dev; touch ok; exit 3`}
	out, code, err := RunOnce(t.Context(), o)
	if code != 3 || err == nil {
		t.Fatalf("exit code %d, err %v; want 3 and an error (output %q)", code, err, out)
	}
	got := string(out)
	if !strings.Contains(got, "3999873\n") || strings.Contains(got, "production data") || !strings.Contains(got, "unreadable") {
		t.Errorf("the tool ran as another uid or read production: %q", got)
	}
	if strings.Contains(got, "eth") || !strings.Contains(got, "lo") {
		t.Errorf("the tool's network namespace is not isolated: %q", got)
	}
	if _, err := os.Stat(filepath.Join(scratch, "ok")); err != nil {
		t.Errorf("the tool could not write in the scratch directory: %v", err)
	}
	o.Args = []string{"-c", "exit 0"}
	if _, code, err := RunOnce(t.Context(), o); code != 0 || err != nil {
		t.Errorf("a tool exiting 0: code %d err %v", code, err)
	}
	o.Path = "relative/tool"
	if _, _, err := RunOnce(t.Context(), o); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("a relative tool path: %v", err)
	}
}
