package checks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// CanaryName is the finding name of the canary check.
const CanaryName = "canary"

func init() {
	Register(CanaryName, 25, func(c Config) []Check {
		if c.Canary == nil {
			return nil
		}
		return []Check{&Canary{Config: *c.Canary, lookupEnv: os.LookupEnv, readFile: os.ReadFile}}
	})
}

// Canary compares the single value a query returns with a known sentinel, byte for byte: a
// backup encrypted, re-encoded or garbled at the source restores "fine" and still fails here.
// The sentinel is never written anywhere: the finding says where it came from (config, an
// environment variable's name, a file's path) and how long the returned value was, not what
// either value is, so neither a match nor a near miss discloses it.
type Canary struct {
	Config CanaryConfig
	// lookupEnv and readFile read the sentinel (os.LookupEnv and os.ReadFile).
	lookupEnv func(string) (string, bool)
	readFile  func(string) ([]byte, error)
}

// Name implements Check.
func (c *Canary) Name() string { return CanaryName }

// Engines implements Check: the query is PostgreSQL SQL, run over pgx.
func (*Canary) Engines() []string { return postgresOnly() }

// errCanaryExpected is why the sentinel could not be read; its messages never hold the value.
var errCanaryExpected = errors.New("the canary's expected value is not available")

// expected reads the sentinel and says where it came from (for evidence).
func (c *Canary) expected() ([]byte, string, error) {
	cfg := c.Config
	switch {
	case cfg.Equals != nil:
		return []byte(*cfg.Equals), "checks.canary.equals", nil
	case cfg.EqualsEnv != "":
		lookup := c.lookupEnv
		if lookup == nil {
			lookup = os.LookupEnv
		}
		v, ok := lookup(cfg.EqualsEnv)
		if !ok {
			return nil, "", fmt.Errorf("%w: environment variable %s is not set", errCanaryExpected, cfg.EqualsEnv)
		}
		return []byte(v), "environment variable " + cfg.EqualsEnv, nil
	case cfg.EqualsFile != "":
		read := c.readFile
		if read == nil {
			read = os.ReadFile
		}
		b, err := read(cfg.EqualsFile)
		if err != nil {
			// The path error names the file and the cause; it never holds the file's content.
			return nil, "", fmt.Errorf("%w: while reading %s: %w", errCanaryExpected, cfg.EqualsFile, unwrapPathError(err))
		}
		b = bytes.TrimSuffix(b, []byte("\n"))
		b = bytes.TrimSuffix(b, []byte("\r"))
		return b, "file " + cfg.EqualsFile, nil
	}
	return nil, "", fmt.Errorf("%w: set one of equals, equalsEnv and equalsFile", errCanaryExpected)
}

// unwrapPathError keeps the cause of a *os.PathError (its path is named by the caller).
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Run implements Check.
func (c *Canary) Run(ctx context.Context, env *Env) []Finding {
	started := time.Now()
	db := c.Config.Database
	if db == "" {
		db = "postgres"
	}
	ev := Evidence{"query": c.Config.Query, "database": db}
	fin := func(f Finding) []Finding { f.Seconds = time.Since(started).Seconds(); return []Finding{f} }
	want, from, err := c.expected()
	if err != nil {
		return fin(Errorf(CanaryName, ev, "%v", err))
	}
	ev["expectedFrom"] = from
	conn, err := env.DB.Connect(ctx, db)
	if err != nil {
		return fin(Errorf(CanaryName, ev, "could not connect to database %s: %v", db, err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// The simple protocol returns every value as the server's text, the bytes compared.
	res, err := conn.PgConn().Exec(ctx, c.Config.Query).ReadAll()
	if err != nil {
		return fin(queryFailed(CanaryName, ev, err, "canary query failed"))
	}
	// The last statement that returns rows is the canary's (a query may SET things first).
	last := -1
	for i := len(res) - 1; i >= 0; i-- {
		if len(res[i].FieldDescriptions) > 0 {
			last = i
			break
		}
	}
	if last < 0 {
		return fin(Failf(CanaryName, ev, "canary query returned no rows: it must return one value"))
	}
	r := res[last]
	ev["rows"], ev["columns"] = len(r.Rows), len(r.FieldDescriptions)
	switch {
	case len(r.FieldDescriptions) != 1:
		return fin(Failf(CanaryName, ev, "canary query returned %d columns: it must return one value", len(r.FieldDescriptions)))
	case len(r.Rows) != 1:
		return fin(Failf(CanaryName, ev, "canary query returned %d rows: it must return one value", len(r.Rows)))
	case r.Rows[0][0] == nil:
		return fin(Failf(CanaryName, ev, "canary query returned NULL, not the expected value (from %s)", from))
	}
	got := r.Rows[0][0]
	ev["bytes"] = len(got)
	if !bytes.Equal(got, want) {
		return fin(Failf(CanaryName, ev, "canary query returned a %d-byte value that differs from the expected value (from %s); neither is shown", len(got), from))
	}
	return fin(Passf(CanaryName, ev, "canary query returned the expected value (from %s), byte for byte", from))
}
