package integration

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/integration/harness"
	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/runtime/docker"
)

// The docker runtime launches another engine's server (redis-server of the engines image) as a
// uid of the drill's own, with no network, only the scratch directory mounted: firedrill
// reaches it over the unix socket it makes there; the isolation probe, run in a container made
// like the server's, sees none of production and no interface but loopback; stop is clean and
// remove leaves no container.
func TestDockerLaunchesEngineServer(t *testing.T) {
	harness.Integration(t)
	harness.RequireDocker(t, harness.EnginesImage)
	ctx := t.Context()
	root := harness.TempDir(t)
	scratch := filepath.Join(root, "scratch")
	prod := filepath.Join(root, "production")
	for _, d := range []string{scratch, prod} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(prod, "dump.rdb"), []byte("production data"), 0o600); err != nil {
		t.Fatal(err)
	}
	rt, err := docker.Factory(ctx, drill.RuntimeOptions{Kind: docker.Name, Docker: drill.DockerOptions{Image: harness.EnginesImage}})
	if err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(scratch, "redis.sock")
	proc, err := rt.(drill.Launcher).Launch(ctx, drill.LaunchIn{DrillID: "d0c4e2a1", Target: "cache", ScratchDir: scratch, RunAs: postgres.RunAs{},
		ProductionPaths: []string{prod, filepath.Join(prod, "dump.rdb")}},
		drill.LaunchSpec{Name: "redis-server", Path: "/usr/bin/redis-server", Listen: "unix socket " + socket,
			Args: []string{"--port", "0", "--unixsocket", socket, "--unixsocketperm", "700", "--dir", scratch, "--save", "", "--appendonly", "no"}})
	if err != nil {
		t.Fatal(err)
	}
	removed := false
	t.Cleanup(func() {
		if !removed {
			_, _ = proc.Stop(time.Second)
			_ = proc.Remove()
		}
	})
	c := goredis.NewClient(&goredis.Options{Network: "unix", Addr: socket})
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for c.Ping(ctx).Err() != nil {
		if time.Now().After(deadline) || !proc.Running() {
			t.Fatalf("redis-server in the container did not answer on %s: %v", socket, proc.LogEvidence(10))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	f := proc.CheckIsolation(ctx)
	if f.Status != checks.Pass {
		t.Errorf("isolation %s: %s (%v)", f.Status, f.Message, f.Evidence)
	}
	if ifs, _ := f.Evidence["interfaces"].([]string); !slices.Equal(ifs, []string{"lo"}) {
		t.Errorf("interfaces in the container %v, want only lo", ifs)
	}
	d := proc.Describe()
	if d.Kind != docker.Name || !d.NetworkIsolated || d.Isolation == nil || d.Isolation.UID < 1000 || len(d.Isolation.Proof.Paths) != 2 {
		t.Errorf("describe %+v isolation %+v", d, d.Isolation)
	}
	clean, err := proc.Stop(10 * time.Second)
	if err != nil || !clean {
		t.Errorf("stop: clean %v err %v; log %v", clean, err, proc.LogEvidence(10))
	}
	if err := proc.Remove(); err != nil {
		t.Fatal(err)
	}
	removed = true
	log, _ := os.ReadFile(proc.ServerLog())
	if !strings.Contains(string(log), "ready to accept connections") {
		t.Errorf("saved server log %q", log)
	}
	if left := drillContainers(t, ctx, dockerClient(t), root); len(left) > 0 {
		t.Errorf("containers left: %v", left)
	}
}

// A one-shot tool of an engine (redis-check-rdb) runs in a container made like the server's:
// the drill's uid, no network, only the scratch directory mounted; its exit code comes back
// (not 0: an error too) and no container is left.
func TestDockerRunsEngineTool(t *testing.T) {
	harness.Integration(t)
	harness.RequireDocker(t, harness.EnginesImage)
	ctx := t.Context()
	root := harness.TempDir(t)
	scratch := filepath.Join(root, "scratch")
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(scratch, "dump.rdb"), []byte("REDIS0011 truncated"), 0o600); err != nil {
		t.Fatal(err)
	}
	rt, err := docker.Factory(ctx, drill.RuntimeOptions{Kind: docker.Name, Docker: drill.DockerOptions{Image: harness.EnginesImage}})
	if err != nil {
		t.Fatal(err)
	}
	run := rt.(drill.Launcher).Run
	in := drill.LaunchIn{DrillID: "d0c4e2a2", Target: "cache", ScratchDir: scratch}
	out, code, err := run(ctx, in, drill.LaunchSpec{Name: "redis-check-rdb", Path: "/usr/bin/redis-check-rdb", Args: []string{filepath.Join(scratch, "dump.rdb")}})
	if code == 0 || code == -1 || err == nil {
		t.Errorf("redis-check-rdb of a truncated RDB: code %d err %v output %q", code, err, out)
	}
	out, code, err = run(ctx, in, drill.LaunchSpec{Name: "sh", Path: "/bin/sh", Args: []string{"-c", "id -u; cut -d: -f1 /proc/net/dev; touch " + filepath.Join(scratch, "ok")}})
	if code != 0 || err != nil {
		t.Fatalf("sh: code %d err %v output %q", code, err, out)
	}
	if strings.Contains(string(out), "eth") || strings.HasPrefix(string(out), "0\n") {
		t.Errorf("the tool ran as root or with a network: %q", out)
	}
	if _, err := os.Stat(filepath.Join(scratch, "ok")); err != nil {
		t.Errorf("the tool could not write in the scratch directory: %v", err)
	}
	if left := drillContainers(t, ctx, dockerClient(t), root); len(left) > 0 {
		t.Errorf("containers left: %v", left)
	}
}
