package policy

// targets[].checks.*: its type, checks.Config, is package checks'; its validation is here.

import (
	"fmt"
	"strings"

	"github.com/firedrill/firedrill/checks"
)

// validateChecks checks a target's checks keys (their type, checks.Config, is package checks').
func validateChecks(p string, ch checks.Config, add addFunc) {
	if ch.Parallel < 1 || ch.Parallel > 64 {
		add(p+".parallel", "must be between 1 and 64, got %d", ch.Parallel)
	}
	names := map[string]bool{}
	for j, s := range ch.SQL {
		sp := fmt.Sprintf("%s.sql[%d]", p, j)
		if s.Name == "" {
			add(sp+".name", "required: a short name for the assertion")
		} else if names[s.Name] {
			add(sp+".name", "duplicate assertion name %q", s.Name)
		}
		names[s.Name] = true
		if strings.TrimSpace(s.Query) == "" {
			add(sp+".query", "required: a query whose first column of the first row is checked")
		}
		e := s.Expect
		switch {
		case e.Equals == nil && e.Min == nil && e.Max == nil:
			add(sp+".expect", "required: {equals: VALUE}, {min: N}, {max: N} or {min: N, max: M}")
		case e.Equals != nil && (e.Min != nil || e.Max != nil):
			add(sp+".expect", "equals cannot be combined with min or max")
		case e.Min != nil && e.Max != nil && *e.Min > *e.Max:
			add(sp+".expect", "min %v is greater than max %v", *e.Min, *e.Max)
		}
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
