package checks

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// RedisFreshness reads the newest timestamp in a Redis copy from a key the application keeps
// up to date (a unix time in seconds or milliseconds, or RFC 3339): that is the data's
// recovery point, and its age at drill time is held to the RPO, as Freshness does for SQL.
type RedisFreshness struct {
	Key string
	DB  int
}

// Name implements Check: one freshness finding, whichever engine.
func (f *RedisFreshness) Name() string { return FreshnessName }

// Engines implements Check.
func (*RedisFreshness) Engines() []string { return redisOnly() }

// Run implements Check.
func (f *RedisFreshness) Run(ctx context.Context, env *Env) []Finding {
	started := time.Now()
	ev := Evidence{"key": f.Key, "db": f.DB, "rpoSeconds": env.RPO.Seconds()}
	fin := func(x Finding) []Finding { x.Seconds = time.Since(started).Seconds(); return []Finding{x} }
	if env.Redis == nil {
		return fin(Errorf(FreshnessName, ev, "no Redis client: the throwaway is not a Redis server"))
	}
	v, err := env.Redis(f.DB).Get(ctx, f.Key).Result()
	if errors.Is(err, goredis.Nil) {
		return fin(Failf(FreshnessName, ev, "key %s does not exist in database %d: the restored data has nothing to date it by", f.Key, f.DB))
	}
	if err != nil {
		return fin(Errorf(FreshnessName, ev, "could not read key %s (it must be a string holding a timestamp): %v", f.Key, err))
	}
	ev["value"] = v
	ts, err := ParseTimestamp(v)
	if err != nil {
		return fin(Failf(FreshnessName, ev, "key %s: %v", f.Key, err))
	}
	return fin(recoveryPointFinding(env, ev, ts))
}

// msThreshold tells unix milliseconds from seconds: 1e11 seconds is in the year 5138, 1e11
// milliseconds in 1973.
const msThreshold = 1e11

// ParseTimestamp reads a timestamp as applications store one in Redis: unix seconds (with an
// optional fraction), unix milliseconds, or RFC 3339.
func ParseTimestamp(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n >= msThreshold || n <= -msThreshold {
			return time.UnixMilli(n), nil
		}
		return time.Unix(n, 0), nil
	}
	if x, err := strconv.ParseFloat(s, 64); err == nil && x > 0 && x < msThreshold {
		sec := int64(x)
		return time.Unix(sec, int64((x-float64(sec))*1e9)).Round(time.Microsecond), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("value %q is not a timestamp (unix seconds or milliseconds, or RFC 3339)", s)
}
