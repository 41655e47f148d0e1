package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/integration/harness"
)

// firedrill's page checksum pass agrees with pg_checksums --check on a real stopped cluster:
// the same number of blocks verified and none bad; a relation the caller vouches for is
// counted, not read; a flipped byte in a free space map and in an index is found at the block
// pg_checksums names, and a segment cut mid-block is a bad block too.
func TestVerifyChecksumsAgreesWithPgChecksums(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{DataChecksums: true, PgbenchScale: 2})
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]string{}
	for _, rel := range []string{"pgbench_accounts", "pgbench_accounts_pkey", "pgbench_branches"} {
		var p string
		if err := conn.QueryRow(ctx, "SELECT pg_relation_filepath($1::regclass)", rel).Scan(&p); err != nil {
			t.Fatal(err)
		}
		paths[rel] = p
	}
	if _, err := conn.Exec(ctx, "VACUUM pgbench_branches"); err != nil { // gives it a free space map
		t.Fatal(err)
	}
	conn.Close(ctx)
	if err := pg.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	pgChecksums := func() (scanned, bad int64) {
		out, _ := exec.Command(filepath.Join(pg.BinDir, "pg_checksums"), "--check", "-D", pg.DataDir).CombinedOutput()
		grab := func(re string) int64 {
			m := regexp.MustCompile(re).FindSubmatch(out)
			if m == nil {
				t.Fatalf("pg_checksums output lacks %s:\n%s", re, out)
			}
			n, _ := strconv.ParseInt(string(m[1]), 10, 64)
			return n
		}
		return grab(`Blocks scanned:\s+(\d+)`), grab(`Bad checksums:\s+(\d+)`)
	}
	scanned, bad := pgChecksums()
	scan, err := checks.VerifyChecksums(ctx, pg.DataDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bad != 0 || len(scan.Bad) != 0 || scan.Blocks != scanned || scanned < 1000 {
		t.Fatalf("clean cluster: firedrill verified %d blocks (bad %v), pg_checksums scanned %d (bad %d)", scan.Blocks, scan.Bad, scanned, bad)
	}
	fi, err := os.Stat(filepath.Join(pg.DataDir, paths["pgbench_accounts"]))
	if err != nil {
		t.Fatal(err)
	}
	blocks := fi.Size() / checks.BlockSize
	verified := func(n int64) func(string) int64 {
		return func(rel string) int64 {
			if rel == paths["pgbench_accounts"] {
				return n
			}
			return 0
		}
	}
	skipped, err := checks.VerifyChecksums(ctx, pg.DataDir, verified(blocks))
	if err != nil {
		t.Fatal(err)
	}
	if skipped.SkippedFiles != 1 || skipped.SkippedBlocks != blocks || skipped.Blocks+skipped.SkippedBlocks != scan.Blocks {
		t.Errorf("pgbench_accounts verified: %+v (whole scan %d blocks, table %d blocks)", skipped, scan.Blocks, blocks)
	}
	// Fewer blocks verified than the segment holds: the segment is read.
	if partial, err := checks.VerifyChecksums(ctx, pg.DataDir, verified(blocks-1)); err != nil || partial.SkippedFiles != 0 || partial.Blocks != scan.Blocks {
		t.Errorf("pgbench_accounts verified but its last block: %+v %v", partial, err)
	}

	// Damage: one byte in the branches' free space map (block 2), one in the index (block 1).
	flip := func(rel string, block int64) {
		f, err := os.OpenFile(filepath.Join(pg.DataDir, rel), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		b := make([]byte, 1)
		off := block*checks.BlockSize + 4000
		if _, err := f.ReadAt(b, off); err != nil {
			t.Fatal(err)
		}
		b[0] ^= 0x5a
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	flip(paths["pgbench_branches"]+"_fsm", 2)
	flip(paths["pgbench_accounts_pkey"], 1)
	_, bad = pgChecksums()
	scan, err = checks.VerifyChecksums(ctx, pg.DataDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []checks.BadBlock{{File: paths["pgbench_accounts_pkey"], Block: 1}, {File: paths["pgbench_branches"] + "_fsm", Block: 2}}
	if want[1].File < want[0].File { // the scan lists bad blocks by file
		want[0], want[1] = want[1], want[0]
	}
	if bad != 2 || len(scan.Bad) != 2 {
		t.Fatalf("two damaged blocks: pg_checksums says %d bad, firedrill %v", bad, scan.Bad)
	}
	for i, w := range want {
		if scan.Bad[i].File != w.File || scan.Bad[i].Block != w.Block || scan.Bad[i].Stored == scan.Bad[i].Want {
			t.Errorf("bad block %d: %+v, want %s block %d", i, scan.Bad[i], w.File, w.Block)
		}
	}
	// A segment cut mid-block.
	idx := filepath.Join(pg.DataDir, paths["pgbench_accounts_pkey"])
	fi, err = os.Stat(idx)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(idx, fi.Size()-100); err != nil {
		t.Fatal(err)
	}
	scan, err = checks.VerifyChecksums(ctx, pg.DataDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	last := scan.Bad[len(scan.Bad)-1]
	if len(scan.Bad) != 3 || last.File != paths["pgbench_accounts_pkey"] || last.Block != fi.Size()/checks.BlockSize-1 || last.Reason == "" {
		t.Errorf("a truncated index: %+v", scan.Bad)
	}
	// A table cut mid-block is read even when its whole blocks were verified: the partial one
	// was not.
	tbl := filepath.Join(pg.DataDir, paths["pgbench_accounts"])
	if err := os.Truncate(tbl, (blocks-1)*checks.BlockSize+3000); err != nil {
		t.Fatal(err)
	}
	scan, err = checks.VerifyChecksums(ctx, pg.DataDir, verified(blocks-1))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(scan.Bad); n != 4 || scan.Bad[n-1].File != paths["pgbench_accounts"] && scan.Bad[0].File != paths["pgbench_accounts"] {
		t.Errorf("a truncated table verified up to its last whole block: %+v", scan.Bad)
	}
}
