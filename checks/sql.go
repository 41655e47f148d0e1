package checks

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// SQLPrefix starts the finding name of a custom SQL assertion: "sql:balances-match".
const SQLPrefix = "sql:"

func init() {
	Register("sql", 30, func(c Config) []Check {
		var out []Check
		for _, a := range c.SQL {
			// One implementation per engine under one name (as row counts).
			out = append(out, &SQL{Assertion: a}, &MariaDBSQL{Assertion: a})
		}
		return out
	})
}

// SQL runs a custom assertion: the first column of the first row must meet Expect.
type SQL struct {
	Assertion SQLAssertion
}

// Name implements Check.
func (s *SQL) Name() string { return SQLPrefix + s.Assertion.Name }

// Engines implements Check: the assertion is PostgreSQL SQL, run over pgx (another engine needs its own dialect and driver).
func (*SQL) Engines() []string { return postgresOnly() }

// Run implements Check.
func (s *SQL) Run(ctx context.Context, env *Env) []Finding {
	started := time.Now()
	a := s.Assertion
	db := a.Database
	if db == "" {
		db = "postgres"
	}
	ev := Evidence{"query": a.Query, "database": db, "expect": a.Expect}
	fin := func(f Finding) []Finding { f.Seconds = time.Since(started).Seconds(); return []Finding{f} }
	conn, err := env.DB.Connect(ctx, db)
	if err != nil {
		return fin(Errorf(s.Name(), ev, "could not connect to database %s: %v", db, err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// The simple protocol returns text, so values compare as psql shows them (t, 42, 2026-...).
	res, err := conn.PgConn().Exec(ctx, a.Query).ReadAll()
	if err != nil {
		return fin(queryFailed(s.Name(), ev, err, "query failed"))
	}
	var got *string
	for i := len(res) - 1; i >= 0; i-- {
		if len(res[i].Rows) > 0 && len(res[i].Rows[0]) > 0 {
			if v := res[i].Rows[0][0]; v != nil {
				str := string(v)
				got = &str
			}
			break
		}
		if len(res[i].FieldDescriptions) > 0 {
			break
		}
	}
	if got == nil {
		ev["value"] = nil
		return fin(Failf(s.Name(), ev, "query returned no value (no rows or NULL)"))
	}
	ev["value"] = *got
	return fin(evaluate(s.Name(), ev, *got, a.Expect))
}

func evaluate(name string, ev Evidence, got string, e Expect) Finding {
	if e.Equals != nil {
		if got == *e.Equals {
			return Passf(name, ev, "returned %q as expected", got)
		}
		return Failf(name, ev, "returned %q, expected %q", got, *e.Equals)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(got), 64)
	// NaN compares false with everything, so it would pass any bound.
	if err != nil || math.IsNaN(v) {
		return Failf(name, ev, "returned %q, which is not a number (expected min/max bounds)", got)
	}
	if e.Min != nil && v < *e.Min {
		return Failf(name, ev, "returned %s, below the minimum %v", got, *e.Min)
	}
	if e.Max != nil && v > *e.Max {
		return Failf(name, ev, "returned %s, above the maximum %v", got, *e.Max)
	}
	return Passf(name, ev, "returned %s, within bounds", got)
}

// Describe renders an expectation for people.
func (e Expect) String() string {
	var parts []string
	if e.Equals != nil {
		parts = append(parts, fmt.Sprintf("= %q", *e.Equals))
	}
	if e.Min != nil {
		parts = append(parts, fmt.Sprintf(">= %v", *e.Min))
	}
	if e.Max != nil {
		parts = append(parts, fmt.Sprintf("<= %v", *e.Max))
	}
	return strings.Join(parts, " and ")
}
