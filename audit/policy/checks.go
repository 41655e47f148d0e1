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
}
