package integration

import (
	"testing"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/integration/harness"
)

// A large table counted in block ranges (TID range scans over several connections) has the
// same count as one sequential scan of it, and rows in blocks past the listed size are still
// counted (the last range is open-ended).
func TestRowCountsInRanges(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{PgbenchScale: 2})
	ctx := t.Context()
	env := &checks.Env{DB: pgDB{pg}, Parallel: 2, Now: time.Now}
	count := func(chunk int64) map[string]int64 {
		fs := (&checks.RowCounts{ChunkBlocks: chunk}).Run(ctx, env)
		if len(fs) != 1 || fs[0].Status != checks.Pass {
			t.Fatalf("row counts in chunks of %d: %+v", chunk, fs)
		}
		return fs[0].Evidence["counts"].(map[string]int64)
	}
	whole, ranged := count(0), count(500)
	if whole["postgres.public.pgbench_accounts"] != 200000 || len(whole) != len(ranged) {
		t.Fatalf("whole %v, ranged %v", whole, ranged)
	}
	for k, n := range whole {
		if ranged[k] != n {
			t.Errorf("%s: %d counted in ranges, %d in one scan", k, ranged[k], n)
		}
	}
}
