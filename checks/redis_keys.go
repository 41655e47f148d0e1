package checks

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// KeysName is the finding name of the Redis key count check.
const KeysName = "keys"

// DefaultKeysSample is how many keys per database the keys check reads back by default.
const DefaultKeysSample = 100

// The key counts recorded with a Redis snapshot (snapshot attributes, see RecordKeyspace).
const (
	// RecordedKeys is the total of the key counts read just before BGSAVE; its presence says
	// the counts were recorded (a database without keys has no keys.dbN).
	RecordedKeys = "keys"
	// RecordedKeysDB + "0" is database 0's key count, RecordedExpiresDB + "0" how many of
	// them had a time to live, RecordedDriftDB + "0" how far the count moved between the reads
	// just before and just after BGSAVE (absent when it did not).
	RecordedKeysDB    = "keys.db"
	RecordedExpiresDB = "expires.db"
	RecordedDriftDB   = "keysDrift.db"
)

// engineRedis is Redis's name in the engine registry (restore/engine).
const engineRedis = "redis"

func redisOnly() []string { return []string{engineRedis} }

func init() {
	// On unless turned off; a drill of another engine does not name it skipped (OnByDefault).
	Register(KeysName, 21, func(c Config) []Check {
		if c.Keys == nil {
			return []Check{&Keys{}}
		}
		if !Enabled(c.Keys.Enabled, true) {
			return nil
		}
		return []Check{&Keys{Min: c.Keys.Min, Sample: c.Keys.Sample}}
	})
}

// KeyspaceDB is one logical database's line of INFO keyspace.
type KeyspaceDB struct {
	Keys    int64 `json:"keys"`
	Expires int64 `json:"expires"`
}

// ParseKeyspace parses INFO keyspace ("db0:keys=2,expires=1,avg_ttl=0"); databases without
// keys have no line.
func ParseKeyspace(info string) map[int]KeyspaceDB {
	out := map[int]KeyspaceDB{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		name, fields, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		num, isDB := strings.CutPrefix(name, "db")
		db, err := strconv.Atoi(num)
		if !ok || !isDB || err != nil || db < 0 {
			continue
		}
		var k KeyspaceDB
		for _, f := range strings.Split(fields, ",") {
			key, val, _ := strings.Cut(f, "=")
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				continue
			}
			switch key {
			case "keys":
				k.Keys = n
			case "expires":
				k.Expires = n
			}
		}
		out[db] = k
	}
	return out
}

// KeyspaceDrift is how far each database's key count moved between two reads.
func KeyspaceDrift(before, after map[int]KeyspaceDB) map[int]int64 {
	out := map[int]int64{}
	for db := range joinKeys(keysOf(before), keysOf(after)) {
		if d := after[db].Keys - before[db].Keys; d != 0 {
			out[db] = max(d, -d)
		}
	}
	return out
}

