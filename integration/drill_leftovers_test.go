package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/firedrill/firedrill/integration/harness"
)

// leftoverJSON is a cleanedUp / keptThrowaways / gc entry.
type leftoverJSON struct {
	ScratchDir string     `json:"scratchDir"`
	DrillID    string     `json:"drillId"`
	Target     string     `json:"target"`
	StartedAt  *time.Time `json:"startedAt"`
	Bytes      int64      `json:"bytes"`
	Kept       bool       `json:"kept"`
	State      string     `json:"state"`
	Action     string     `json:"action"`
	Stopped    []string   `json:"stopped"`
	Recorded   bool       `json:"recorded"`
	Error      string     `json:"error"`
}

type drillLeftoversJSON struct {
	ID             string         `json:"id"`
	Status         string         `json:"status"`
	Error          string         `json:"error"`
	CleanedUp      []leftoverJSON `json:"cleanedUp"`
	KeptThrowaways []leftoverJSON `json:"keptThrowaways"`
	Kept           *struct {
		ScratchDir string `json:"scratchDir"`
		PID        int    `json:"pid"`
		Connect    string `json:"connect"`
	} `json:"kept"`
}

type gcJSON struct {
	Leftovers    []leftoverJSON `json:"leftovers"`
	Removed      int            `json:"removed"`
	RemovedBytes int64          `json:"removedBytes"`
	Failed       int            `json:"failed"`
}

func decode[T any](t *testing.T, r cliResult) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("output is not JSON (%v), exit %d:\nstdout: %s\nstderr: %s", err, r.code, r.stdout, r.stderr)
	}
	return v
}

// historyRecord is a drill result as the history keeps it.
type historyRecord struct {
	ID          string    `json:"id"`
	Status      string    `json:"status"`
	Interrupted bool      `json:"interrupted"`
	Error       string    `json:"error"`
	StartedAt   time.Time `json:"startedAt"`
}

func readHistory(t *testing.T, dir string) map[string]historyRecord {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "orders", "*.json"))
	out := map[string]historyRecord{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var r historyRecord
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[r.ID] = r
	}
	return out
}

// drillDirs lists the drills' scratch directories in root.
func drillDirs(root string) []string {
	m, _ := filepath.Glob(filepath.Join(root, "firedrill-drill-orders-*"))
	var out []string
	for _, p := range m {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			out = append(out, p)
		}
	}
	return out
}

// shmSegment is a SysV shared memory segment of the host's IPC namespace.
type shmSegment struct {
	key, id, cpid, nattch int64
}

// shmCreatedBy lists the host's segments that one of pids created.
func shmCreatedBy(t *testing.T, pids []int) []shmSegment {
	t.Helper()
	f, err := os.Open("/proc/sysvipc/shm")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []shmSegment
	sc := bufio.NewScanner(f)
	sc.Scan() // header: key shmid perms size cpid lpid nattch ...
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 7 {
			continue
		}
		n := func(i int) int64 { v, _ := strconv.ParseInt(fs[i], 10, 64); return v }
		s := shmSegment{key: n(0), id: n(1), cpid: n(4), nattch: n(6)}
		if slices.Contains(pids, int(s.cpid)) {
			out = append(out, s)
		}
	}
	return out
}

func shmExists(t *testing.T, id int64) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/sysvipc/shm")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n")[1:] {
		if fs := strings.Fields(l); len(fs) > 1 && fs[1] == strconv.FormatInt(id, 10) {
			return true
		}
	}
	return false
}

func pidsOf(procs []string) []int {
	var out []int
	for _, p := range procs {
		if n, err := strconv.Atoi(strings.SplitN(p, ":", 2)[0]); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// killDrillIn starts a drill, waits until reached says it is in the phase to kill it in, and
// kills it with SIGKILL. It returns the scratch directory the drill left, or skips when the
// drill finished first.
func killDrillIn(t *testing.T, ctx context.Context, cfg, scratch string, reached func(dir string) bool, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, binary, append([]string{"drill", "--config", cfg, "--output", "json"}, args...)...)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var dir string
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline) && dir == ""; time.Sleep(5 * time.Millisecond) {
		for _, d := range drillDirs(scratch) {
			if reached(d) {
				dir = d
			}
		}
	}
	if dir == "" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Skipf("the drill finished before the phase to kill it in (output: %s)", out)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	return dir
}

