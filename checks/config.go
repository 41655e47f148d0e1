package checks

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the `checks:` block of a target: which integrity checks a drill runs on the
// restored copy. A nil switch is on: amcheck, checksums and row counts run unless turned off.
type Config struct {
	// Amcheck runs verify_heapam and bt_index_check(heapallindexed) over every relation:
	// `amcheck: true|false`, or an object (mode, fullEvery) for incremental verification.
	Amcheck *AmcheckConfig `yaml:"amcheck" json:"amcheck"`
	// Checksums reads pg_stat_database.checksum_failures and runs pg_checksums --check on the
	// cleanly stopped copy when data checksums are on.
	Checksums *bool `yaml:"checksums" json:"checksums"`
	// RowCounts records exact per-table row counts as evidence.
	RowCounts *RowCountConfig `yaml:"rowCounts" json:"rowCounts,omitempty"`
	// SQL are custom assertions.
	SQL []SQLAssertion `yaml:"sql" json:"sql,omitempty"`
	// Freshness finds the data's recovery point.
	Freshness *FreshnessConfig `yaml:"freshness" json:"freshness,omitempty"`
	// Canary compares a known sentinel value in the restored data byte for byte.
	Canary *CanaryConfig `yaml:"canary" json:"canary,omitempty"`
	// Schema holds the restored schema to a baseline: named tables, a minimum table count.
	Schema *SchemaConfig `yaml:"schema" json:"schema,omitempty"`
	// Parallel bounds the connections a check opens to one database (default 2).
	Parallel int `yaml:"parallel" json:"parallel,omitempty"`

	// CheckTable runs CHECK TABLE ... EXTENDED on every table of a MariaDB/MySQL copy. The
	// policy's defaults turn it on for MariaDB targets; unset in a bare Config it is off, so
	// other engines' drills do not name it skipped.
	CheckTable *bool `yaml:"checkTable" json:"checkTable"`
	// Keys compares a Redis copy's per-database key counts with those recorded at BGSAVE time
	// and with minimums, and reads a sample of keys back (default on).
	Keys *KeysConfig `yaml:"keys" json:"keys,omitempty"`
	// Redis are custom command assertions on a Redis copy.
	Redis []RedisAssertion `yaml:"redis" json:"redis,omitempty"`
	// Validate runs validate({full: true}) on every collection of a MongoDB copy (default on).
	Validate *bool `yaml:"validate" json:"validate"`
	// Mongo are custom query assertions on a MongoDB copy: the number of documents a filter
	// matches.
	Mongo []MongoAssertion `yaml:"mongo" json:"mongo,omitempty"`
}

// MongoAssertion counts the documents of Database.Collection that Filter (extended JSON, "{}"
// when empty) matches; the count must meet Expect.
type MongoAssertion struct {
	Name       string `yaml:"name" json:"name"`
	Database   string `yaml:"database" json:"database"`
	Collection string `yaml:"collection" json:"collection"`
	Filter     string `yaml:"filter" json:"filter,omitempty"`
	Expect     Expect `yaml:"expect" json:"expect"`
}

// KeysConfig is checks.keys (Redis).
type KeysConfig struct {
	Enabled *bool `yaml:"enabled" json:"enabled"`
	// Min maps a logical database number ("0") to the fewest keys it must hold.
	Min map[string]int64 `yaml:"min" json:"min,omitempty"`
	// Sample is how many keys per database are read back (SCAN, TYPE, MEMORY USAGE);
	// 0: the default, 100.
	Sample int `yaml:"sample" json:"sample,omitempty"`
}

// RedisAssertion is a command whose reply must meet Expect (an integer or bulk string reply;
// an array's length).
type RedisAssertion struct {
	Name    string   `yaml:"name" json:"name"`
	DB      int      `yaml:"db" json:"db,omitempty"`
	Command []string `yaml:"command" json:"command"`
	Expect  Expect   `yaml:"expect" json:"expect"`
}

// RowCountConfig configures row counts.
type RowCountConfig struct {
	Enabled *bool `yaml:"enabled" json:"enabled"`
	// Min maps "schema.table" (in database postgres) or "database.schema.table" to the fewest
	// rows the restored table must have.
	Min map[string]int64 `yaml:"min" json:"min,omitempty"`
}

// SQLAssertion is a query whose first column of its first row must meet Expect.
type SQLAssertion struct {
	Name     string `yaml:"name" json:"name"`
	Query    string `yaml:"query" json:"query"`
	Database string `yaml:"database" json:"database,omitempty"`
	Expect   Expect `yaml:"expect" json:"expect"`
}

// Expect is what a value must be: equal to a text, or within numeric bounds.
type Expect struct {
	Equals *string  `yaml:"equals" json:"equals,omitempty"`
	Min    *float64 `yaml:"min" json:"min,omitempty"`
	Max    *float64 `yaml:"max" json:"max,omitempty"`
}

// FreshnessConfig is a query returning the newest timestamp in the data (SQL engines), or a
// Redis key holding one (a unix time in seconds or milliseconds, or RFC 3339).
type FreshnessConfig struct {
	Query    string `yaml:"query" json:"query,omitempty"`
	Database string `yaml:"database" json:"database,omitempty"`
	// Key is the Redis key holding the newest timestamp, in logical database DB.
	Key string `yaml:"key" json:"key,omitempty"`
	DB  int    `yaml:"db" json:"db,omitempty"`
}

