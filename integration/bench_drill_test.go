package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/firedrill/firedrill/integration/harness"
	"github.com/firedrill/firedrill/restore/engine/postgres"
)

// BenchmarkDrill measures firedrill side by side with doing the same work by hand with
// PostgreSQL's own tools, on one pgbench dataset it builds (scale FIREDRILL_BENCH_SCALE,
// default 70: about 2 GB with checksums; `make bench BENCH=Drill SCALE=350` for about 5 GB),
// page cache warm, medians of FIREDRILL_BENCH_RUNS runs (default 3) after one unmeasured run,
// each run after a sync and with what the previous one made removed untimed:
//
//   - online backup, idle and under pgbench load: `firedrill snapshot` vs
//     `pg_basebackup -Xs -c fast`;
//   - verify a backup: `firedrill drill` (clone with the manifest verified, start, amcheck,
//     row counts, teardown with pg_checksums) vs `cp -a` + `pg_ctl start` +
//     `pg_amcheck -j2 --heapallindexed --all` + `pg_ctl stop` + `pg_checksums --check`.
//
// It prints the table (both columns and the ratio), the drill's per-phase profile, and
// firedrill's peak RSS: the high-water mark of the firedrill process itself (VmHWM) and
// /usr/bin/time -v's maximum resident set size, which also covers the children firedrill
// waits for (the throwaway's sandbox and PostgreSQL under it). No figure is asserted.
func BenchmarkDrill(b *testing.B) {
	scale := envInt("FIREDRILL_BENCH_SCALE", 70)
	runs := envInt("FIREDRILL_BENCH_RUNS", 3)
	jobs := envInt("FIREDRILL_BENCH_JOBS", 2)
	ctx := context.Background()
	started := time.Now()
	pg := harness.StartPostgres(b, harness.PostgresOptions{DataChecksums: true, PgbenchScale: scale,
		Settings: map[string]string{"shared_buffers": "256MB", "max_wal_size": "2GB", "max_parallel_workers_per_gather": "0"}})
	runAs, err := postgres.ResolveRunAs("")
	if err != nil {
		b.Fatal(err)
	}
	base := harness.TempDir(b)
	tg := target{pg: pg, repo: filepath.Join(base, "repo"), scratch: filepath.Join(base, "scratch"), history: filepath.Join(base, "history"),
		extra: fmt.Sprintf("    checks:\n      parallel: %d\n      rowCounts: {}\n", jobs)}
	hand := filepath.Join(base, "hand") // the by-hand pipeline's files, owned by the server's user
	for _, d := range []string{tg.scratch, hand} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	if err := runAs.Chown(hand); err != nil {
		b.Fatal(err)
	}
	cfg := writeConfig(b, tg)
	size := dirSize(b, pg.DataDir)
	b.Logf("dataset: pgbench scale %d, data directory %d MB, ready in %s; %d runs, %d jobs", scale, size>>20, time.Since(started).Round(time.Second), runs, jobs)

	tool := func(name string) string { return filepath.Join(pg.BinDir, name) }
	asServer := func(name string, args ...string) func() error {
		return func() error {
			cmd := exec.Command(tool(name), args...)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: runAs.Credential()}
			cmd.Dir = hand
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("%s: %w\n%s", name, err, out)
			}
			return nil
		}
	}
	conn := []string{"-h", pg.SocketDir, "-p", strconv.Itoa(pg.Port), "-U", pg.Superuser}
	backup := filepath.Join(hand, "backup")
	removeBackup := func() { _ = os.RemoveAll(backup) }
	basebackup := func() error {
		return asServer("pg_basebackup", append(slices.Clone(conn), "-D", backup, "-Xs", "-c", "fast")...)()
	}
	var lastSnapshot string
	snapshot := func() (proc, error) {
		p, err := runMeasured(ctx, binary, "snapshot", "--config", cfg, "--target", "orders", "--output", "json")
		if err != nil {
			return p, err
		}
		var m struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(p.stdout, &m); err != nil || m.ID == "" {
			return p, fmt.Errorf("snapshot output %q: %v", p.stdout, err)
		}
		// Keep only the newest snapshot: the drill takes it, and the disk holds the rest.
		if lastSnapshot != "" {
			_ = os.RemoveAll(filepath.Join(tg.repo, lastSnapshot))
		}
		lastSnapshot = m.ID
		return p, nil
	}

	type row struct {
		work, firedrillCmd, handCmd string
		fd, byHand                  []time.Duration
	}
	var rows []*row
	median := func(d []time.Duration) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[len(s)/2]
	}
	var peakSelf, peakTree int64
	note := func(p proc) {
		peakSelf, peakTree = max(peakSelf, p.hwmKB), max(peakTree, p.maxRSSKB)
	}
	// settle writes back what the previous run left dirty, so that no run pays for another's
	// writes (the page cache stays warm).
	settle := func() {
		if out, err := exec.Command("sync").CombinedOutput(); err != nil {
			b.Fatalf("sync: %v %s", err, out)
		}
	}
	// warm reads a run's inputs into the page cache: this VM pages out cold page cache
	// (DAMON), so whichever command ran first would otherwise pay for reading from disk.
	warm := func(dirs ...string) {
		for _, d := range dirs {
			if err := warmDir(d); err != nil {
				b.Fatalf("while warming %s: %v", d, err)
			}
		}
	}
	measure := func(r *row, fd func() (proc, error), fdInputs []string, byHand func() error, handInputs []string, reset func()) {
		for i := 0; i <= runs; i++ {
			settle()
			warm(fdInputs...)
			p, err := fd()
			if err != nil {
				b.Fatalf("%s (firedrill): %v", r.work, err)
			}
			note(p)
			reset()
			settle()
			warm(handInputs...)
			t0 := time.Now()
			if err := byHand(); err != nil {
				b.Fatalf("%s (by hand): %v", r.work, err)
			}
			if i == 0 {
				continue // warms the page cache
			}
			r.fd, r.byHand = append(r.fd, p.wall), append(r.byHand, time.Since(t0))
		}
		rows = append(rows, r)
	}

	// Online backup, idle.
	data := []string{pg.DataDir}
	measure(&row{work: "online backup (idle)", firedrillCmd: "firedrill snapshot", handCmd: "pg_basebackup -Xs -c fast"}, snapshot, data, basebackup, data, removeBackup)

	// Online backup under pgbench load: the load runs through both columns' runs.
	load := pg.PgbenchCmd(ctx, "-c", "2", "-j", "2", "-T", "3600", "-n")
	if err := load.Start(); err != nil {
		b.Fatal(err)
	}
	measure(&row{work: "online backup (pgbench -c2 load)", firedrillCmd: "firedrill snapshot", handCmd: "pg_basebackup -Xs -c fast"}, snapshot, data, basebackup, data, removeBackup)
	_ = load.Process.Signal(syscall.SIGINT)
	_ = load.Wait()

	// Verify a backup: the newest snapshot (taken after the load stopped, so both columns
	// verify the same data) against the by-hand pipeline on the newest base backup.
	if _, err := snapshot(); err != nil {
		b.Fatal(err)
	}
	removeBackup()
	if err := basebackup(); err != nil {
		b.Fatal(err)
	}
	// drillWith runs a drill with a configuration and collects its phases.
	drillWith := func(cfg string, phases map[string][]float64) func() (proc, error) {
		return func() (proc, error) {
			p, err := runMeasured(ctx, binary, "drill", "--config", cfg, "--target", "orders", "--output", "json")
			if err != nil {
				return p, err
			}
			var d struct {
				Status string `json:"status"`
				Phases []struct {
					Name    string  `json:"name"`
					Seconds float64 `json:"seconds"`
				} `json:"phases"`
			}
			if err := json.Unmarshal(p.stdout, &d); err != nil || d.Status != "pass" {
				return p, fmt.Errorf("drill status %q (%v):\n%s", d.Status, err, p.stdout)
			}
			for _, ph := range d.Phases {
				phases[ph.Name] = append(phases[ph.Name], ph.Seconds)
			}
			return p, nil
		}
	}
	phases, incPhases := map[string][]float64{}, map[string][]float64{}
	drill := drillWith(cfg, phases)
	copyDir := filepath.Join(hand, "copy")
	sock := filepath.Join(hand, "sock")
	if err := os.MkdirAll(sock, 0o700); err != nil {
		b.Fatal(err)
	}
	if err := runAs.Chown(sock); err != nil {
		b.Fatal(err)
	}
	port := strconv.Itoa(harness.FreePort(b))
	removeCopy := func() { _ = os.RemoveAll(copyDir) }
	byHandVerify := func() error {
		cp := exec.Command("cp", "-a", backup, copyDir)
		if out, err := cp.CombinedOutput(); err != nil {
			return fmt.Errorf("cp -a: %v\n%s", err, out)
		}
		opts := fmt.Sprintf("-c port=%s -c unix_socket_directories=%s -c listen_addresses= -c shared_buffers=256MB -c max_parallel_workers_per_gather=0", port, sock)
		for _, step := range []func() error{
			asServer("pg_ctl", "start", "-w", "-s", "-D", copyDir, "-l", filepath.Join(hand, "copy.log"), "-o", opts),
			asServer("pg_amcheck", "-h", sock, "-p", port, "-U", pg.Superuser, "-j", strconv.Itoa(jobs), "--heapallindexed", "--install-missing", "--all"),
			asServer("pg_ctl", "stop", "-w", "-s", "-m", "fast", "-D", copyDir),
			asServer("pg_checksums", "--check", "-D", copyDir),
		} {
			if err := step(); err != nil {
				_ = asServer("pg_ctl", "stop", "-w", "-s", "-m", "immediate", "-D", copyDir)()
				return err
			}
		}
		return nil
	}
	measure(&row{work: "verify a backup", firedrillCmd: "firedrill drill", handCmd: "cp -a + start + pg_amcheck -j2 --heapallindexed --install-missing --all + stop + pg_checksums --check"}, drill, []string{tg.repo}, byHandVerify, []string{backup}, removeCopy)
	removeCopy()

	// Incremental verification: a first drill in incremental mode runs in full and makes the
	// newest snapshot the target's baseline. pgbench then runs as many transactions as 1% of
	// the accounts, a snapshot is taken, and an incremental drill is set against a full one.
	incTarget := tg
	incTarget.extra += "      amcheck:\n        mode: incremental\n"
	cfgInc := writeConfig(b, incTarget)
	if _, err := drillWith(cfgInc, map[string][]float64{})(); err != nil {
		b.Fatalf("baseline drill: %v", err)
	}
	txns := scale * 100000 / 100 / 2
	if err := pg.PgbenchCmd(ctx, "-n", "-c", "2", "-j", "2", "-t", strconv.Itoa(txns)).Run(); err != nil {
		b.Fatalf("pgbench -t %d: %v", txns, err)
	}
	if _, err := snapshot(); err != nil {
		b.Fatal(err)
	}
	fullPhases := map[string][]float64{}
	fullDrill := drillWith(cfg, fullPhases)
	measure(&row{work: fmt.Sprintf("verify after pgbench ran %d transactions (1%% of the accounts)", 2*txns), firedrillCmd: "firedrill drill (checks.amcheck.mode: incremental)", handCmd: "firedrill drill (full)"},
		drillWith(cfgInc, incPhases), []string{tg.repo}, func() error { _, err := fullDrill(); return err }, []string{tg.repo}, func() {})

	var out strings.Builder
	fmt.Fprintf(&out, "\nBenchmarkDrill: pgbench scale %d, data directory %d MB, medians of %d runs, page cache warm\n\n", scale, size>>20, runs)
	fmt.Fprintf(&out, "| work | firedrill | by hand | ratio |\n|---|---|---|---|\n")
	for _, r := range rows {
		fd, bh := median(r.fd), median(r.byHand)
		fmt.Fprintf(&out, "| %s | `%s` %.2f s | `%s` %.2f s | %.2f |\n", r.work, r.firedrillCmd, fd.Seconds(), r.handCmd, bh.Seconds(), fd.Seconds()/bh.Seconds())
		b.ReportMetric(fd.Seconds()/bh.Seconds(), "ratio-"+strings.NewReplacer(" ", "-", "(", "", ")", "").Replace(r.work))
	}
	profile := func(title string, phases map[string][]float64) {
		fmt.Fprintf(&out, "\n%s, per phase (median seconds):", title)
		names := make([]string, 0, len(phases))
		for n := range phases {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			s := slices.Clone(phases[n])
			slices.Sort(s)
			fmt.Fprintf(&out, " %s %.2f;", n, s[len(s)/2])
		}
	}
	profile("firedrill drill", phases)
	profile("firedrill drill, incremental after pgbench", incPhases)
	profile("firedrill drill, full after pgbench", fullPhases)
	fmt.Fprintf(&out, "\n(check phases marked concurrent in the drill result ran side by side)")
	fmt.Fprintf(&out, "\npeak RSS: firedrill process %d MB (VmHWM); /usr/bin/time -v maximum resident set size %d MB (firedrill and the children it waited for)\n", peakSelf>>10, peakTree>>10)
	fmt.Print(out.String())
	b.ReportMetric(float64(peakSelf)/1024, "peak-MB")
}

