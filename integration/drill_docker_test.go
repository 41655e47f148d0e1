package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/moby/moby/client"

	"github.com/firedrill/firedrill/integration/harness"
)

// dockerTarget is a target whose drills run in containers of the harness's image.
func dockerTarget(t *testing.T, pg *harness.Postgres, extra, image string) (target, string) {
	t.Helper()
	tg, cfg := newTarget(t, pg, extra)
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "      runtime: local\n", fmt.Sprintf("      runtime: docker\n      docker:\n        image: %s\n        memory: 1GiB\n        cpus: 1\n", image), 1)
	if err := os.WriteFile(cfg, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return tg, cfg
}

// drillContainers are firedrill's containers of drills under scratch, by label.
func drillContainers(t *testing.T, ctx context.Context, cli *client.Client, scratch string) []string {
	t.Helper()
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: client.Filters{}.Add("label", "app.kubernetes.io/managed-by=firedrill")})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range list.Items {
		if strings.HasPrefix(c.Labels["firedrill.io/scratch-dir"], scratch+"/") {
			out = append(out, fmt.Sprintf("%s %s drill %s (%s)", c.ID[:12], c.Labels["firedrill.io/role"], c.Labels["firedrill.io/drill-id"], c.State))
		}
	}
	return out
}

func dockerClient(t *testing.T) *client.Client {
	t.Helper()
	harness.RequireDocker(t, harness.PostgresImage)
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// removeContainersUnder removes what a test left (a kept throwaway).
func removeContainersUnder(t *testing.T, cli *client.Client, scratch string) {
	t.Cleanup(func() {
		ctx := context.Background()
		list, _ := cli.ContainerList(ctx, client.ContainerListOptions{All: true,
			Filters: client.Filters{}.Add("label", "app.kubernetes.io/managed-by=firedrill")})
		for _, c := range list.Items {
			if strings.HasPrefix(c.Labels["firedrill.io/scratch-dir"], scratch+"/") {
				_, _ = cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
			}
		}
	})
}

type dockerDrillJSON struct {
	drillJSON
	Runtime struct {
		Kind            string `json:"kind"`
		RunAs           string `json:"runAs"`
		Listen          string `json:"listen"`
		NetworkIsolated bool   `json:"networkIsolated"`
		Isolation       struct {
			Namespaces []string `json:"namespaces"`
			UID        int      `json:"uid"`
		} `json:"isolation"`
	} `json:"runtime"`
	Kept struct {
		ScratchDir string `json:"scratchDir"`
		Connect    string `json:"connect"`
		Container  string `json:"container"`
	} `json:"kept"`
	Interrupted bool `json:"interrupted"`
}

func parseDockerDrill(t *testing.T, r cliResult) dockerDrillJSON {
	t.Helper()
	var d dockerDrillJSON
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatalf("drill output is not JSON (%v): %s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return d
}

// restore.runtime: docker (issue 9): a drill of a real snapshot in a container of the local
// image passes with the same checks; a damaged heap page fails amcheck; the container is gone
// after success and failure.
func TestDrillDocker(t *testing.T) {
	cli := dockerClient(t)
	pg := harness.StartPostgres(t, harness.PostgresOptions{DataChecksums: true, PgbenchScale: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	heap := relationFile(t, ctx, pg, "pgbench_accounts")

	t.Run("passes", func(t *testing.T) {
		tg, cfg := dockerTarget(t, pg, damageChecks, harness.PostgresImage)
		removeContainersUnder(t, cli, tg.scratch)
		snapshotID(t, ctx, cfg)
		r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json")
		d := parseDockerDrill(t, r)
		if r.code != 0 || d.Status != "pass" {
			t.Fatalf("exit %d status %s (error %q), want 0/pass; checks:\n%s\nstderr: %s", r.code, d.Status, d.Error, summary(d.drillJSON), r.stderr)
		}
		if d.Runtime.Kind != "docker" || !d.Runtime.NetworkIsolated || !strings.Contains(d.Runtime.Listen, tg.scratch) {
			t.Errorf("runtime = %+v, want docker, network isolated, a socket in the scratch directory", d.Runtime)
		}
		for _, name := range []string{"recovery", "amcheck", "row-counts", "sql:account-lookup", "pg_checksums", "isolation"} {
			if c, ok := d.find(name); !ok || c.Status != "pass" {
				t.Errorf("%s = %s %q, want pass", name, c.Status, c.Message)
			}
		}
		if left := drillContainers(t, ctx, cli, tg.scratch); len(left) != 0 {
			t.Errorf("containers left after a passed drill: %v", left)
		}
		if left := leftovers(t, tg.scratch); len(left) != 0 {
			t.Errorf("scratch left behind: %v", left)
		}
	})

	t.Run("damaged heap page fails amcheck", func(t *testing.T) {
		tg, cfg := dockerTarget(t, pg, damageChecks, harness.PostgresImage)
		removeContainersUnder(t, cli, tg.scratch)
		id := snapshotID(t, ctx, cfg)
		snap := filepath.Join(tg.repo, id)
		damage(t, filepath.Join(snap, "data", heap))
		rewriteManifest(t, snap, "data/"+heap)
		r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json")
		d := parseDockerDrill(t, r)
		if r.code != 1 || d.Status != "fail" {
			t.Errorf("exit %d status %s (error %q), want 1/fail; checks:\n%s", r.code, d.Status, d.Error, summary(d.drillJSON))
		}
		for _, name := range []string{"amcheck", "pg_checksums"} {
			if c, ok := d.find(name); !ok || c.Status != "fail" {
				t.Errorf("%s = %s %q, want fail", name, c.Status, c.Message)
			}
		}
		if left := drillContainers(t, ctx, cli, tg.scratch); len(left) != 0 {
			t.Errorf("containers left after a failed drill: %v", left)
		}
	})

	t.Run("nonexistent image is exit 3 naming it", func(t *testing.T) {
		const image = "local/firedrill-no-such-image:0"
		tg, cfg := dockerTarget(t, pg, "", image)
		removeContainersUnder(t, cli, tg.scratch)
		snapshotID(t, ctx, cfg)
		r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json")
		d := parseDockerDrill(t, r)
		if r.code != 3 || d.Status != "error" || !strings.Contains(d.Error, image) {
			t.Errorf("exit %d status %s error %q, want 3/error naming %s", r.code, d.Status, d.Error, image)
		}
		if left := leftovers(t, tg.scratch); len(left) != 0 {
			t.Errorf("scratch left behind: %v", left)
		}
	})

	// From inside a kept throwaway: no TCP connection to the host's 127.0.0.1 (production's
	// port), and production's data directory and the snapshot repository are not there.
	t.Run("isolated from the host", func(t *testing.T) {
		tg, cfg := dockerTarget(t, pg, "", harness.PostgresImage)
		removeContainersUnder(t, cli, tg.scratch)
		snapshotID(t, ctx, cfg)
		r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json", "--keep")
		d := parseDockerDrill(t, r)
		if r.code != 0 || d.Kept.Connect == "" || d.Kept.Container == "" {
			t.Fatalf("exit %d status %s (error %q) kept %+v", r.code, d.Status, d.Error, d.Kept)
		}
		conn, err := pgx.Connect(ctx, d.Kept.Connect)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "CREATE TEMP TABLE probe(line text)"); err != nil {
			t.Fatal(err)
		}
		// The prober works: the same command against the throwaway's own socket answers.
		cmds := map[string]string{
			"tcp":  fmt.Sprintf("pg_isready -h 127.0.0.1 -p %d -t 3; echo rc=$?", pg.Port),
			"self": fmt.Sprintf("pg_isready -h %s -t 3; echo rc=$?", strings.TrimPrefix(d.Runtime.Listen, "unix socket ")),
		}
		out := map[string]string{}
		for name, cmd := range cmds {
			if _, err := conn.Exec(ctx, "TRUNCATE probe"); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Exec(ctx, fmt.Sprintf("COPY probe FROM PROGRAM %s", quoteLiteral(cmd))); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			rows, _ := conn.Query(ctx, "SELECT string_agg(line, ' ') FROM probe")
			lines, err := pgx.CollectRows(rows, pgx.RowTo[*string])
			if err != nil || len(lines) != 1 || lines[0] == nil {
				t.Fatalf("%s: %v %v", name, lines, err)
			}
			out[name] = *lines[0]
		}
		if !strings.Contains(out["self"], "rc=0") {
			t.Fatalf("the prober does not work from inside: %q", out["self"])
		}
		if !strings.Contains(out["tcp"], "rc=2") || strings.Contains(out["tcp"], "accepting") {
			t.Errorf("from inside the container, 127.0.0.1:%d answered: %q", pg.Port, out["tcp"])
		}
		for _, p := range []string{pg.DataDir, tg.repo, filepath.Dir(cfg)} {
			var exists bool
			if err := conn.QueryRow(ctx, "SELECT pg_stat_file($1, true) IS NOT NULL", p).Scan(&exists); err != nil {
				t.Fatal(err)
			}
			if exists {
				t.Errorf("production's %s is visible from inside the container", p)
			}
		}
		if c, ok := d.find("isolation"); !ok || c.Status != "pass" {
			t.Errorf("isolation = %s %q, want pass", c.Status, c.Message)
		}
	})
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// The container is gone after an interrupted drill (SIGINT to firedrill), and after kill -9 the
// next drill of the target removes the dead drill's container first.
func TestDrillDockerTeardown(t *testing.T) {
	cli := dockerClient(t)
	pg := harness.StartPostgres(t, harness.PostgresOptions{DataChecksums: true, PgbenchScale: 5})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			tg, cfg := dockerTarget(t, pg, damageChecks, harness.PostgresImage)
			removeContainersUnder(t, cli, tg.scratch)
			snapshotID(t, ctx, cfg)
			cmd := exec.CommandContext(ctx, binary, "drill", "--config", cfg, "--output", "json")
			out := &strings.Builder{}
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var running []string
			for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline) && len(running) == 0; time.Sleep(20 * time.Millisecond) {
				for _, c := range drillContainers(t, ctx, cli, tg.scratch) {
					if strings.Contains(c, " server ") && strings.HasSuffix(c, "(running)") {
						running = append(running, c)
					}
				}
			}
			if len(running) == 0 {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Skipf("the drill finished before its server container ran: %s", out)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			if sig != syscall.SIGKILL {
				var code int
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				}
				if code != 3 {
					t.Errorf("interrupted drill exit %d, want 3: %s", code, out)
				}
				if left := drillContainers(t, ctx, cli, tg.scratch); len(left) != 0 {
					t.Errorf("containers left after %s: %v", sig, left)
				}
				return
			}
			if left := drillContainers(t, ctx, cli, tg.scratch); len(left) == 0 {
				t.Fatalf("kill -9 left no container: nothing to prove")
			}
			r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json")
			d := parseDockerDrill(t, r)
			if r.code != 0 {
				t.Errorf("next drill exit %d status %s error %q", r.code, d.Status, d.Error)
			}
			if left := drillContainers(t, ctx, cli, tg.scratch); len(left) != 0 {
				t.Errorf("the next drill left the dead drill's container: %v", left)
			}
			if left := leftovers(t, tg.scratch); len(left) != 0 {
				t.Errorf("scratch left behind: %v", left)
			}
		})
	}
}

