package checks

import (
	"slices"
	"testing"
)

func TestNamesOrder(t *testing.T) {
	want := []string{AmcheckName, CheckTableName, ValidateName, SchemaName, RowCountsName, KeysName, CanaryName, "sql", "redis", "mongo", FreshnessName, ChecksumsName}
	if got := Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
	if want := []string{"amcheck", "check-table", "validate", "schema", "row-counts", "keys", "canary", "sql", "redis", "mongo", "freshness", "checksums"}; !slices.Equal(Names(), want) {
		t.Errorf("Names() = %v, want %v", Names(), want)
	}
}

func TestBuild(t *testing.T) {
	on, off := boolp(true), boolp(false)
	sql := []SQLAssertion{
		{Name: "a", Query: "SELECT 1", Expect: Expect{Equals: strp("1")}},
		{Name: "b", Query: "SELECT 2", Expect: Expect{Min: f64p(1)}},
	}
	fresh := &FreshnessConfig{Query: "SELECT now()", Database: "app"}
	all := Config{Amcheck: AmcheckOn(true), Checksums: on, RowCounts: &RowCountConfig{Enabled: on}, SQL: sql, Freshness: fresh}
	with := func(f func(*Config)) Config { c := all; f(&c); return c }
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"everything on", all, []string{"amcheck", "row-counts", "sql:a", "sql:b", "freshness", "checksums"}},
		{"amcheck off", with(func(c *Config) { c.Amcheck = AmcheckOn(false) }), []string{"row-counts", "sql:a", "sql:b", "freshness", "checksums"}},
		{"checksums off", with(func(c *Config) { c.Checksums = off }), []string{"amcheck", "row-counts", "sql:a", "sql:b", "freshness"}},
		{"row counts disabled", with(func(c *Config) { c.RowCounts = &RowCountConfig{Enabled: off} }), []string{"amcheck", "sql:a", "sql:b", "freshness", "checksums"}},
		{"row counts enabled by default", with(func(c *Config) { c.RowCounts = &RowCountConfig{} }), []string{"amcheck", "row-counts", "sql:a", "sql:b", "freshness", "checksums"}},
		{"no sql, no freshness", with(func(c *Config) { c.SQL, c.Freshness = nil, nil }), []string{"amcheck", "row-counts", "checksums"}},
		{"everything off", Config{Amcheck: AmcheckOn(false), Checksums: off, RowCounts: &RowCountConfig{Enabled: off}}, nil},
		// Unset switches and an absent rowCounts block default to on.
		{"zero config", Config{}, []string{"amcheck", "row-counts", "checksums"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, c := range Build(tt.cfg) {
				got = append(got, c.Name())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Build() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBuildPassesSettings(t *testing.T) {
	cfg := Config{
		Amcheck: AmcheckOn(false), Checksums: boolp(false),
		RowCounts: &RowCountConfig{Min: map[string]int64{"public.orders": 5}},
		Freshness: &FreshnessConfig{Query: "SELECT max(t) FROM x", Database: "app"},
	}
	cs := Build(cfg)
	if len(cs) != 2 {
		t.Fatalf("Build() returned %d checks, want 2", len(cs))
	}
	rc, ok := cs[0].(*RowCounts)
	if !ok || rc.Min["public.orders"] != 5 {
		t.Errorf("first check = %#v, want *RowCounts with the minimums", cs[0])
	}
	fr, ok := cs[1].(*Freshness)
	if !ok || fr.Query != "SELECT max(t) FROM x" || fr.Database != "app" {
		t.Errorf("second check = %#v, want *Freshness with the query and database", cs[1])
	}
	if _, ok := Build(Config{})[2].(StoppedCheck); !ok {
		t.Errorf("the checksums check does not implement StoppedCheck")
	}
}

func TestEnabled(t *testing.T) {
	tests := []struct {
		name string
		b    *bool
		def  bool
		want bool
	}{
		{"nil, default on", nil, true, true},
		{"nil, default off", nil, false, false},
		{"false beats default", boolp(false), true, false},
		{"true beats default", boolp(true), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Enabled(tt.b, tt.def); got != tt.want {
				t.Errorf("Enabled() = %v, want %v", got, tt.want)
			}
		})
	}
}

func boolp(b bool) *bool { return &b }
