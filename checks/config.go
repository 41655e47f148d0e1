package checks

// Config is the `checks:` block of a target: which integrity checks a drill runs on the
// restored copy. A nil switch is on: amcheck, checksums and row counts run unless turned off.
type Config struct {
	// Amcheck runs verify_heapam and bt_index_check(heapallindexed) over every relation.
	Amcheck *bool `yaml:"amcheck" json:"amcheck"`
	// Checksums reads pg_stat_database.checksum_failures and runs pg_checksums --check on the
	// cleanly stopped copy when data checksums are on.
	Checksums *bool `yaml:"checksums" json:"checksums"`
	// RowCounts records exact per-table row counts as evidence.
	RowCounts *RowCountConfig `yaml:"rowCounts" json:"rowCounts,omitempty"`
	// SQL are custom assertions.
	SQL []SQLAssertion `yaml:"sql" json:"sql,omitempty"`
	// Freshness finds the data's recovery point.
	Freshness *FreshnessConfig `yaml:"freshness" json:"freshness,omitempty"`
	// Parallel bounds the connections a check opens to one database (default 2).
	Parallel int `yaml:"parallel" json:"parallel,omitempty"`
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

// FreshnessConfig is a query returning the newest timestamp in the data.
type FreshnessConfig struct {
	Query    string `yaml:"query" json:"query"`
	Database string `yaml:"database" json:"database,omitempty"`
}

// Enabled reports whether an optional boolean is on, given its default.
func Enabled(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}