// keysOf is the set of a map's keys.
func keysOf[V any](m map[int]V) map[int]bool {
	out := make(map[int]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

// joinKeys is the union of sets.
func joinKeys(sets ...map[int]bool) map[int]bool {
	out := map[int]bool{}
	for _, s := range sets {
		for k := range s {
			out[k] = true
		}
	}
	return out
}

// RecordKeyspace writes key counts read at BGSAVE time into snapshot attributes; a nil
// keyspace (never read) records nothing.
func RecordKeyspace(attrs map[string]string, ks map[int]KeyspaceDB, drift map[int]int64) {
	if ks == nil {
		return
	}
	var total int64
	for db, k := range ks {
		total += k.Keys
		attrs[RecordedKeysDB+strconv.Itoa(db)] = strconv.FormatInt(k.Keys, 10)
		attrs[RecordedExpiresDB+strconv.Itoa(db)] = strconv.FormatInt(k.Expires, 10)
	}
	for db, d := range drift {
		attrs[RecordedDriftDB+strconv.Itoa(db)] = strconv.FormatInt(d, 10)
	}
	attrs[RecordedKeys] = strconv.FormatInt(total, 10)
}

// recordedDB is what a snapshot recorded of one database.
type recordedDB struct {
	KeyspaceDB
	Drift int64 `json:"drift,omitempty"`
}

// recordedKeyspace reads RecordKeyspace's attributes back; ok is false when the snapshot
// recorded none (taken by an older firedrill, or not by BGSAVE).
func recordedKeyspace(attrs map[string]string) (map[int]recordedDB, bool) {
	if _, ok := attrs[RecordedKeys]; !ok {
		return nil, false
	}
	out := map[int]recordedDB{}
	for k, v := range attrs {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			continue
		}
		for _, prefix := range []string{RecordedKeysDB, RecordedExpiresDB, RecordedDriftDB} {
			num, ok := strings.CutPrefix(k, prefix)
			db, err := strconv.Atoi(num)
			if !ok || err != nil {
				continue
			}
			r := out[db]
			switch prefix {
			case RecordedKeysDB:
				r.Keys = n
			case RecordedExpiresDB:
				r.Expires = n
			case RecordedDriftDB:
				r.Drift = n
			}
			out[db] = r
		}
	}
	return out, true
}

// keyBounds is the range a restored database's key count must fall in, given what was
// recorded at BGSAVE time.
//
// The counts were read just before BGSAVE, whose fork is the RDB's instant; writes go on
// around it, so the count at the fork is only known within the drift between the reads on
// either side (one round trip each) plus a margin: 1% of the keys, at least one. Keys with a
// time to live may have expired by drill time, and Redis does not load expired keys from an
// RDB, so only the keys without one are owed: the floor is keys - expires - margin. The
// ceiling is keys + margin: a copy with more keys than production held is not this save.
func keyBounds(r recordedDB) (lo, hi, margin int64) {
	margin = max(r.Drift, (r.Keys+99)/100, 1)
	return max(r.Keys-r.Expires-margin, 0), r.Keys + margin, margin
}

// Keys compares a Redis copy's per-database key counts with those recorded at BGSAVE time
// and with minimums, and reads a sample of keys back.
type Keys struct {
	// Min maps a database number ("0") to the fewest keys it must hold.
	Min map[string]int64
	// Sample is how many keys per database are read back; 0: DefaultKeysSample, <0: none.
	Sample int
}

// Name implements Check.
func (k *Keys) Name() string { return KeysName }

// Engines implements Check.
func (*Keys) Engines() []string { return redisOnly() }

// OnByDefault implements onByDefault.
func (*Keys) OnByDefault() bool { return true }

// dbCount is one database's outcome, as evidence.
type dbCount struct {
	Keys     int64       `json:"keys"`
	Recorded *recordedDB `json:"recorded,omitempty"`
	Min      *int64      `json:"min,omitempty"`
	Sampled  int         `json:"sampled,omitempty"`
}

// Run implements Check.
func (k *Keys) Run(ctx context.Context, env *Env) []Finding {
	started := time.Now()
	fin := func(f Finding) []Finding { f.Seconds = time.Since(started).Seconds(); return []Finding{f} }
	if env.Redis == nil {
		return fin(Errorf(KeysName, nil, "no Redis client: the throwaway is not a Redis server"))
	}
	mins := map[int]int64{}
	for name, n := range k.Min {
		db, err := strconv.Atoi(name)
		if err != nil || db < 0 {
			return fin(Errorf(KeysName, Evidence{"min": k.Min}, "checks.keys.min: %q is not a database number", name))
		}
		mins[db] = n
	}
	info, err := env.Redis(0).Info(ctx, "keyspace").Result()
	if err != nil {
		return fin(Errorf(KeysName, nil, "could not read INFO keyspace: %v", err))
	}
	recorded, haveRecorded := recordedKeyspace(env.Recorded)
	dbs := slices.Sorted(maps.Keys(joinKeys(keysOf(ParseKeyspace(info)), keysOf(recorded), keysOf(mins))))
	counts := map[string]*dbCount{}
	ev := Evidence{"databases": counts}
	var total int64
	var fails, warns []string
	for _, db := range dbs {
		n, err := env.Redis(db).DBSize(ctx).Result()
		if err != nil {
			return fin(Errorf(KeysName, ev, "could not count the keys of database %d: %v", db, err))
		}
		total += n
		c := &dbCount{Keys: n}
		counts[strconv.Itoa(db)] = c
		if m, ok := mins[db]; ok {
			c.Min = &m
			if n < m {
				fails = append(fails, fmt.Sprintf("database %d has %d keys, expected at least %d (checks.keys.min)", db, n, m))
			}
		}
		if haveRecorded {
			r := recorded[db]
			c.Recorded = &r
			lo, hi, margin := keyBounds(r)
			switch {
			case n < lo:
				fails = append(fails, fmt.Sprintf("database %d has %d keys, but %d without a time to live were recorded at BGSAVE time (margin %d)", db, n, r.Keys-r.Expires, margin))
			case n > hi:
				warns = append(warns, fmt.Sprintf("database %d has %d keys, more than the %d recorded at BGSAVE time (margin %d): the RDB may not be this snapshot's save", db, n, r.Keys, margin))
			}
		}
	}
	ev["keys"] = total
	if !haveRecorded {
		ev["recorded"] = "none: the snapshot has no key counts (taken by an older firedrill)"
	}
	sample := k.Sample
	if sample == 0 {
		sample = DefaultKeysSample
	}
	var unreadable []string
	if sample > 0 {
		types := map[string]int{}
		var sampled int
		var bytes int64
		for _, db := range dbs {
			c := counts[strconv.Itoa(db)]
			if c.Keys == 0 {
				continue
			}
			s, err := sampleKeys(ctx, env.Redis(db), sample)
			if err != nil {
				return fin(Errorf(KeysName, ev, "could not read back keys of database %d: %v", db, err))
			}
			c.Sampled = len(s.read)
			sampled += len(s.read)
			bytes += s.bytes
			for _, t := range s.read {
				types[t]++
			}
			for _, u := range s.unreadable {
				unreadable = append(unreadable, fmt.Sprintf("database %d: %s", db, u))
			}
		}
		ev["sampled"], ev["sampleTypes"], ev["sampleBytes"] = sampled, types, bytes
	}
	if len(unreadable) > 0 {
		ev["unreadable"] = firstN(unreadable, 50)
		fails = append(fails, fmt.Sprintf("%d sampled key(s) could not be read, first %s", len(unreadable), unreadable[0]))
	}
	switch {
	case len(fails) > 0:
		ev["violations"] = append(fails, warns...)
		return fin(Failf(KeysName, ev, "%s", fails[0]))
	case len(warns) > 0:
		ev["violations"] = warns
		return fin(Warnf(KeysName, ev, "%s", warns[0]))
	}
	msg := fmt.Sprintf("%d keys in %d database(s)", total, len(dbs))
	if haveRecorded {
		msg += ", within the counts recorded at BGSAVE time"
	}
	if n, ok := ev["sampled"].(int); ok {
		msg += fmt.Sprintf("; %d sampled keys read back", n)
	}
	return fin(Passf(KeysName, ev, "%s", msg))
}

// keySample is what reading a sample of keys found: the type of each key read, the bytes they
// use, and the keys the server refused to read (name: reply).
type keySample struct {
	read       []string
	bytes      int64
	unreadable []string
}

// sampleKeys SCANs up to n keys and reads each one's TYPE and MEMORY USAGE (which walks the
// value). A key gone by then expired: nothing else writes to the throwaway.
func sampleKeys(ctx context.Context, c *goredis.Client, n int) (keySample, error) {
	var keys []string
	var cursor uint64
	for len(keys) < n {
		batch, next, err := c.Scan(ctx, cursor, "", int64(min(n, 1000))).Result()
		if err != nil {
			return keySample{}, fmt.Errorf("while scanning keys: %w", err)
		}
		keys = append(keys, batch...)
		if cursor = next; cursor == 0 {
			break
		}
	}
	keys = keys[:min(len(keys), n)]
	var out keySample
	types := make([]*goredis.StatusCmd, len(keys))
	usage := make([]*goredis.IntCmd, len(keys))
	_, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, key := range keys {
			types[i] = p.Type(ctx, key)
			usage[i] = p.MemoryUsage(ctx, key)
		}
		return nil
	})
	if err != nil && !isReply(err) {
		return keySample{}, fmt.Errorf("while reading sampled keys: %w", err)
	}
	for i, key := range keys {
		t, terr := types[i].Result()
		b, uerr := usage[i].Result()
		switch {
		case terr == nil && t == "none", errors.Is(uerr, goredis.Nil):
			continue // expired since SCAN
		case terr != nil:
			out.unreadable = append(out.unreadable, fmt.Sprintf("%q: TYPE: %v", key, terr))
		case uerr != nil:
			out.unreadable = append(out.unreadable, fmt.Sprintf("%q: MEMORY USAGE: %v", key, uerr))
		default:
			out.read = append(out.read, t)
			out.bytes += b
		}
	}
	return out, nil
}

// isReply reports whether err is the server's error reply (or nil reply) to a command, as
// opposed to a connection that failed.
func isReply(err error) bool {
	var re goredis.Error
	return errors.As(err, &re)
}
