package redis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/engine"
)

// Attribute keys recorded with a snapshot.
const (
	AttrServerVersion = "serverVersion"
	AttrLastSave      = "lastSave"
	AttrRDBFile       = "rdbFile"
	AttrDir           = "dir"
	AttrBGSaveSeconds = "bgsaveSeconds"
	// The key counts at BGSAVE time are checks.RecordedKeys ("keys", "keys.db0",
	// "expires.db0", "keysDrift.db0"): the keys check reads them.
)

var (
	// ErrSaveFailed means the server reported the background save failed.
	ErrSaveFailed = errors.New("background save failed")
	// ErrSaveTimeout means the background save did not finish within the wait.
	ErrSaveTimeout = errors.New("background save did not finish in time")
)

// Client is what the freezer uses of a go-redis client (*redis.Client satisfies it).
type Client interface {
	LastSave(ctx context.Context) *goredis.IntCmd
	BgSave(ctx context.Context) *goredis.StatusCmd
	Info(ctx context.Context, section ...string) *goredis.StringCmd
	ConfigGet(ctx context.Context, parameter string) *goredis.MapStringStringCmd
}

// Options configures a Freezer.
type Options struct {
	// MaxWait bounds the wait for the background save (default 60 s).
	MaxWait time.Duration
	// Poll is the first poll interval; it grows to 200 ms.
	Poll  time.Duration
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Freezer makes the server write a fresh RDB file. Redis never stops writes for it: the RDB
// holds the data as of the fork, which happens when BGSAVE is accepted.
type Freezer struct {
	c    Client
	opts Options

	info       map[string]string
	frozen     bool
	startedAt  time.Time
	forkedAt   time.Time
	finishedAt time.Time
	lastSave   int64
	// keyspace is INFO keyspace read just before the accepted BGSAVE, drift how much each
	// database's key count moved between that read and one just after BGSAVE returned.
	keyspace map[int]checks.KeyspaceDB
	drift    map[int]int64
}

var _ engine.Freezer = (*Freezer)(nil)

// New returns a freezer on c; the caller keeps ownership of c.
func New(c Client, opts Options) *Freezer {
	if opts.MaxWait <= 0 {
		opts.MaxWait = 60 * time.Second
	}
	if opts.Poll <= 0 {
		opts.Poll = 10 * time.Millisecond
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = sleepCtx
	}
	return &Freezer{c: c, opts: opts, info: map[string]string{}}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ServerInfo reads the version, the working directory and the RDB file name. CONFIG may be
// renamed away on managed servers: then dir and rdbFile are left out.
func (f *Freezer) ServerInfo(ctx context.Context) (map[string]string, error) {
	info, err := f.persistence(ctx, "server")
	if err != nil {
		return nil, err
	}
	f.info[AttrServerVersion] = info["redis_version"]
	for param, attr := range map[string]string{"dir": AttrDir, "dbfilename": AttrRDBFile} {
		if m, err := f.c.ConfigGet(ctx, param).Result(); err == nil && m[param] != "" {
			f.info[attr] = m[param]
		}
	}
	out := make(map[string]string, len(f.info))
	for k, v := range f.info {
		out[k] = v
	}
	return out, nil
}

// persistence reads an INFO section as key/value pairs.
func (f *Freezer) persistence(ctx context.Context, section string) (map[string]string, error) {
	s, err := f.c.Info(ctx, section).Result()
	if err != nil {
		return nil, fmt.Errorf("while reading INFO %s: %w", section, err)
	}
	return ParseInfo(s), nil
}

// ParseInfo parses INFO output ("key:value" lines, "#" section headers).
func ParseInfo(s string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = v
		}
	}
	return out
}