// `firedrill demo --runtime docker` shows the pipeline with the drill in a container; without a
// reachable Docker engine it is skipped with a clear message, exit 3, and builds nothing.
func TestDemoDocker(t *testing.T) {
	cli := dockerClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	tmp := harness.TempDir(t)
	run := func(env []string, args ...string) cliResult {
		cmd := exec.CommandContext(ctx, binary, args...)
		cmd.Env = append(append(os.Environ(), "TMPDIR="+tmp), env...)
		var so, se strings.Builder
		cmd.Stdout, cmd.Stderr = &so, &se
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return cliResult{code: code, stdout: so.String(), stderr: se.String()}
	}
	t.Run("no engine", func(t *testing.T) {
		r := run([]string{"DOCKER_HOST=unix://" + filepath.Join(tmp, "no-docker.sock")}, "demo", "--runtime", "docker", "--scale", "1")
		if r.code != 3 || !strings.Contains(r.stderr, "demo --runtime docker skipped") || !strings.Contains(r.stderr, "no Docker engine is reachable") {
			t.Errorf("exit %d, stderr %q: want 3 and a clear skip", r.code, r.stderr)
		}
		if left, _ := filepath.Glob(filepath.Join(tmp, "firedrill-demo-*")); len(left) != 0 {
			t.Errorf("a skipped demo built a sandbox: %v", left)
		}
	})
	t.Run("drill in a container", func(t *testing.T) {
		r := run(nil, "demo", "--runtime", "docker", "--image", harness.PostgresImage, "--scale", "1", "--output", "json")
		d := parseDockerDrill(t, r)
		if r.code != 0 || d.Status != "pass" || d.Runtime.Kind != "docker" {
			t.Fatalf("demo --runtime docker: exit %d status %s runtime %q error %q\n%s", r.code, d.Status, d.Runtime.Kind, d.Error, r.stderr)
		}
		if left, _ := filepath.Glob(filepath.Join(tmp, "firedrill-demo-*")); len(left) != 0 {
			t.Errorf("the demo left its sandbox behind: %v", left)
		}
		if left := drillContainers(t, ctx, cli, tmp); len(left) != 0 {
			t.Errorf("the demo left containers: %v", left)
		}
	})
}