// warmDir reads every regular file under dir (into the page cache).
func warmDir(dir string) error {
	buf := make([]byte, 1<<20)
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.CopyBuffer(io.Discard, f, buf)
		return err
	})
}

// proc is one measured run of the firedrill binary.
type proc struct {
	wall     time.Duration
	stdout   []byte
	hwmKB    int64 // the process's own VmHWM, last seen before it exited
	maxRSSKB int64 // /usr/bin/time -v: the largest of it and the children it waited for
}

var maxRSSRe = regexp.MustCompile(`Maximum resident set size \(kbytes\): (\d+)`)

// runMeasured runs the binary under /usr/bin/time -v, polling the firedrill process's VmHWM.
func runMeasured(ctx context.Context, bin string, args ...string) (proc, error) {
	stderr, err := os.CreateTemp("", "firedrill-bench-")
	if err != nil {
		return proc{}, err
	}
	defer os.Remove(stderr.Name())
	defer stderr.Close()
	cmd := exec.CommandContext(ctx, "/usr/bin/time", append([]string{"-v", bin}, args...)...)
	var stdout strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return proc{}, err
	}
	done := make(chan struct{})
	hwm := make(chan int64, 1)
	go func() {
		var last int64
		defer func() { hwm <- last }()
		child := 0
		for {
			if child == 0 {
				child = firstChild(cmd.Process.Pid)
			}
			if child != 0 {
				if v := vmHWM(child); v > last {
					last = v
				}
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	err = cmd.Wait()
	p := proc{wall: time.Since(t0), stdout: []byte(stdout.String())}
	close(done)
	p.hwmKB = <-hwm
	errOut, _ := os.ReadFile(stderr.Name())
	if m := maxRSSRe.FindSubmatch(errOut); m != nil {
		p.maxRSSKB, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	if err != nil {
		return p, fmt.Errorf("firedrill %v: %w\n%s", args, err, lastLinesOf(string(errOut), 30))
	}
	return p, nil
}

// firstChild is the first child of pid (the binary /usr/bin/time started); 0 if none yet.
func firstChild(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(f[0])
	return n
}

// vmHWM is a process's peak resident set size in kB; 0 once it is gone.
func vmHWM(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func lastLinesOf(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// dirSize is the bytes of the regular files under dir.
func dirSize(t testing.TB, dir string) int64 {
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