// kill -9 of a drill (issue 8, item 2): the scratch copy of production data stays behind (and,
// where the server ran outside a PID/IPC namespace, the server and its shared memory); the next
// drill of the target removes it all, says so, and records the killed drill as interrupted.
func TestKilledDrillIsCleanedUpByTheNextDrill(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{DataChecksums: true, PgbenchScale: 5})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cases := []struct {
		name    string
		reached func(dir string) bool
	}{
		{"killed while cloning", func(d string) bool { return globAny(d, "clone/data/base") }},
		{"killed while the server runs", func(d string) bool {
			return sizeAbove(d, "server.log", 0) && globAny(d, "clone/data/postmaster.pid")
		}},
	}
	tg, cfg := newTarget(t, pg, "")
	snapshotID(t, ctx, cfg)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := killDrillIn(t, ctx, cfg, tg.scratch, tc.reached)
			id := dir[strings.LastIndexByte(dir, '-')+1:]
			procs := processesUnder(dir)
			shm := shmCreatedBy(t, pidsOf(procs))
			t.Logf("left by the killed drill %s: %s, processes %v, shared memory %v", id, dir, procs, shm)
			if _, err := os.Stat(filepath.Join(dir, "clone")); err != nil {
				t.Fatalf("the killed drill left no scratch copy (%v): the test would prove nothing", err)
			}
			if _, err := os.Stat(filepath.Join(tg.scratch, ".firedrill-drill-orders-"+id+".lock")); err != nil {
				t.Errorf("the killed drill's lock file is gone: %v", err)
			}

			r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json")
			d := decode[drillLeftoversJSON](t, r)
			if r.code != 0 || d.Status != "pass" {
				t.Fatalf("next drill: exit %d status %s error %q\n%s", r.code, d.Status, d.Error, r.stderr)
			}
			if len(d.CleanedUp) != 1 {
				t.Fatalf("cleanedUp = %+v, want the killed drill's directory", d.CleanedUp)
			}
			c := d.CleanedUp[0]
			if c.ScratchDir != dir || c.DrillID != id || c.Action != "removed" || c.State != "dead" || c.StartedAt == nil || c.Bytes <= 0 {
				t.Errorf("cleanedUp[0] = %+v, want %s of drill %s removed, with its start and size", c, dir, id)
			}
			if !strings.Contains(r.stderr, "removed a dead drill's leftover") || !strings.Contains(r.stderr, dir) {
				t.Errorf("the next drill did not say what it removed:\n%s", r.stderr)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("%s still exists after the next drill: %v", dir, err)
			}
			if left := leftovers(t, tg.scratch); len(left) != 0 {
				t.Errorf("left in the scratch root after the next drill: %v", left)
			}
			if p := processesUnder(dir); len(p) != 0 {
				t.Errorf("processes still running on the killed drill's copy: %v", p)
			}
			for _, s := range shm {
				if shmExists(t, s.id) {
					t.Errorf("shared memory segment %d (key %d) of the killed drill's server is still there", s.id, s.key)
				}
			}
			if s := shmCreatedBy(t, pidsOf(procs)); len(s) != 0 {
				t.Errorf("shared memory created by the killed drill's processes remains: %v", s)
			}
			h := readHistory(t, tg.history)
			rec, ok := h[id]
			if !ok || !rec.Interrupted || rec.Status != "error" || !c.StartedAt.Equal(rec.StartedAt) || !strings.Contains(rec.Error, "interrupted") {
				t.Errorf("history record of the killed drill = %+v (found %v), want status error, interrupted, its start time", rec, ok)
			}
			if next, ok := h[d.ID]; !ok || next.Status != "pass" || next.Interrupted {
				t.Errorf("history record of the next drill = %+v (found %v)", next, ok)
			}
		})
	}
}

