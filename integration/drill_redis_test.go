package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/integration/harness"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/drill"
	_ "github.com/firedrill/firedrill/restore/drill/builtin" // the redis engine drill
	"github.com/firedrill/firedrill/restore/runtime/docker"
	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/snapshot/local"
	"github.com/firedrill/firedrill/restore/snapshot/take"
)

// redisFixture is a Redis server with a dataset of every type in two logical databases, some
// keys with a time to live, and a local snapshot repository.
type redisFixture struct {
	r    *harness.Redis
	c    *goredis.Client
	repo *local.Repository
}

const redisFixtureKeys = 5000

func startRedisFixture(t *testing.T) *redisFixture {
	t.Helper()
	harness.Integration(t)
	r := harness.StartRedis(t)
	c := goredis.NewClient(&goredis.Options{Addr: r.Addr})
	t.Cleanup(func() { c.Close() })
	ctx := t.Context()
	p := c.Pipeline()
	for i := range redisFixtureKeys {
		k := "k:" + strconv.Itoa(i)
		switch i % 5 {
		case 0:
			p.Set(ctx, k, strings.Repeat("v", i%200), 0)
		case 1:
			p.HSet(ctx, k, "a", i, "b", "x")
		case 2:
			p.RPush(ctx, k, 1, 2, 3)
		case 3:
			p.SAdd(ctx, k, "x", "y")
		case 4:
			p.ZAdd(ctx, k, goredis.Z{Score: float64(i), Member: "m"})
		}
		if i%10 == 0 {
			p.Expire(ctx, k, time.Hour)
		}
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	c1 := goredis.NewClient(&goredis.Options{Addr: r.Addr, DB: 1})
	defer c1.Close()
	for i := range 100 {
		if err := c1.Set(ctx, "other:"+strconv.Itoa(i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	return &redisFixture{r: r, c: c, repo: local.New(filepath.Join(harness.TempDir(t), "repo"), 2)}
}

// snapshot takes a snapshot of the fixture; with load, writes (sets, deletes, the freshness
// key) go on during it. It returns the snapshot and how many writes ran during it.
func (f *redisFixture) snapshot(t *testing.T, load bool) (*snapshot.Metadata, int64) {
	t.Helper()
	ctx := t.Context()
	var writes atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if load {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := goredis.NewClient(&goredis.Options{Addr: f.r.Addr})
			defer w.Close()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := w.Pipeline()
				p.Set(ctx, "load:"+strconv.Itoa(i), i, 0)
				if i%2 == 0 {
					p.Del(ctx, "load:"+strconv.Itoa(i/2)) // churn, and the count grows by one key in two
				}
				p.Set(ctx, "last-write", time.Now().UnixMilli(), 0)
				if _, err := p.Exec(ctx); err != nil {
					return
				}
				writes.Add(3)
			}
		}()
		time.Sleep(200 * time.Millisecond)
	} else if err := f.c.Set(ctx, "last-write", time.Now().UnixMilli(), 0).Err(); err != nil {
		t.Fatal(err)
	}
	before := writes.Load()
	meta, err := take.Take(ctx, take.Options{Target: "sessions", Engine: "redis", Mode: "online",
		DSN: "redis://" + f.r.Addr + "/0", DataDir: f.r.Dir, Repository: f.repo, MaxFreeze: 30 * time.Second})
	during := writes.Load() - before
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	t.Logf("snapshot %s: %d bytes, BGSAVE %ss, recorded keys %s (db0 %s, expires %s, drift %s), %d writes during it",
		meta.ID, meta.SizeBytes, meta.Attributes["bgsaveSeconds"], meta.Attributes[checks.RecordedKeys],
		meta.Attributes["keys.db0"], meta.Attributes["expires.db0"], meta.Attributes["keysDrift.db0"], during)
	return meta, during
}

func redisDrillOptions(t *testing.T, scratch string, cfg checks.Config) drill.Options {
	return drill.Options{Target: "sessions", Engine: "redis", Driver: "local", RTO: 10 * time.Minute, RPO: time.Hour,
		Checks:  cfg,
		Runtime: drill.RuntimeOptions{ScratchDir: scratch, IsolateNetwork: true, StartTimeout: time.Minute}}
}

func redisChecks() checks.Config {
	off := false
	return checks.Config{
		Amcheck: checks.AmcheckOn(false), Checksums: &off, RowCounts: &checks.RowCountConfig{Enabled: &off}, Parallel: 1,
		Keys: &checks.KeysConfig{Min: map[string]int64{"0": redisFixtureKeys - redisFixtureKeys/10, "1": 100}, Sample: 200},
		Redis: []checks.RedisAssertion{
			{Name: "hash-field", Command: []string{"HGET", "k:1", "b"}, Expect: checks.Expect{Equals: ptr("x")}},
			{Name: "other-db", DB: 1, Command: []string{"DBSIZE"}, Expect: checks.Expect{Min: ptr(100.0), Max: ptr(100.0)}},
		},
		Freshness: &checks.FreshnessConfig{Key: "last-write"},
	}
}

func logRedisResult(t *testing.T, res *reports.DrillResult) {
	t.Helper()
	for _, f := range res.Checks {
		t.Logf("%-16s %-5s %s", f.Check, f.Status, f.Message)
	}
	for _, n := range res.Notes {
		t.Logf("note: %s", n)
	}
	for _, p := range res.Phases {
		t.Logf("phase %-22s %.3fs", p.Name, p.Seconds)
	}
}

func findingOf(res *reports.DrillResult, name string) *checks.Finding {
	for i := range res.Checks {
		if res.Checks[i].Check == name {
			return &res.Checks[i]
		}
	}
	return nil
}

// TestDrillRedis drills real Redis snapshots end to end: a snapshot under write load drills
// clean; a minimum above the data fails the keys check; a cancelled drill leaves neither
// scratch directory nor redis-server behind; fewer keys than recorded at the save, or an RDB
// of another save, fail; a truncated RDB fails redis-check-rdb.
func TestDrillRedis(t *testing.T) {
	f := startRedisFixture(t)
	meta, _ := f.snapshot(t, true)

	t.Run("under load drills clean", func(t *testing.T) {
		scratch := harness.TempDir(t)
		d := &drill.Drill{Source: drill.Repository(f.repo)}
		o := redisDrillOptions(t, scratch, redisChecks())
		// Production's directory is masked in the sandbox, and probed from inside.
		o.Runtime.ProductionPaths = []string{f.r.Dir}
		res, err := d.Run(t.Context(), o)
		if err != nil {
			t.Fatal(err)
		}
		logRedisResult(t, res)
		if res.Status != reports.StatusPass {
			t.Fatalf("drill status %s (%s), want pass", res.Status, res.Error)
		}
		for _, name := range []string{"snapshot-integrity", "redis-check-rdb", drill.RecoveryName, "isolation", checks.KeysName, "redis:hash-field", "redis:other-db", checks.FreshnessName, drill.RTOName} {
			if fd := findingOf(res, name); fd == nil || fd.Status != checks.Pass {
				t.Errorf("finding %s = %+v, want pass", name, fd)
			}
		}
		if res.RecoveryPointSource != "freshness" {
			t.Errorf("recovery point from %q, want freshness", res.RecoveryPointSource)
		}
		if k := findingOf(res, checks.KeysName); k != nil {
			t.Logf("keys evidence: keys %v, databases %s", k.Evidence["keys"], redisJSON(k.Evidence["databases"]))
		}
		if res.Runtime == nil || !res.Runtime.NetworkIsolated {
			t.Errorf("runtime %+v: want an isolated network", res.Runtime)
		}
		assertNoLeftovers(t, scratch)
	})

	t.Run("keys below the minimum fail", func(t *testing.T) {
		scratch := harness.TempDir(t)
		cfg := redisChecks()
		cfg.Keys.Min = map[string]int64{"0": 1_000_000}
		d := &drill.Drill{Source: drill.Repository(f.repo)}
		res, err := d.Run(t.Context(), redisDrillOptions(t, scratch, cfg))
		if err != nil {
			t.Fatal(err)
		}
		logRedisResult(t, res)
		k := findingOf(res, checks.KeysName)
		if res.Status != reports.StatusFail || k == nil || k.Status != checks.Fail || !strings.Contains(k.Message, "expected at least 1000000") {
			t.Fatalf("status %s, keys %+v: want fail on the minimum", res.Status, k)
		}
		assertNoLeftovers(t, scratch)
	})

	t.Run("cancelled drill leaves nothing", func(t *testing.T) {
		// While redis-server starts (it is started, then waited for), and once it runs.
		for _, at := range []string{"starting redis-server", "check:keys"} {
			t.Run(at, func(t *testing.T) {
				scratch := harness.TempDir(t)
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				d := &drill.Drill{Source: drill.Repository(f.repo), Progress: cancelAt{at: at, cancel: cancel}}
				res, err := d.Run(ctx, redisDrillOptions(t, scratch, redisChecks()))
				if err != nil {
					t.Fatal(err)
				}
				logRedisResult(t, res)
				if !res.Interrupted || res.Status != reports.StatusError {
					t.Errorf("status %s interrupted %v (%s): want an interrupted error", res.Status, res.Interrupted, res.Error)
				}
				assertNoLeftovers(t, scratch)
			})
		}
	})

	// What the snapshot recorded holds the copy to: an RDB with fewer keys than production
	// had at the save, or one written by another save, fails (the snapshot's attributes are
	// edited to stand for a production that differed).
	t.Run("recorded facts", func(t *testing.T) {
		other, _ := f.snapshot(t, false)
		metaFile := filepath.Join(f.repo.Path(other.ID), "meta.json")
		orig, err := os.ReadFile(metaFile)
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			name, attr string
			add        int64
			check      string
			want       string
		}{
			{"keys lost since the save fail", "keys.db0", 10000, checks.KeysName, "without a time to live were recorded at BGSAVE time"},
			{"another save's RDB fails recovery", "lastSave", 3600, drill.RecoveryName, "it is not the file this save wrote"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				var m map[string]any
				if err := json.Unmarshal(orig, &m); err != nil {
					t.Fatal(err)
				}
				attrs := m["attributes"].(map[string]any)
				n, _ := strconv.ParseInt(attrs[tt.attr].(string), 10, 64)
				attrs[tt.attr] = strconv.FormatInt(n+tt.add, 10)
				b, _ := json.Marshal(m)
				if err := os.WriteFile(metaFile, b, 0o644); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = os.WriteFile(metaFile, orig, 0o644) })
				scratch := harness.TempDir(t)
				o := redisDrillOptions(t, scratch, redisChecks())
				o.SnapshotID = other.ID
				res, err := (&drill.Drill{Source: drill.Repository(f.repo)}).Run(t.Context(), o)
				if err != nil {
					t.Fatal(err)
				}
				logRedisResult(t, res)
				fd := findingOf(res, tt.check)
				if res.Status != reports.StatusFail || fd == nil || fd.Status != checks.Fail || !strings.Contains(fd.Message, tt.want) {
					t.Fatalf("status %s, %s %+v: want it failed with %q", res.Status, tt.check, fd, tt.want)
				}
				assertNoLeftovers(t, scratch)
			})
		}
	})

	// Last: it damages the snapshot in the repository.
	t.Run("truncated RDB fails redis-check-rdb", func(t *testing.T) {
		rdb := filepath.Join(f.repo.Path(meta.ID), "data", "dump.rdb")
		fi, err := os.Stat(rdb)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(rdb, fi.Size()/2); err != nil {
			t.Fatal(err)
		}
		scratch := harness.TempDir(t)
		d := &drill.Drill{Source: drill.Repository(f.repo)}
		o := redisDrillOptions(t, scratch, redisChecks())
		o.SnapshotID = meta.ID
		res, err := d.Run(t.Context(), o)
		if err != nil {
			t.Fatal(err)
		}
		logRedisResult(t, res)
		c := findingOf(res, "redis-check-rdb")
		if res.Status != reports.StatusFail || c == nil || c.Status != checks.Fail {
			t.Fatalf("status %s, redis-check-rdb %+v: want fail", res.Status, c)
		}
		if findingOf(res, drill.RecoveryName) != nil {
			t.Errorf("a copy redis-check-rdb refused was started")
		}
		t.Logf("redis-check-rdb evidence: %s", redisJSON(c.Evidence["output"]))
		assertNoLeftovers(t, scratch)
	})
}

