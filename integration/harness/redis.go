package harness

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Redis is a private redis-server for one test, on 127.0.0.1 with its own working directory
// (where BGSAVE writes dump.rdb), stopped by t.Cleanup.
type Redis struct {
	// Addr is host:port on 127.0.0.1, as github.com/redis/go-redis/v9 wants it.
	Addr string
	Port int
	// Dir is the server's working directory: dump.rdb and appendonly files land here.
	Dir string
	// Version is the server's version, such as 7.0.15.
	Version string
}

// RedisOption changes how StartRedis starts the server.
type RedisOption func(*redisOptions)

type redisOptions struct {
	args []string
}

// WithRedisArgs adds server options as redis-server takes them on its command line, such as
// "--appendonly", "yes"; later options win.
func WithRedisArgs(args ...string) RedisOption {
	return func(o *redisOptions) { o.args = append(o.args, args...) }
}

const redisHow = "run 'make setup' as root, or apt-get install -y --no-install-recommends redis-server"

// StartRedis starts a private Redis server and returns when it answers PING (well under a
// second). Automatic snapshots are off (--save ""); BGSAVE and SAVE still work. It calls
// Missing when redis-server is not installed.
func StartRedis(t testing.TB, opts ...RedisOption) *Redis {
	t.Helper()
	var o redisOptions
	for _, opt := range opts {
		opt(&o)
	}
	server, err := findBinary("redis-server")
	if err != nil {
		Missing(t, "Redis", "redis-server not found", redisHow)
	}
	r := &Redis{Port: FreePort(t), Dir: t.TempDir()}
	r.Addr = "127.0.0.1:" + strconv.Itoa(r.Port)
	if out, err := commandOutput(server, "--version"); err == nil {
		// "Redis server v=7.0.15 sha=..."
		for _, f := range strings.Fields(out) {
			if v, ok := strings.CutPrefix(f, "v="); ok {
				r.Version = v
			}
		}
	}

	args := slices.Concat([]string{
		"--port", strconv.Itoa(r.Port),
		"--bind", "127.0.0.1",
		"--dir", r.Dir,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--logfile", "", // stdout, which startDaemon sends to the log file
	}, o.args)
	d := startDaemon(t, "redis-server", exec.Command(server, args...), filepath.Join(r.Dir, "redis.log"), 10*time.Second)
	d.waitReady(t, 10*time.Second, func() error { return redisPing(r.Addr) })
	logComponent(t, "redis", r.Version, "started on "+r.Addr)
	return r
}

// redisPing sends PING in the inline protocol and expects +PONG, so the harness needs no client.
func redisPing(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}