// A drill interrupted by SIGTERM records itself as interrupted.
func TestTerminatedDrillRecordsInterrupted(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{DataChecksums: true, PgbenchScale: 5})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tg, cfg := newTarget(t, pg, "")
	snapshotID(t, ctx, cfg)
	cmd := exec.CommandContext(ctx, binary, "drill", "--config", cfg, "--output", "json")
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var dir string
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline) && dir == ""; time.Sleep(5 * time.Millisecond) {
		for _, d := range drillDirs(tg.scratch) {
			if globAny(d, "clone/data/base") {
				dir = d
			}
		}
	}
	if dir == "" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Skip("the drill finished before it could be interrupted")
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	var d historyRecord
	if err := json.Unmarshal([]byte(out.String()), &d); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	if !d.Interrupted || d.Status != "error" {
		t.Errorf("result = %+v, want interrupted, status error", d)
	}
	if rec, ok := readHistory(t, tg.history)[d.ID]; !ok || !rec.Interrupted {
		t.Errorf("history record = %+v (found %v), want interrupted", rec, ok)
	}
	if left := leftovers(t, tg.scratch); len(left) != 0 {
		t.Errorf("left in the scratch root: %v", left)
	}
}

// A kept throwaway (drill --keep) is left alone, and listed, by the next drill and by gc; gc
// removes a dead drill's leftover and, with --include-kept, stops and removes the kept one.
func TestGCAndKeptThrowaways(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{DataChecksums: true, PgbenchScale: 5})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	tg, cfg := newTarget(t, pg, "")
	snapshotID(t, ctx, cfg)

	r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json", "--keep")
	k := decode[drillLeftoversJSON](t, r)
	if r.code != 0 || k.Kept == nil || k.Kept.PID == 0 {
		t.Fatalf("drill --keep: exit %d, kept %+v\n%s", r.code, k.Kept, r.stderr)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-k.Kept.PID, syscall.SIGKILL)
		_ = os.RemoveAll(k.Kept.ScratchDir)
	})
	keptAlive := func() bool {
		conn, err := pgx.Connect(ctx, k.Kept.Connect)
		if err != nil {
			return false
		}
		defer conn.Close(ctx)
		var n int
		return conn.QueryRow(ctx, "SELECT 1").Scan(&n) == nil
	}
	if !keptAlive() {
		t.Fatal("the kept throwaway does not answer")
	}

	// The next drill leaves it alone and lists it.
	r = runCLI(t, ctx, "drill", "--config", cfg, "--output", "json")
	d := decode[drillLeftoversJSON](t, r)
	if r.code != 0 || d.Status != "pass" || len(d.CleanedUp) != 0 {
		t.Fatalf("drill beside a kept throwaway: exit %d status %s cleanedUp %+v\n%s", r.code, d.Status, d.CleanedUp, r.stderr)
	}
	if len(d.KeptThrowaways) != 1 || d.KeptThrowaways[0].ScratchDir != k.Kept.ScratchDir || d.KeptThrowaways[0].Action != "left" {
		t.Errorf("keptThrowaways = %+v, want %s left alone", d.KeptThrowaways, k.Kept.ScratchDir)
	}
	if !keptAlive() {
		t.Fatal("a drill stopped the kept throwaway")
	}

	// A dead drill's leftover, for gc.
	dead := killDrillIn(t, ctx, cfg, tg.scratch, func(d string) bool { return d != k.Kept.ScratchDir && globAny(d, "clone/data/base") })
	deadID := dead[strings.LastIndexByte(dead, '-')+1:]

	r = runCLI(t, ctx, "gc", "--config", cfg, "--output", "json")
	g := decode[gcJSON](t, r)
	if r.code != 0 || g.Removed != 1 || g.Failed != 0 || g.RemovedBytes <= 0 {
		t.Fatalf("gc: exit %d %+v\n%s", r.code, g, r.stderr)
	}
	byDir := map[string]leftoverJSON{}
	for _, lo := range g.Leftovers {
		byDir[lo.ScratchDir] = lo
	}
	if lo := byDir[dead]; lo.Action != "removed" || lo.State != "dead" || lo.DrillID != deadID || !lo.Recorded {
		t.Errorf("gc entry of the dead drill = %+v, want removed and recorded", lo)
	}
	if lo := byDir[k.Kept.ScratchDir]; lo.Action != "left" || lo.State != "kept" || lo.Recorded {
		t.Errorf("gc entry of the kept throwaway = %+v, want left alone, not recorded as interrupted", lo)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("gc left %s: %v", dead, err)
	}
	if !keptAlive() {
		t.Fatal("gc without --include-kept stopped the kept throwaway")
	}
	if rec, ok := readHistory(t, tg.history)[deadID]; !ok || !rec.Interrupted {
		t.Errorf("history record of the dead drill = %+v (found %v), want interrupted", rec, ok)
	}

	// The table says the same.
	r = runCLI(t, ctx, "gc", "--config", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, "KEPT") || !strings.Contains(r.stdout, "LEFT") {
		t.Errorf("gc table: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	r = runCLI(t, ctx, "gc", "--config", cfg, "--target", "orders", "--include-kept", "--output", "json")
	g = decode[gcJSON](t, r)
	if r.code != 0 || g.Removed != 1 || len(g.Leftovers) != 1 || g.Leftovers[0].ScratchDir != k.Kept.ScratchDir || g.Leftovers[0].Action != "removed" {
		t.Fatalf("gc --include-kept: exit %d %+v\n%s", r.code, g, r.stderr)
	}
	if keptAlive() {
		t.Errorf("the kept throwaway still answers after gc --include-kept")
	}
	if p := processesUnder(k.Kept.ScratchDir); len(p) != 0 {
		t.Errorf("processes still running on the kept copy: %v", p)
	}
	if left := leftovers(t, tg.scratch); len(left) != 0 {
		t.Errorf("left in the scratch root: %v", left)
	}
	if _, ok := readHistory(t, tg.history)[k.ID]; !ok {
		t.Errorf("the kept drill's own record is missing")
	}
	if r := runCLI(t, ctx, "gc", "--config", cfg, "--target", "nope"); r.code != 2 {
		t.Errorf("gc --target nope: exit %d, want 2", r.code)
	}
}

// A leftover gc cannot remove is a row saying why, and exit 3; the next gc finishes the job.
func TestGCExit3WhenSomethingCannotBeRemoved(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{PgbenchScale: 5})
	if os.Geteuid() != 0 {
		t.Skip("making a file immutable (chattr +i) needs root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tg, cfg := newTarget(t, pg, "")
	snapshotID(t, ctx, cfg)
	dead := killDrillIn(t, ctx, cfg, tg.scratch, func(d string) bool { return globAny(d, "clone/data/base") })
	stuck := filepath.Join(dead, "stuck")
	if err := os.WriteFile(stuck, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chattr", "+i", stuck).CombinedOutput(); err != nil {
		t.Skipf("chattr +i does not work here: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("chattr", "-i", stuck).Run() })
	r := runCLI(t, ctx, "gc", "--config", cfg, "--output", "json")
	g := decode[gcJSON](t, r)
	if r.code != 3 || g.Failed != 1 || len(g.Leftovers) != 1 || g.Leftovers[0].Action != "failed" || g.Leftovers[0].Error == "" {
		t.Fatalf("gc with an immutable file: exit %d %+v, want 3 and a failed row saying why", r.code, g)
	}
	if out, err := exec.Command("chattr", "-i", stuck).CombinedOutput(); err != nil {
		t.Fatalf("chattr -i: %v %s", err, out)
	}
	r = runCLI(t, ctx, "gc", "--config", cfg, "--output", "json")
	if g = decode[gcJSON](t, r); r.code != 0 || g.Removed != 1 {
		t.Errorf("second gc: exit %d %+v", r.code, g)
	}
	if left := leftovers(t, tg.scratch); len(left) != 0 {
		t.Errorf("left in the scratch root: %v", left)
	}
	recs := readHistory(t, tg.history)
	if n := len(recs); n != 1 {
		t.Errorf("history has %d records, want the dead drill's only, once: %+v", n, recs)
	}
}

// A --keep drill killed while its server runs: the server outlives firedrill (as a kept one
// must), so the next drill leaves it alone but lists it and records the killed drill as
// interrupted; gc --include-kept stops the server and removes the copy.
func TestKilledKeptDrill(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{DataChecksums: true, PgbenchScale: 5})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	tg, cfg := newTarget(t, pg, "")
	snapshotID(t, ctx, cfg)
	dir := killDrillIn(t, ctx, cfg, tg.scratch, func(d string) bool {
		return sizeAbove(d, "server.log", 0) && globAny(d, "clone/data/postmaster.pid")
	}, "--keep")
	id := dir[strings.LastIndexByte(dir, '-')+1:]
	t.Cleanup(func() {
		for _, pid := range pidsOf(processesUnder(dir)) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	// The server is still running after firedrill was killed.
	var procs []string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if procs = processesUnder(dir); len(procs) > 0 {
			break
		}
	}
	if len(procs) == 0 {
		t.Fatalf("no process runs on the killed --keep drill's copy %s: the test would prove nothing", dir)
	}
	shm := shmCreatedBy(t, pidsOf(procs))
	t.Logf("left by the killed --keep drill %s: processes %v, host shared memory %v", id, procs, shm)

	r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json")
	d := decode[drillLeftoversJSON](t, r)
	if r.code != 0 || d.Status != "pass" || len(d.CleanedUp) != 0 {
		t.Fatalf("next drill: exit %d status %s cleanedUp %+v\n%s", r.code, d.Status, d.CleanedUp, r.stderr)
	}
	if len(d.KeptThrowaways) != 1 || d.KeptThrowaways[0].ScratchDir != dir || d.KeptThrowaways[0].State != "kept" || !d.KeptThrowaways[0].Recorded {
		t.Errorf("keptThrowaways = %+v, want %s left alone, its killed drill recorded", d.KeptThrowaways, dir)
	}
	if len(processesUnder(dir)) == 0 {
		t.Errorf("the next drill stopped the kept server")
	}
	if rec, ok := readHistory(t, tg.history)[id]; !ok || !rec.Interrupted || rec.Status != "error" {
		t.Errorf("history record of the killed --keep drill = %+v (found %v), want interrupted", rec, ok)
	}

	r = runCLI(t, ctx, "gc", "--config", cfg, "--include-kept", "--output", "json")
	g := decode[gcJSON](t, r)
	if r.code != 0 || g.Removed != 1 || len(g.Leftovers) != 1 || g.Leftovers[0].Recorded || len(g.Leftovers[0].Stopped) == 0 {
		t.Fatalf("gc --include-kept: exit %d %+v (want the kept copy removed, its server stopped, not recorded twice)\n%s", r.code, g, r.stderr)
	}
	if p := processesUnder(dir); len(p) != 0 {
		t.Errorf("processes still running on the killed --keep drill's copy: %v", p)
	}
	for _, s := range shm {
		if shmExists(t, s.id) {
			t.Errorf("shared memory segment %d (key %d) is still there", s.id, s.key)
		}
	}
	if left := leftovers(t, tg.scratch); len(left) != 0 {
		t.Errorf("left in the scratch root: %v", left)
	}
	if n := len(readHistory(t, tg.history)); n != 2 {
		t.Errorf("history has %d records, want 2 (the killed drill once, the next drill)", n)
	}
}
