package redis

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	enginered "github.com/firedrill/firedrill/restore/engine/redis"
	"github.com/firedrill/firedrill/restore/snapshot"
)

// Server is a throwaway redis-server on a copy: the runtime's process plus what Redis needs
// to be waited for, judged and checked.
type Server struct {
	drill.Process
	// sock is the unix socket in the scratch directory; empty when the runtime's process is
	// reached over TCP (reach: a pod), at addr once it runs.
	sock   string
	reach  drill.Reachable
	addr   string
	binDir string
	data   dataFiles
	check  fileCheck
	meta   *snapshot.Metadata

	mu      sync.Mutex
	clients map[int]*goredis.Client
}

var _ drill.Server = (*Server)(nil)

func newServer(p drill.Process, sock, server string, data dataFiles, fc fileCheck, meta *snapshot.Metadata) *Server {
	if meta == nil {
		meta = &snapshot.Metadata{}
	}
	return &Server{Process: p, sock: sock, binDir: filepath.Dir(server), data: data, check: fc, meta: meta, clients: map[int]*goredis.Client{}}
}

// client returns the client of logical database db over the unix socket, made on first use;
// Stop closes them.
func (s *Server) client(db int) *goredis.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.clients[db]; ok {
		return c
	}
	network, addr := "unix", s.sock
	if s.sock == "" {
		network, addr = "tcp", s.addr
	}
	c := goredis.NewClient(&goredis.Options{
		Network: network, Addr: addr, DB: db,
		// RESP2 and no CLIENT SETINFO: nothing on connect that a loading server refuses.
		Protocol: 2, DisableIdentity: true,
		PoolSize: 4, MaxRetries: -1,
		DialTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
	})
	s.clients[db] = c
	return c
}

func (s *Server) closeClients() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for db, c := range s.clients {
		_ = c.Close()
		delete(s.clients, db)
	}
}

// Stop closes the clients, then stops the server (SIGTERM: with --save "" it exits without
// writing to the copy).
func (s *Server) Stop(grace time.Duration) (bool, error) {
	s.closeClients()
	return s.Process.Stop(grace)
}

// Remove closes the clients (a server that exited on its own is never stopped), then removes
// what the runtime made.
func (s *Server) Remove() error {
	s.closeClients()
	return s.Process.Remove()
}

// Kept says how to reach a server left running by --keep.
func (s *Server) Kept() *reports.Kept {
	k := s.Process.Kept()
	if s.sock != "" {
		k.Connect = "redis-cli -s " + s.sock
	} else if k.Connect != "" {
		k.Connect += ", then redis-cli -p <local port>"
	}
	return k
}

// WaitReady waits until the server answers over its socket and has loaded the copy
// (INFO persistence loading:0). A server that exits first returns its log's reason.
func (s *Server) WaitReady(ctx context.Context, status func(string)) error {
	if s.sock == "" && s.addr == "" {
		addr, err := s.reach.Addr(ctx, status)
		if errors.Is(err, postgres.ErrServerExited) {
			return fmt.Errorf("redis-server exited before it had loaded the copy: %s (%w)", loadFailure(s.LogEvidence(200)), err)
		}
		if err != nil {
			return err
		}
		s.addr = addr
	}
	c := s.client(0)
	poll := 10 * time.Millisecond
	for {
		select {
		case <-s.Exited():
			return fmt.Errorf("redis-server exited before it had loaded the copy: %s", loadFailure(s.LogEvidence(200)))
		default:
		}
		p, err := c.Info(ctx, "persistence").Result()
		switch {
		case err == nil:
			info := enginered.ParseInfo(p)
			if info["loading"] == "0" {
				return nil
			}
			status(fmt.Sprintf("redis-server is loading the copy (%s%%)", info["loading_loaded_perc"]))
		case strings.HasPrefix(err.Error(), "LOADING"):
			status("redis-server is loading the copy")
		default:
			status("waiting for redis-server to accept connections on " + s.where())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("while waiting for redis-server to load the copy: %w", context.Cause(ctx))
		case <-s.Exited():
		case <-time.After(poll):
		}
		poll = min(poll*2, 100*time.Millisecond)
	}
}

// loadFailures are what redis-server logs when it cannot load an RDB or AOF.
var loadFailures = []string{
	"Short read", "Wrong RDB checksum", "Bad file format", "Unrecoverable error", "Internal error in RDB",
	"Can't handle RDB format", "Unexpected EOF", "Fatal error",
}

// loadFailure is the log line saying why the copy could not be loaded, else the last line.
func loadFailure(lines []string) string {
	for _, l := range lines {
		for _, f := range loadFailures {
			if strings.Contains(l, f) {
				return strings.TrimSpace(l)
			}
		}
	}
	if len(lines) > 0 {
		return strings.TrimSpace(lines[len(lines)-1])
	}
	return "no log output"
}

// loadedLine is the log line saying the copy was loaded: the last "DB loaded from" (an AOF
// logs one per file, then one for the whole), else "Done loading RDB".
func loadedLine(lines []string) string {
	for _, marker := range []string{"DB loaded from", "Done loading RDB"} {
		for i := len(lines) - 1; i >= 0; i-- {
			if strings.Contains(lines[i], marker) {
				return strings.TrimSpace(lines[i])
			}
		}
	}
	return ""
}

