package checks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// MongoDB's checks: validate({full: true}) on every collection, document counts (the
// row-counts finding, registered with the other engines' row counts), and count assertions.

// ValidateName is the finding of MongoDB's validate.
const ValidateName = "validate"

// MongoPrefix starts the finding name of a MongoDB assertion: "mongo:orders-present".
const MongoPrefix = "mongo:"

const engineMongoDB = "mongodb"

func mongoOnly() []string { return []string{engineMongoDB} }

func init() {
	Register(ValidateName, 12, func(c Config) []Check {
		if !Enabled(c.Validate, true) {
			return nil
		}
		return []Check{&MongoValidate{}}
	})
	Register("mongo", 32, func(c Config) []Check {
		var out []Check
		for _, a := range c.Mongo {
			out = append(out, &MongoAssert{Assertion: a})
		}
		return out
	})
}

// mongoSystemDatabases hold the server's own state, not the application's.
var mongoSystemDatabases = []string{"admin", "config", "local"}

// mongoCollection is one collection of the copy.
type mongoCollection struct{ db, name string }

func (c mongoCollection) String() string { return c.db + "." + c.name }

// mongoCollections lists the copy's collections (views and system.* collections are not
// stored data), in a stable order.
func mongoCollections(ctx context.Context, cl *mongo.Client) ([]mongoCollection, error) {
	dbs, err := cl.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("while listing databases: %w", err)
	}
	var out []mongoCollection
	for _, db := range dbs {
		if slices.Contains(mongoSystemDatabases, db) {
			continue
		}
		specs, err := cl.Database(db).ListCollectionSpecifications(ctx, bson.D{{Key: "type", Value: "collection"}})
		if err != nil {
			return nil, fmt.Errorf("while listing the collections of %s: %w", db, err)
		}
		for _, s := range specs {
			if !strings.HasPrefix(s.Name, "system.") {
				out = append(out, mongoCollection{db, s.Name})
			}
		}
	}
	slices.SortFunc(out, func(a, b mongoCollection) int { return strings.Compare(a.String(), b.String()) })
	return out, nil
}

// MongoValidate runs validate({full: true}) on every collection of a MongoDB copy, over
// env.Parallel concurrent commands.
type MongoValidate struct{}

// Name implements Check.
func (*MongoValidate) Name() string { return ValidateName }

// Engines implements Check.
// OnByDefault implements onByDefault.
func (*MongoValidate) OnByDefault() bool { return true }

func (*MongoValidate) Engines() []string { return mongoOnly() }

// validateResult is what validate answers that the check reads.
type validateResult struct {
	Valid    bool     `bson:"valid"`
	Errors   []string `bson:"errors"`
	Warnings []string `bson:"warnings"`
	NRecords int64    `bson:"nrecords"`
	NIndexes int      `bson:"nIndexes"`
}

// Run implements Check.
func (v *MongoValidate) Run(ctx context.Context, env *Env) []Finding {
	started := time.Now()
	fin := func(f Finding) []Finding { f.Seconds = time.Since(started).Seconds(); return []Finding{f} }
	if env.Mongo == nil {
		return fin(Errorf(ValidateName, nil, "no MongoDB client: the throwaway is not a MongoDB server"))
	}
	colls, err := mongoCollections(ctx, env.Mongo)
	if err != nil {
		return fin(Errorf(ValidateName, nil, "could not list the collections to validate: %v", err))
	}
	results := make([]validateOutcome, len(colls))
	sem := make(chan struct{}, max(1, env.Parallel))
	var wg sync.WaitGroup
	for i, c := range colls {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			var r validateResult
			err := env.Mongo.Database(c.db).RunCommand(ctx, bson.D{{Key: "validate", Value: c.name}, {Key: "full", Value: true}}).Decode(&r)
			results[i] = validateOutcome{Collection: c.String(), Result: r, Err: err}
		}()
	}
	wg.Wait()
	return fin(validateFinding(results))
}

// validateOutcome is one collection's validate answer.
type validateOutcome struct {
	Collection string
	Result     validateResult
	Err        error
}

// validateFinding judges the validate answers: an invalid collection, or a command refused
// because the data is damaged, is a proven failure that outranks what could not be checked.
func validateFinding(outcomes []validateOutcome) Finding {
	var invalid, unchecked []map[string]any
	var records int64
	for _, o := range outcomes {
		switch {
		case o.Err != nil && mongoDamage(o.Err):
			invalid = append(invalid, map[string]any{"collection": o.Collection, "errors": []string{o.Err.Error()}})
		case o.Err != nil:
			unchecked = append(unchecked, map[string]any{"collection": o.Collection, "error": o.Err.Error()})
		case !o.Result.Valid:
			invalid = append(invalid, map[string]any{"collection": o.Collection, "errors": o.Result.Errors, "warnings": o.Result.Warnings})
		default:
			records += o.Result.NRecords
		}
	}
	ev := Evidence{"collections": len(outcomes), "records": records}
	switch {
	case len(invalid) > 0:
		ev["invalid"] = invalid
		if len(unchecked) > 0 {
			ev["unchecked"] = unchecked
		}
		return Failf(ValidateName, ev, "%d of %d collections are not valid, first: %s", len(invalid), len(outcomes), invalid[0]["collection"])
	case len(unchecked) > 0:
		ev["unchecked"] = unchecked
		return Errorf(ValidateName, ev, "%d of %d collections could not be validated, first: %s", len(unchecked), len(outcomes), unchecked[0]["collection"])
	}
	return Passf(ValidateName, ev, "validate({full: true}) passed on all %d collections (%d records)", len(outcomes), records)
}

