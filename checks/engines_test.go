package checks

import (
	"context"
	"slices"
	"testing"
)

// anyEngine is a check that serves every engine (Engines nil).
type anyEngine struct{}

func (anyEngine) Name() string                        { return "any" }
func (anyEngine) Engines() []string                   { return nil }
func (anyEngine) Run(context.Context, *Env) []Finding { return nil }

func TestBuildFor(t *testing.T) {
	cfg := Config{SQL: []SQLAssertion{{Name: "a", Query: "SELECT 1"}}, Freshness: &FreshnessConfig{Query: "SELECT now()"}}
	all := []string{"amcheck", "row-counts", "sql:a", "freshness", "checksums"}
	// Checks on by default (amcheck, checksums, row counts, validate) are not reported
	// skipped for an engine they do not serve: only what the configuration asked for.
	tests := []struct {
		engine      string
		want        []string
		wantSkipped []string
	}{
		{"postgres", all, nil},
		{"redis", []string{"keys"}, []string{"sql:a", "freshness"}},
		// MariaDB has its own row counts, SQL assertions and freshness under the same names;
		// amcheck and checksums are on by default, so not reported skipped.
		{"mariadb", []string{"check-table", "row-counts", "sql:a", "freshness"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.engine, func(t *testing.T) {
			cs, skipped := BuildFor(cfg, tt.engine)
			var got, gotSkipped []string
			for _, c := range cs {
				got = append(got, c.Name())
			}
			for _, s := range skipped {
				gotSkipped = append(gotSkipped, s.Check)
				if want := s.Check + " serves " + map[string]string{"sql:a": "postgres, mariadb", "freshness": "postgres, mariadb"}[s.Check] + " only, not " + tt.engine; s.Reason != want {
					t.Errorf("reason %q, want %q", s.Reason, want)
				}
			}
			if !slices.Equal(got, tt.want) || !slices.Equal(gotSkipped, tt.wantSkipped) {
				t.Errorf("BuildFor(%s) = %v, skipped %v; want %v, skipped %v", tt.engine, got, gotSkipped, tt.want, tt.wantSkipped)
			}
		})
	}
	// Build is BuildFor PostgreSQL, until every caller passes its engine.
	var got []string
	for _, c := range Build(cfg) {
		got = append(got, c.Name())
	}
	if !slices.Equal(got, all) {
		t.Errorf("Build() = %v, want %v", got, all)
	}
}

func TestServes(t *testing.T) {
	for _, tt := range []struct {
		name   string
		c      Check
		engine string
		want   bool
	}{
		{"postgres check, postgres", &Amcheck{}, "postgres", true},
		{"postgres check, redis", &Amcheck{}, "redis", false},
		{"engine-neutral check, redis", anyEngine{}, "redis", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Serves(tt.c, tt.engine); got != tt.want {
				t.Errorf("Serves() = %v, want %v", got, tt.want)
			}
		})
	}
}