// Freeze runs BGSAVE and returns when that save has completed successfully.
func (f *Freezer) Freeze(ctx context.Context) error {
	if len(f.info) == 0 {
		if _, err := f.ServerInfo(ctx); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeoutCause(ctx, f.opts.MaxWait, ErrSaveTimeout)
	defer cancel()
	f.startedAt = f.opts.Now()
	// A save already running forked before we were asked: it may miss the latest writes.
	// Let it finish, then start ours.
	for {
		before, err := f.c.LastSave(ctx).Result()
		if err != nil {
			return f.waitErr(ctx, fmt.Errorf("while reading LASTSAVE: %w", err))
		}
		p, err := f.persistence(ctx, "persistence")
		if err != nil {
			return f.waitErr(ctx, err)
		}
		savesBefore, haveCounter := atoi(p["rdb_saves"])
		if !haveCounter && f.opts.Now().Unix() <= before {
			// LASTSAVE has one-second resolution: a save finishing in the second of the
			// previous one would look like no save. Start ours in the next second.
			if err := f.opts.Sleep(ctx, time.Until(time.Unix(before+1, 0))+time.Millisecond); err != nil {
				return f.waitErr(ctx, err)
			}
		}
		if p["rdb_bgsave_in_progress"] == "1" {
			if _, err := f.waitSave(ctx, before, savesBefore, haveCounter, true); err != nil {
				return err
			}
			continue
		}
		// The key counts are read on either side of BGSAVE, which forks before it replies.
		// Writes go on around it (BGSAVE cannot run inside MULTI: there it is only scheduled),
		// so the count at the fork is known within the drift between the two reads.
		ksBefore, err := f.keyspaceNow(ctx)
		if err != nil {
			return f.waitErr(ctx, err)
		}
		forkedAt := f.opts.Now()
		if err := f.c.BgSave(ctx).Err(); err != nil {
			if strings.Contains(err.Error(), "already in progress") {
				continue
			}
			return f.waitErr(ctx, fmt.Errorf("while starting BGSAVE: %w", err))
		}
		f.forkedAt = forkedAt
		ksAfter, err := f.keyspaceNow(ctx)
		if err != nil {
			return f.waitErr(ctx, err)
		}
		f.keyspace, f.drift = ksBefore, checks.KeyspaceDrift(ksBefore, ksAfter)
		last, err := f.waitSave(ctx, before, savesBefore, haveCounter, false)
		if err != nil {
			return err
		}
		f.lastSave = last
		f.finishedAt = f.opts.Now()
		f.frozen = true
		return nil
	}
}

// waitSave polls until the save started after (before, savesBefore) has ended. With anyEnd it
// only waits for the running save to end, whatever its outcome.
func (f *Freezer) waitSave(ctx context.Context, before, savesBefore int64, haveCounter, anyEnd bool) (int64, error) {
	poll := f.opts.Poll
	for {
		p, err := f.persistence(ctx, "persistence")
		if err != nil {
			return 0, f.waitErr(ctx, err)
		}
		if p["rdb_bgsave_in_progress"] == "0" {
			if anyEnd {
				return 0, nil
			}
			last, err := f.c.LastSave(ctx).Result()
			if err != nil {
				return 0, f.waitErr(ctx, fmt.Errorf("while reading LASTSAVE: %w", err))
			}
			if st := p["rdb_last_bgsave_status"]; st != "ok" {
				return 0, fmt.Errorf("%w: rdb_last_bgsave_status is %q (see the server's log; a full disk or an unwritable dir is common)", ErrSaveFailed, st)
			}
			saves, _ := atoi(p["rdb_saves"])
			if last > before || (haveCounter && saves > savesBefore) {
				return last, nil
			}
			// Not finished from our point of view yet: INFO can lag the fork by a moment.
		}
		if err := f.opts.Sleep(ctx, poll); err != nil {
			return 0, f.waitErr(ctx, err)
		}
		poll = min(poll*2, 200*time.Millisecond)
	}
}

func (f *Freezer) waitErr(ctx context.Context, err error) error {
	if c := context.Cause(ctx); errors.Is(c, ErrSaveTimeout) {
		return fmt.Errorf("while waiting for BGSAVE: %w (waited %s; raise snapshot.maxFreeze for a large dataset)", ErrSaveTimeout, f.opts.MaxWait)
	}
	return err
}

// keyspaceNow reads the per-database key counts (INFO keyspace).
func (f *Freezer) keyspaceNow(ctx context.Context) (map[int]checks.KeyspaceDB, error) {
	s, err := f.c.Info(ctx, "keyspace").Result()
	if err != nil {
		return nil, fmt.Errorf("while reading INFO keyspace: %w", err)
	}
	return checks.ParseKeyspace(s), nil
}

func atoi(s string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return n, err == nil
}

// Thaw returns what the save recorded. Redis was never frozen: the window is the fork.
func (f *Freezer) Thaw(context.Context) (*engine.Frozen, error) {
	if !f.frozen {
		return nil, errors.New("while finishing the Redis snapshot: no save was taken")
	}
	f.frozen = false
	attrs := map[string]string{
		AttrLastSave:      strconv.FormatInt(f.lastSave, 10),
		AttrBGSaveSeconds: strconv.FormatFloat(f.finishedAt.Sub(f.forkedAt).Seconds(), 'f', 3, 64),
	}
	for k, v := range f.info {
		attrs[k] = v
	}
	checks.RecordKeyspace(attrs, f.keyspace, f.drift)
	return &engine.Frozen{StartedAt: f.forkedAt, EndedAt: f.forkedAt, Attributes: attrs}, nil
}

// Close has nothing to release: BGSAVE holds no lock.
func (f *Freezer) Close(context.Context) error {
	f.frozen = false
	return nil
}
