package checks

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// RedisPrefix starts the finding name of a Redis command assertion: "redis:sessions-present".
const RedisPrefix = "redis:"

func init() {
	Register("redis", 31, func(c Config) []Check {
		var out []Check
		for _, a := range c.Redis {
			out = append(out, &RedisCommand{Assertion: a})
		}
		return out
	})
}

// RedisCommand runs a command assertion on a Redis copy: its reply must meet Expect.
type RedisCommand struct {
	Assertion RedisAssertion
}

// Name implements Check.
func (r *RedisCommand) Name() string { return RedisPrefix + r.Assertion.Name }

// Engines implements Check.
func (*RedisCommand) Engines() []string { return redisOnly() }

// Run implements Check.
func (r *RedisCommand) Run(ctx context.Context, env *Env) []Finding {
	started := time.Now()
	a := r.Assertion
	ev := Evidence{"command": a.Command, "db": a.DB, "expect": a.Expect}
	fin := func(f Finding) []Finding { f.Seconds = time.Since(started).Seconds(); return []Finding{f} }
	if env.Redis == nil {
		return fin(Errorf(r.Name(), ev, "no Redis client: the throwaway is not a Redis server"))
	}
	if len(a.Command) == 0 {
		return fin(Errorf(r.Name(), ev, "no command to run"))
	}
	args := make([]any, len(a.Command))
	for i, s := range a.Command {
		args[i] = s
	}
	reply, err := env.Redis(a.DB).Do(ctx, args...).Result()
	if errors.Is(err, goredis.Nil) {
		ev["value"] = nil
		return fin(Failf(r.Name(), ev, "replied nil (no such key?)"))
	}
	if err != nil {
		// An error reply (unknown command, wrong type) is a command that did not check.
		return fin(Errorf(r.Name(), ev, "command failed, nothing was proved: %v", err))
	}
	got, ok := replyText(reply)
	if !ok {
		return fin(Errorf(r.Name(), ev, "replied %T, which is not an integer, a string or an array", reply))
	}
	ev["value"] = got
	return fin(evaluate(r.Name(), ev, got, a.Expect))
}

// replyText is a reply as the assertion compares it: an integer or a string as it reads, an
// array (or map, or set) by its length.
func replyText(reply any) (string, bool) {
	switch v := reply.(type) {
	case int64:
		return strconv.FormatInt(v, 10), true
	case string:
		return v, true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case bool:
		if v {
			return "1", true
		}
		return "0", true
	case []any:
		return strconv.Itoa(len(v)), true
	case map[any]any:
		return strconv.Itoa(len(v)), true
	case fmt.Stringer:
		return v.String(), true
	}
	return "", false
}