// mongoDamage reports whether a server error says the data is damaged: DataCorruptionDetected
// (296), the storage engine's "WT_PANIC"/"checksum" failures, or an invalid BSON document.
func mongoDamage(err error) bool {
	var se mongo.ServerError
	if errors.As(err, &se) && (se.HasErrorCode(296) || se.HasErrorCode(10334)) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"DataCorruptionDetected", "WT_PANIC", "checksum error", "read checksum", "Invalid BSON"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// MongoCounts records every collection's exact document count (the row-counts finding) and
// holds them to checks.rowCounts.min ("db.collection").
type MongoCounts struct {
	Min map[string]int64
}

// Name implements Check.
func (*MongoCounts) Name() string { return RowCountsName }

// Engines implements Check.
// OnByDefault implements onByDefault.
func (*MongoCounts) OnByDefault() bool { return true }

func (*MongoCounts) Engines() []string { return mongoOnly() }

// Run implements Check.
func (m *MongoCounts) Run(ctx context.Context, env *Env) []Finding {
	started := time.Now()
	fin := func(f Finding) []Finding { f.Seconds = time.Since(started).Seconds(); return []Finding{f} }
	if env.Mongo == nil {
		return fin(Errorf(RowCountsName, nil, "no MongoDB client: the throwaway is not a MongoDB server"))
	}
	colls, err := mongoCollections(ctx, env.Mongo)
	if err != nil {
		return fin(Errorf(RowCountsName, nil, "could not list the collections to count: %v", err))
	}
	counts := map[string]int64{}
	for _, c := range colls {
		n, err := env.Mongo.Database(c.db).Collection(c.name).CountDocuments(ctx, bson.D{})
		if err != nil {
			ev := Evidence{"collection": c.String(), "error": err.Error()}
			if mongoDamage(err) {
				return fin(Failf(RowCountsName, ev, "collection %s cannot be counted: the server reports it damaged: %v", c, err))
			}
			return fin(Errorf(RowCountsName, ev, "collection %s could not be counted: %v", c, err))
		}
		counts[c.String()] = n
	}
	return fin(countsFinding(counts, m.Min))
}

// countsFinding holds document counts to their minimums; a collection with a minimum that is
// not in the copy fails.
func countsFinding(counts, min map[string]int64) Finding {
	ev := Evidence{"counts": counts}
	var short []string
	for _, name := range sortedKeys(min) {
		got, ok := counts[name]
		switch {
		case !ok:
			short = append(short, name+" is missing")
		case got < min[name]:
			short = append(short, fmt.Sprintf("%s has %d documents, fewer than %d", name, got, min[name]))
		}
	}
	if len(short) > 0 {
		ev["belowMin"] = short
		return Failf(RowCountsName, ev, "%s", strings.Join(short, "; "))
	}
	var total int64
	for _, n := range counts {
		total += n
	}
	return Passf(RowCountsName, ev, "%d documents in %d collections", total, len(counts))
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// MongoAssert counts the documents a filter matches and holds the count to Expect.
type MongoAssert struct {
	Assertion MongoAssertion
}

// Name implements Check.
func (m *MongoAssert) Name() string { return MongoPrefix + m.Assertion.Name }

// Engines implements Check.
func (*MongoAssert) Engines() []string { return mongoOnly() }

// Run implements Check.
func (m *MongoAssert) Run(ctx context.Context, env *Env) []Finding {
	started := time.Now()
	a := m.Assertion
	fin := func(f Finding) []Finding { f.Seconds = time.Since(started).Seconds(); return []Finding{f} }
	ev := Evidence{"database": a.Database, "collection": a.Collection, "filter": a.Filter, "expect": a.Expect}
	if env.Mongo == nil {
		return fin(Errorf(m.Name(), ev, "no MongoDB client: the throwaway is not a MongoDB server"))
	}
	filter := bson.D{}
	if strings.TrimSpace(a.Filter) != "" {
		if err := bson.UnmarshalExtJSON([]byte(a.Filter), false, &filter); err != nil {
			return fin(Errorf(m.Name(), ev, "the filter is not extended JSON: %v", err))
		}
	}
	n, err := env.Mongo.Database(a.Database).Collection(a.Collection).CountDocuments(ctx, filter, options.Count())
	if err != nil {
		if mongoDamage(err) {
			ev["error"] = err.Error()
			return fin(Failf(m.Name(), ev, "the server reports %s.%s damaged: %v", a.Database, a.Collection, err))
		}
		return fin(Errorf(m.Name(), ev, "count failed, nothing was proved: %v", err))
	}
	return fin(evaluate(m.Name(), ev, strconv.FormatInt(n, 10), a.Expect))
}
