package policy

// targets[].checks.*: its type, checks.Config, is package checks'; its validation is here.

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/engine"
)

// validateChecks checks a target's checks keys (their type, checks.Config, is package checks')
// for the target's engine.
func validateChecks(p, engineName string, ch checks.Config, add addFunc) {
	if ch.Parallel < 1 || ch.Parallel > 64 {
		add(p+".parallel", "must be between 1 and 64, got %d", ch.Parallel)
	}
	keyValue := false
	if sp, ok := engine.Lookup(engineName); ok {
		keyValue = sp.KeyValue
	}
	if keyValue {
		validateKeyValueChecks(p, engineName, ch, add)
		return
	}
	if sp, ok := engine.Lookup(engineName); ok && sp.Document {
		validateDocumentChecks(p, engineName, ch, add)
		return
	}
	if len(ch.Mongo) > 0 {
		add(p+".mongo", "mongo assertions are checks of a document store (engine mongodb); engine %s is checked with sql", engineName)
	}
	if ch.Keys != nil || len(ch.Redis) > 0 {
		add(p, "keys and redis are checks of a key-value store (engine redis); engine %s is checked with sql, rowCounts and freshness.query", engineName)
	}
	if f := ch.Freshness; f != nil && f.Key != "" {
		add(p+".freshness.key", "a key is read from a key-value store (engine redis); engine %s's freshness is a query", engineName)
	}
	validateAmcheck(p+".amcheck", ch.Amcheck, add)
	names := map[string]bool{}
	for j, s := range ch.SQL {
		sp := fmt.Sprintf("%s.sql[%d]", p, j)
		uniqueName(sp+".name", s.Name, names, add)
		if strings.TrimSpace(s.Query) == "" {
			add(sp+".query", "required: a query whose first column of the first row is checked")
		}
		validateExpect(sp+".expect", s.Expect, add)
	}
	if f := ch.Freshness; f != nil && strings.TrimSpace(f.Query) == "" {
		add(p+".freshness.query", "required: a query returning the newest timestamp in the data, e.g. SELECT max(created_at) FROM orders")
	}
	if rc := ch.RowCounts; rc != nil {
		for k, v := range rc.Min {
			if v < 0 {
				add(p+".rowCounts.min."+k, "must be zero or more, got %d", v)
			}
			if n := strings.Count(k, "."); n < 1 || n > 2 {
				add(p+".rowCounts.min."+k, "name tables as schema.table or database.schema.table")
			}
		}
	}
	if c := ch.Canary; c != nil {
		validateCanary(p+".canary", c, add)
	}
	if sc := ch.Schema; sc != nil {
		validateSchema(p+".schema", sc, add)
	}
}

// validateCanary checks checks.canary. The expected value is never repeated in a message.
func validateCanary(p string, c *checks.CanaryConfig, add addFunc) {
	if strings.TrimSpace(c.Query) == "" {
		add(p+".query", "required: a query returning the one sentinel value, e.g. SELECT value FROM canary")
	}
	n := 0
	for _, set := range []bool{c.Equals != nil, c.EqualsEnv != "", c.EqualsFile != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		add(p, "set exactly one of equals, equalsEnv (an environment variable's name) and equalsFile (a file's path): the expected value")
	}
}

// validateSchema checks checks.schema.
func validateSchema(p string, sc *checks.SchemaConfig, add addFunc) {
	if sc.MinTables < 0 {
		add(p+".minTables", "must be zero or more, got %d", sc.MinTables)
	}
	if sc.MinTables == 0 && len(sc.Tables) == 0 {
		add(p, "set minTables, tables or both: an empty baseline checks nothing")
	}
	seen := map[string]bool{}
	for j, name := range sc.Tables {
		tp := fmt.Sprintf("%s.tables[%d]", p, j)
		switch {
		case strings.TrimSpace(name) == "":
			add(tp, "must name a table (schema.table, or a table in the search_path)")
		case seen[name]:
			add(tp, "duplicate table %q", name)
		}
		seen[name] = true
	}
}

// uniqueName checks an assertion's name: required, and not taken by another of its kind.
func uniqueName(p, name string, names map[string]bool, add addFunc) {
	if name == "" {
		add(p, "required: a short name for the assertion")
	} else if names[name] {
		add(p, "duplicate assertion name %q", name)
	}
	names[name] = true
}

// validateExpect checks an assertion's expect block.
func validateExpect(p string, e checks.Expect, add addFunc) {
	switch {
	case e.Equals == nil && e.Min == nil && e.Max == nil:
		add(p, "required: {equals: VALUE}, {min: N}, {max: N} or {min: N, max: M}")
	case e.Equals != nil && (e.Min != nil || e.Max != nil):
		add(p, "equals cannot be combined with min or max")
	case e.Min != nil && e.Max != nil && *e.Min > *e.Max:
		add(p, "min %v is greater than max %v", *e.Min, *e.Max)
	}
}

