package demo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// redisDemo is a production Redis on a unix socket in the sandbox: users in database 0, a
// leaderboard and sessions in database 1, and a last-write timestamp key.
type redisDemo struct {
	srv    *server
	dir    string
	socket string
	users  int
}

// redisLastWrite is the key the load stamps with the time of its last write (unix ms): the
// freshness check reads it from the restored copy.
const redisLastWrite = "demo:last_write"

func startRedisDemo(ctx context.Context, s *Sandbox, status func(string)) (production, error) {
	bin, err := findServer("redis-server", "apt-get install redis-server")
	if err != nil {
		return nil, err
	}
	d := &redisDemo{dir: filepath.Join(s.Dir, "production"), users: s.opts.Scale * 10000}
	d.socket = filepath.Join(d.dir, "redis.sock")
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return nil, fmt.Errorf("while creating %s: %w", d.dir, err)
	}
	status("starting the production Redis (unix socket, no TCP port)")
	d.srv, err = startServer("redis-server", []string{bin,
		"--port", "0", "--unixsocket", d.socket, "--unixsocketperm", "700",
		"--dir", d.dir, "--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--logfile", ""}, filepath.Join(d.dir, "redis.log"), false)
	if err != nil {
		return nil, err
	}
	if err := d.srv.waitReady(ctx, 20*time.Second, d.ping); err != nil {
		_ = d.srv.stop()
		return nil, err
	}
	status(fmt.Sprintf("loading %d users, a leaderboard and sessions", d.users))
	c0, c1 := d.client(0), d.client(1)
	defer c0.Close()
	defer c1.Close()
	for start := 0; start < d.users; start += 1000 {
		pipe := c0.Pipeline()
		for i := start; i < min(start+1000, d.users); i++ {
			pipe.HSet(ctx, "user:"+strconv.Itoa(i), "name", "user "+strconv.Itoa(i), "balance", i%977)
		}
		pipe.Set(ctx, redisLastWrite, time.Now().UnixMilli(), 0)
		if _, err := pipe.Exec(ctx); err != nil {
			_ = d.srv.stop()
			return nil, fmt.Errorf("while loading the demo users: %w", err)
		}
	}
	pipe := c1.Pipeline()
	for i := range 500 {
		pipe.ZAdd(ctx, "leaderboard", goredis.Z{Score: float64(i * 7 % 1000), Member: "user:" + strconv.Itoa(i)})
		pipe.Set(ctx, "session:"+strconv.Itoa(i), "token", 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		_ = d.srv.stop()
		return nil, fmt.Errorf("while loading the demo leaderboard: %w", err)
	}
	return d, nil
}

func (d *redisDemo) client(db int) *goredis.Client {
	return goredis.NewClient(&goredis.Options{Network: "unix", Addr: d.socket, DB: db, MaxRetries: -1})
}

func (d *redisDemo) ping(ctx context.Context) error {
	c := d.client(0)
	defer c.Close()
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return c.Ping(pctx).Err()
}

// load updates balances, adds users and stamps the last-write key until ctx is done.
func (d *redisDemo) load(ctx context.Context) {
	c := d.client(0)
	defer c.Close()
	for i := 0; ctx.Err() == nil; i++ {
		pipe := c.Pipeline()
		pipe.HIncrBy(ctx, "user:"+strconv.Itoa(i%d.users), "balance", 1)
		pipe.HSet(ctx, "user:"+strconv.Itoa(d.users+i), "name", "new user", "balance", 0)
		pipe.Set(ctx, redisLastWrite, time.Now().UnixMilli(), 0)
		_, _ = pipe.Exec(ctx)
		time.Sleep(2 * time.Millisecond)
	}
}

func (d *redisDemo) config(s *Sandbox) string {
	return fmt.Sprintf(`    engine: redis
    connection:
      dsn: %q
%s    checks:
      keys:
        min: {"0": %d, "1": 500}
        sample: 200
      redis:
        - name: leaderboard-complete
          db: 1
          command: [ZCARD, leaderboard]
          expect: {equals: "500"}
        - name: user-readable
          command: [HGET, "user:42", name]
          expect: {equals: "user 42"}
      freshness:
        key: %s
`, "unix://"+d.socket, s.localSections(d.dir), d.users, redisLastWrite)
}

func (d *redisDemo) stop() error     { return d.srv.stop() }
func (d *redisDemo) daemon() *server { return d.srv }