// TestDrillRedisDocker drills a Redis snapshot with the throwaway in a container of the
// engines image (Debian's redis-server): the same checks pass, and no container is left.
func TestDrillRedisDocker(t *testing.T) {
	harness.Integration(t)
	harness.RequireDocker(t, harness.EnginesImage)
	f := startRedisFixture(t)
	f.snapshot(t, false)
	scratch := harness.TempDir(t)
	o := redisDrillOptions(t, scratch, redisChecks())
	o.Runtime.Kind = docker.Name
	o.Runtime.Docker.Image = harness.EnginesImage
	o.Runtime.ProductionPaths = []string{f.r.Dir}
	d := &drill.Drill{Source: drill.Repository(f.repo), Runtimes: map[string]drill.RuntimeFactory{docker.Name: docker.Factory}}
	res, err := d.Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	logRedisResult(t, res)
	if res.Status != reports.StatusPass {
		t.Fatalf("drill status %s (%s), want pass", res.Status, res.Error)
	}
	for _, name := range []string{"redis-check-rdb", drill.RecoveryName, "isolation", checks.KeysName, checks.FreshnessName} {
		if fd := findingOf(res, name); fd == nil || fd.Status != checks.Pass {
			t.Errorf("finding %s = %+v, want pass", name, fd)
		}
	}
	if res.Runtime == nil || res.Runtime.Kind != docker.Name {
		t.Errorf("runtime %+v, want docker", res.Runtime)
	}
	// The checker ran where the server ran, in a container of the image, not on the host.
	if fd := findingOf(res, "redis-check-rdb"); fd == nil || fd.Evidence["tool"] != "/usr/local/bin/redis-check-rdb" {
		t.Errorf("redis-check-rdb %+v: want the image's tool", fd)
	}
	assertNoLeftovers(t, scratch)
	if left := drillContainers(t, t.Context(), dockerClient(t), scratch); len(left) > 0 {
		t.Errorf("containers left: %v", left)
	}
}

// cancelAt cancels the drill when it enters a phase, or says a status, starting with at.
type cancelAt struct {
	at     string
	cancel context.CancelFunc
}

func (c cancelAt) Phase(name string) {
	if strings.HasPrefix(name, c.at) {
		c.cancel()
	}
}

func (c cancelAt) Status(msg string) {
	if strings.HasPrefix(msg, c.at) {
		c.cancel()
	}
}

// assertNoLeftovers checks the drill removed its scratch directory and left no process whose
// command line names the scratch root (redis-server --dir, --unixsocket).
func assertNoLeftovers(t *testing.T, scratchRoot string) {
	t.Helper()
	entries, _ := os.ReadDir(scratchRoot)
	for _, e := range entries {
		if e.IsDir() {
			t.Errorf("scratch directory %s left behind", filepath.Join(scratchRoot, e.Name()))
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		procs := processesUnder(scratchRoot)
		if len(procs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("processes left running on %s: %v", scratchRoot, procs)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func redisJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