// validateKeyValueChecks checks the checks of a key-value store (Redis): keys, redis
// assertions, freshness from a key. SQL checks do not apply.
func validateKeyValueChecks(p, engineName string, ch checks.Config, add addFunc) {
	if len(ch.SQL) > 0 {
		add(p+".sql", "engine %s has no SQL: assert with checks.redis: [{name: ..., command: [DBSIZE], expect: {min: 1}}]", engineName)
	}
	if rc := ch.RowCounts; rc != nil && len(rc.Min) > 0 {
		add(p+".rowCounts.min", "engine %s has no tables: set the fewest keys per database with checks.keys.min: {\"0\": N}", engineName)
	}
	if c := ch.Canary; c != nil {
		add(p+".canary", "not available for engine %s: assert a known key's value with checks.redis: [{command: [GET, KEY], expect: {equals: VALUE}}]", engineName)
	}
	if ch.Schema != nil {
		add(p+".schema", "engine %s has no schema", engineName)
	}
	if f := ch.Freshness; f != nil {
		switch {
		case strings.TrimSpace(f.Query) != "":
			add(p+".freshness.query", "engine %s has no SQL: name the key holding the newest timestamp with freshness.key", engineName)
		case strings.TrimSpace(f.Key) == "":
			add(p+".freshness.key", "required: the key holding the newest timestamp (unix seconds or milliseconds, or RFC 3339)")
		}
		if f.DB < 0 {
			add(p+".freshness.db", "must be zero or more, got %d", f.DB)
		}
	}
	if k := ch.Keys; k != nil {
		for _, db := range slices.Sorted(maps.Keys(k.Min)) {
			v := k.Min[db]
			if n, err := strconv.Atoi(db); err != nil || n < 0 {
				add(p+".keys.min."+db, "name logical databases by number (\"0\", \"1\", ...)")
			}
			if v < 0 {
				add(p+".keys.min."+db, "must be zero or more, got %d", v)
			}
		}
		if k.Sample < 0 {
			add(p+".keys.sample", "must be zero (the default, 100) or more, got %d", k.Sample)
		}
	}
	names := map[string]bool{}
	for j, a := range ch.Redis {
		ap := fmt.Sprintf("%s.redis[%d]", p, j)
		uniqueName(ap+".name", a.Name, names, add)
		if len(a.Command) == 0 || strings.TrimSpace(a.Command[0]) == "" {
			add(ap+".command", "required: the command and its arguments, e.g. [SCARD, users]")
		}
		if a.DB < 0 {
			add(ap+".db", "must be zero or more, got %d", a.DB)
		}
		validateExpect(ap+".expect", a.Expect, add)
	}
}

// validateDocumentChecks checks the checks of a document store (MongoDB): validate, document
// counts (rowCounts.min by database.collection) and count assertions. SQL checks, canary,
// schema and freshness do not apply.
func validateDocumentChecks(p, engineName string, ch checks.Config, add addFunc) {
	for _, k := range []struct {
		key string
		set bool
	}{{"sql", len(ch.SQL) > 0}, {"canary", ch.Canary != nil}, {"schema", ch.Schema != nil}, {"freshness", ch.Freshness != nil},
		{"keys", ch.Keys != nil}, {"redis", len(ch.Redis) > 0}} {
		if k.set {
			add(p+"."+k.key, "not available for engine %s: assert with checks.mongo: [{name: ..., database: ..., collection: ..., filter: '{...}', expect: {min: 1}}]", engineName)
		}
	}
	if rc := ch.RowCounts; rc != nil {
		for _, k := range slices.Sorted(maps.Keys(rc.Min)) {
			if rc.Min[k] < 0 {
				add(p+".rowCounts.min."+k, "must be zero or more, got %d", rc.Min[k])
			}
			if strings.Count(k, ".") < 1 {
				add(p+".rowCounts.min."+k, "name collections as database.collection")
			}
		}
	}
	names := map[string]bool{}
	for j, a := range ch.Mongo {
		ap := fmt.Sprintf("%s.mongo[%d]", p, j)
		uniqueName(ap+".name", a.Name, names, add)
		if a.Database == "" || a.Collection == "" {
			add(ap, "database and collection are required")
		}
		if strings.TrimSpace(a.Filter) != "" {
			var doc map[string]any
			if err := bson.UnmarshalExtJSON([]byte(a.Filter), false, &doc); err != nil {
				add(ap+".filter", "not a JSON document (MongoDB extended JSON): %v", err)
			}
		}
		validateExpect(ap+".expect", a.Expect, add)
	}
}

// validateAmcheck checks checks.amcheck's object form: mode and fullEvery.
func validateAmcheck(p string, a *checks.AmcheckConfig, add addFunc) {
	if a == nil {
		return
	}
	switch a.Mode {
	case "", checks.AmcheckFull, checks.AmcheckIncremental:
	default:
		add(p+".mode", "must be %s or %s, got %q", checks.AmcheckFull, checks.AmcheckIncremental, a.Mode)
	}
	if a.FullEvery != "" {
		d, err := ParseDuration(a.FullEvery)
		switch {
		case err != nil:
			add(p+".fullEvery", "%v", err)
		case d <= 0:
			add(p+".fullEvery", "must be positive, got %s", a.FullEvery)
		}
	}
}