// Recovered implements drill.Server: the server says it loaded the copy, with no load error
// in its log, and the RDB is the one this snapshot's BGSAVE wrote (its ctime falls in the
// save, by the production server's clock).
func (s *Server) Recovered(ctx context.Context) checks.Finding {
	logLines := s.LogEvidence(200)
	ev := checks.Evidence{"serverLog": tail(logLines, 15)}
	if s.data.rdb != "" {
		ev["rdbFile"] = s.data.rdb
	} else {
		ev["aof"] = s.data.aof
	}
	c := s.client(0)
	raw, err := c.Info(ctx, "server", "persistence", "keyspace").Result()
	if err != nil {
		return checks.Errorf(drill.RecoveryName, ev, "loaded, but INFO failed: %v", err)
	}
	info := enginered.ParseInfo(raw)
	ev["redisVersion"] = info["redis_version"]
	var keys int64
	for _, k := range checks.ParseKeyspace(raw) {
		keys += k.Keys
	}
	ev["keys"] = keys
	loadedKeys := int64(-1)
	if n, err := strconv.ParseInt(info["rdb_last_load_keys_loaded"], 10, 64); err == nil {
		ev["keysLoaded"] = n
		loadedKeys = n
	}
	if n, err := strconv.ParseInt(info["rdb_last_load_keys_expired"], 10, 64); err == nil {
		ev["keysExpiredOnLoad"] = n
	}
	if v := s.meta.Attributes[enginered.AttrServerVersion]; v != "" {
		ev["snapshotServerVersion"] = v
	}
	loaded := loadedLine(logLines)
	ev["loaded"] = loaded
	for _, l := range logLines {
		for _, f := range loadFailures {
			if strings.Contains(l, f) {
				return checks.Failf(drill.RecoveryName, ev, "redis-server reports the copy damaged: %s", strings.TrimSpace(l))
			}
		}
	}
	if loaded == "" && s.sock == "" && s.data.rdb != "" && s.check.keysRead >= 0 && loadedKeys >= 0 && !logRead(logLines) {
		// No log to read (a pod's, without pods/log): the server's own count of the keys it
		// loaded at start against redis-check-rdb's count of the RDB's.
		expired, _ := strconv.ParseInt(info["rdb_last_load_keys_expired"], 10, 64)
		if loadedKeys+expired == s.check.keysRead {
			loaded = fmt.Sprintf("INFO: %d keys loaded and %d expired at load, as %s read %d in the file", loadedKeys, expired, CheckRDBName, s.check.keysRead)
			ev["loaded"] = loaded
		}
	}
	if loaded == "" {
		return checks.Failf(drill.RecoveryName, ev, "redis-server runs but its log does not say it loaded the copy: it may have started empty")
	}
	if msg, ok := s.sameSave(ev); !ok {
		return checks.Failf(drill.RecoveryName, ev, "%s", msg)
	}
	return checks.Passf(drill.RecoveryName, ev, "redis-server %s loaded the copy (%d keys) and accepts connections", info["redis_version"], keys)
}

// sameSave checks the RDB's ctime (when the save started, in the forked child) against the
// snapshot's LASTSAVE (when it ended, in the parent): one server clock, one-second
// resolution. A stale RDB left in the directory by an earlier save dates from before.
func (s *Server) sameSave(ev checks.Evidence) (string, bool) {
	if s.data.rdb == "" {
		return "", true
	}
	ctime, err1 := strconv.ParseInt(s.check.aux["ctime"], 10, 64)
	last, err2 := strconv.ParseInt(s.meta.Attributes[enginered.AttrLastSave], 10, 64)
	if err1 != nil || err2 != nil {
		return "", true // nothing recorded to compare
	}
	secs, _ := strconv.ParseFloat(s.meta.Attributes[enginered.AttrBGSaveSeconds], 64)
	earliest := last - int64(secs) - 2
	ev["rdbCtime"], ev["snapshotLastSave"] = ctime, last
	if ctime < earliest || ctime > last {
		return fmt.Sprintf("the RDB was written at %s, but this snapshot's BGSAVE ran from about %s to %s: it is not the file this save wrote",
			time.Unix(ctime, 0).UTC().Format(time.RFC3339), time.Unix(earliest, 0).UTC().Format(time.RFC3339), time.Unix(last, 0).UTC().Format(time.RFC3339)), false
	}
	return "", true
}

// CheckEnv implements drill.Server: the checks reach the throwaway's logical databases over
// its socket, and run Redis's tools in a sandbox like the server's.
func (s *Server) CheckEnv(env *checks.Env) {
	env.Redis = s.client
	env.BinDir = s.binDir
	env.DataDir = s.data.dir
	env.Exec = func(ctx context.Context, name string, args ...string) ([]byte, int, error) {
		return s.Exec(ctx, filepath.Join(s.binDir, name), args...)
	}
}

// where names where the server listens, for status lines.
func (s *Server) where() string {
	if s.sock != "" {
		return s.sock
	}
	return s.addr
}

// logRead is false when the runtime could not read the server's log (its one line says why).
func logRead(lines []string) bool {
	return !(len(lines) == 1 && strings.HasPrefix(lines[0], "(no log"))
}