// Enabled reports whether an optional boolean is on, given its default.
func Enabled(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

// CanaryConfig is checks.canary: a query whose single value must equal a known sentinel,
// byte for byte. Exactly one of Equals, EqualsEnv and EqualsFile gives the sentinel; it is a
// secret of sorts (it proves the data is the real data), so it is never shown: not in
// findings, evidence, logs or errors, and not when the configuration is encoded (json:"-").
type CanaryConfig struct {
	Query string `yaml:"query" json:"query"`
	// Database defaults to postgres.
	Database string `yaml:"database" json:"database,omitempty"`
	// Equals is the sentinel written in the configuration.
	Equals *string `yaml:"equals" json:"-"`
	// EqualsEnv names an environment variable holding the sentinel.
	EqualsEnv string `yaml:"equalsEnv" json:"equalsEnv,omitempty"`
	// EqualsFile is a file holding the sentinel (one trailing newline is not part of it).
	EqualsFile string `yaml:"equalsFile" json:"equalsFile,omitempty"`
}

// SchemaConfig is checks.schema: a baseline the restored schema must meet.
type SchemaConfig struct {
	// MinTables is the fewest user tables (ordinary and partitioned, outside the system
	// schemas) the database must have.
	MinTables int `yaml:"minTables" json:"minTables,omitempty"`
	// Tables must each exist: schema-qualified (sales.orders) or found in the search_path.
	Tables []string `yaml:"tables" json:"tables,omitempty"`
	// Database defaults to postgres.
	Database string `yaml:"database" json:"database,omitempty"`
}

// Amcheck modes (checks.amcheck.mode).
const (
	// AmcheckFull checks every relation on every drill (the default).
	AmcheckFull = "full"
	// AmcheckIncremental checks only what changed since the last snapshot that passed a
	// full drill, and what depends on it; a full drill still runs every FullEvery.
	AmcheckIncremental = "incremental"
)

// DefaultAmcheckFullEvery is checks.amcheck.fullEvery's default: a week.
const DefaultAmcheckFullEvery = 7 * 24 * time.Hour

// AmcheckConfig is checks.amcheck. In YAML it is a switch (`amcheck: false`) or an object:
//
//	amcheck:
//	  mode: incremental   # full (default) | incremental
//	  fullEvery: 7d       # incremental: a full drill at least this often (default 7d)
type AmcheckConfig struct {
	Enabled *bool `yaml:"enabled" json:"enabled"`
	// Mode is full (default) or incremental.
	Mode string `yaml:"mode" json:"mode,omitempty"`
	// FullEvery is the longest an incremental drill may lean on a full one, as written
	// ("7d", "36h"); the configuration loader parses it into FullEveryDuration.
	FullEvery string `yaml:"fullEvery" json:"fullEvery,omitempty"`
	// FullEveryDuration is FullEvery parsed; 0: DefaultAmcheckFullEvery.
	FullEveryDuration time.Duration `yaml:"-" json:"-"`
}

// AmcheckOn returns checks.amcheck: true (or an object without enabled: false).
func AmcheckOn(on bool) *AmcheckConfig { return &AmcheckConfig{Enabled: &on} }

// On reports whether amcheck runs (nil: it does).
func (a *AmcheckConfig) On() bool { return a == nil || Enabled(a.Enabled, true) }

// Incremental reports whether the mode is incremental.
func (a *AmcheckConfig) Incremental() bool { return a != nil && a.Mode == AmcheckIncremental }

// FullAfter is how long an incremental drill may lean on the last full one.
func (a *AmcheckConfig) FullAfter() time.Duration {
	if a == nil || a.FullEveryDuration <= 0 {
		return DefaultAmcheckFullEvery
	}
	return a.FullEveryDuration
}

var amcheckKeys = []string{"enabled", "mode", "fullEvery"}

// UnmarshalYAML reads `amcheck: true|false` or the object form; an unknown key is an error
// naming its line.
func (a *AmcheckConfig) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		var on bool
		if err := n.Decode(&on); err != nil {
			return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: must be true, false or an object with mode and fullEvery, got %q", n.Line, n.Value)}}
		}
		a.Enabled = &on
		return nil
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; !slices.Contains(amcheckKeys, k.Value) {
				return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: field %s not found (known: %s)", k.Line, k.Value, strings.Join(amcheckKeys, ", "))}}
			}
		}
		type plain AmcheckConfig
		return n.Decode((*plain)(a))
	default:
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: must be true, false or an object with mode and fullEvery", n.Line)}}
	}
}

// MarshalYAML writes the switch form back when nothing else is set.
func (a AmcheckConfig) MarshalYAML() (any, error) {
	if a.Mode == "" && a.FullEvery == "" {
		return Enabled(a.Enabled, true), nil
	}
	type plain AmcheckConfig
	return plain(a), nil
}

// MarshalJSON writes the switch form back when nothing else is set, as before the object form.
func (a AmcheckConfig) MarshalJSON() ([]byte, error) {
	if a.Mode == "" && a.FullEvery == "" {
		return json.Marshal(Enabled(a.Enabled, true))
	}
	type plain AmcheckConfig
	return json.Marshal(plain(a))
}

// UnmarshalJSON reads either form back.
func (a *AmcheckConfig) UnmarshalJSON(b []byte) error {
	var on bool
	if err := json.Unmarshal(b, &on); err == nil {
		a.Enabled = &on
		return nil
	}
	type plain AmcheckConfig
	return json.Unmarshal(b, (*plain)(a))
}
