package checks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// SchemaName is the finding name of the schema baseline check.
const SchemaName = "schema"

func init() {
	Register(SchemaName, 15, func(c Config) []Check {
		if c.Schema == nil {
			return nil
		}
		return []Check{&Schema{Config: *c.Schema}}
	})
}

// Schema holds a restored database to a schema baseline: every named table exists, and the
// database has at least MinTables user tables. A dump restored "without error" from the wrong
// database, or cut at a schema boundary, fails it.
type Schema struct {
	Config SchemaConfig
}

// Name implements Check.
func (s *Schema) Name() string { return SchemaName }

// Engines implements Check: tables are looked up in PostgreSQL's catalogs.
func (*Schema) Engines() []string { return postgresOnly() }

// userTablesSQL counts ordinary and partitioned tables outside the system schemas (partitions
// count: each is a table of its own); temporary tables never reach a restored copy.
const userTablesSQL = `
SELECT count(*)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'`

// lookupTableSQL resolves a name as the server would in a query (schema-qualified, or through
// the search_path, quoted identifiers kept) and says what kind of relation it is.
const lookupTableSQL = `
SELECT c.relkind::text, n.nspname || '.' || c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass($1)`

// Run implements Check.
func (s *Schema) Run(ctx context.Context, env *Env) []Finding {
	started := time.Now()
	db := s.Config.Database
	if db == "" {
		db = "postgres"
	}
	ev := Evidence{"database": db}
	if s.Config.MinTables > 0 {
		ev["minTables"] = s.Config.MinTables
	}
	if len(s.Config.Tables) > 0 {
		ev["tables"] = s.Config.Tables
	}
	fin := func(f Finding) []Finding { f.Seconds = time.Since(started).Seconds(); return []Finding{f} }
	conn, err := env.DB.Connect(ctx, db)
	if err != nil {
		return fin(Errorf(SchemaName, ev, "could not connect to database %s: %v", db, err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var count int
	if err := conn.QueryRow(ctx, userTablesSQL).Scan(&count); err != nil {
		return fin(queryFailed(SchemaName, ev, wrapPG(err, "while counting the tables of %s", db), "could not count tables"))
	}
	ev["userTables"] = count
	var missing, notTables []string
	for _, name := range s.Config.Tables {
		var kind, qualified string
		err := conn.QueryRow(ctx, lookupTableSQL, name).Scan(&kind, &qualified)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			missing = append(missing, name)
		case err != nil:
			// to_regclass refuses a name it cannot parse (a.b.c.d): the name is at fault,
			// and the table it means cannot exist as written.
			return fin(queryFailed(SchemaName, ev, wrapPG(err, "while looking table %q up", name), fmt.Sprintf("could not look table %q up", name)))
		case kind != "r" && kind != "p" && kind != "f":
			notTables = append(notTables, fmt.Sprintf("%s (%s, not a table)", name, relkindName(kind)))
		}
	}
	var problems []string
	if len(missing) > 0 {
		ev["missing"] = missing
		problems = append(problems, fmt.Sprintf("missing table(s): %s", strings.Join(missing, ", ")))
	}
	if len(notTables) > 0 {
		ev["notTables"] = notTables
		problems = append(problems, strings.Join(notTables, ", "))
	}
	if count < s.Config.MinTables {
		problems = append(problems, fmt.Sprintf("%d user table(s), fewer than the %d expected", count, s.Config.MinTables))
	}
	if len(problems) > 0 {
		return fin(Failf(SchemaName, ev, "database %s does not meet the schema baseline: %s", db, strings.Join(problems, "; ")))
	}
	msg := fmt.Sprintf("database %s has %d user table(s)", db, count)
	if s.Config.MinTables > 0 {
		msg += fmt.Sprintf(" (at least %d expected)", s.Config.MinTables)
	}
	if n := len(s.Config.Tables); n > 0 {
		msg += fmt.Sprintf(", and each of the %d named", n)
	}
	return fin(Passf(SchemaName, ev, "%s", msg))
}

func relkindName(k string) string {
	switch k {
	case "v":
		return "a view"
	case "m":
		return "a materialized view"
	case "S":
		return "a sequence"
	case "i", "I":
		return "an index"
	case "c":
		return "a composite type"
	case "t":
		return "a TOAST table"
	}
	return "relkind " + k
}
