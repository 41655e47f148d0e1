package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/integration/harness"
)

// The checks of the damage tests: row counts held to pgbench's 100000 accounts, and a lookup
// through the primary key (which reaches heap blocks a sequential read would not).
const damageChecks = `    checks:
      amcheck: true
      rowCounts:
        min:
          public.pgbench_accounts: 100000
      sql:
        - name: account-lookup
          query: "SELECT abalance FROM pgbench_accounts WHERE aid = 99999"
          expect: {equals: "0"}`

// Damage of each kind, put into a real snapshot of a real cluster with data checksums, with
// the snapshot's manifest made to match (as if the damage was there when the snapshot was
// taken), so that it reaches PostgreSQL: the drill fails (exit 1), the checks that meet the
// damage fail with PostgreSQL's SQLSTATE as evidence, and no check the damage blocked is an
// "error" (could not check). Issue 8, item 0: on the old code the index-page case ended
// `error`, exit 3, because row-counts could not count a table ("invalid page in block …").
func TestDrillDamageIsAFailure(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{DataChecksums: true, PgbenchScale: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	heap := relationFile(t, ctx, pg, "pgbench_accounts")
	index := relationFile(t, ctx, pg, "pgbench_accounts_pkey")

	// want says, per check, that it fails and what its evidence or message must hold.
	type want struct {
		sqlstate string // evidence sqlstate (or a problem's, for amcheck)
		text     string // in the message
	}
	cases := []struct {
		name   string
		checks string // default damageChecks
		damage func(t *testing.T, snap string)
		fails  map[string]want
		passes []string
	}{
		{
			name: "heap page",
			damage: func(t *testing.T, snap string) {
				damage(t, filepath.Join(snap, "data", heap))
				rewriteManifest(t, snap, "data/"+heap)
			},
			fails: map[string]want{
				"amcheck":      {sqlstate: "XX001", text: "invalid page in block 3"},
				"checksums":    {text: "checksum failure"},
				"pg_checksums": {text: "bad checksums"},
			},
			passes: []string{"snapshot-integrity", "recovery"},
		},
		{
			// The exact case: count(*) reads the primary key (an index-only scan), so
			// row-counts is refused with "invalid page in block 3 of relation …" while amcheck
			// and the checksums prove the damage. No row minimum is set: on the old code,
			// row-counts was an error, and the drill `error`, exit 3.
			name:   "index page",
			checks: "    checks:\n      amcheck: true",
			damage: func(t *testing.T, snap string) {
				damage(t, filepath.Join(snap, "data", index))
				rewriteManifest(t, snap, "data/"+index)
			},
			fails: map[string]want{
				"row-counts":   {sqlstate: "XX001", text: "invalid page in block 3"},
				"amcheck":      {sqlstate: "XX001", text: "invalid page in block 3"},
				"checksums":    {text: "checksum failure"},
				"pg_checksums": {text: "bad checksums"},
			},
			passes: []string{"snapshot-integrity", "recovery"},
		},
		{
			// Half the table's segment, cut mid-page: sequential reads see fewer rows, the
			// primary key points past the end, and pg_checksums cannot read the last page.
			name: "truncated segment",
			damage: func(t *testing.T, snap string) {
				p := filepath.Join(snap, "data", heap)
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Truncate(p, fi.Size()/2/8192*8192+3000); err != nil {
					t.Fatal(err)
				}
				rewriteManifest(t, snap, "data/"+heap)
			},
			fails: map[string]want{
				"row-counts":         {text: "public.pgbench_accounts"},
				"sql:account-lookup": {sqlstate: "XX001", text: "could not read block"},
				"pg_checksums":       {text: "could not read block"},
			},
			passes: []string{"snapshot-integrity", "recovery", "checksums"},
		},
		{
			// The table's only segment is gone (and gone from the manifest too): nothing but
			// PostgreSQL's own refusal to read it can tell.
			name: "missing segment",
			damage: func(t *testing.T, snap string) {
				if err := os.Remove(filepath.Join(snap, "data", heap)); err != nil {
					t.Fatal(err)
				}
				dropFromManifest(t, snap, "data/"+heap)
			},
			fails: map[string]want{
				"row-counts":         {sqlstate: "58P01", text: "No such file or directory"},
				"amcheck":            {sqlstate: "58P01", text: "could not open file"},
				"sql:account-lookup": {sqlstate: "58P01", text: "could not open file"},
			},
			passes: []string{"snapshot-integrity", "recovery"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checks := tc.checks
			if checks == "" {
				checks = damageChecks
			}
			tg, cfg := newTarget(t, pg, checks)
			id := snapshotID(t, ctx, cfg)
			tc.damage(t, filepath.Join(tg.repo, id))
			r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json")
			d := parseDrill(t, r)
			if r.code != 1 || d.Status != "fail" {
				t.Errorf("exit %d status %s (error %q), want 1/fail; checks:\n%s", r.code, d.Status, d.Error, summary(d))
			}
			for _, c := range d.Checks {
				if c.Status == "error" {
					t.Errorf("check %s could not check (%s): the damage it met must be a failure", c.Name, c.Message)
				}
			}
			for name, w := range tc.fails {
				c, ok := d.find(name)
				if !ok || c.Status != "fail" {
					t.Errorf("%s = %s %q, want fail", name, c.Status, c.Message)
					continue
				}
				if !strings.Contains(strings.ToLower(c.Message), strings.ToLower(w.text)) {
					t.Errorf("%s message %q does not say %q", name, c.Message, w.text)
				}
				if w.sqlstate != "" && !hasSQLState(c.Evidence, w.sqlstate) {
					t.Errorf("%s evidence %v does not carry SQLSTATE %s", name, c.Evidence, w.sqlstate)
				}
			}
			for _, name := range tc.passes {
				if c, _ := d.find(name); c.Status != "pass" {
					t.Errorf("%s = %s %q, want pass", name, c.Status, c.Message)
				}
			}
			if left := leftovers(t, tg.scratch); len(left) != 0 {
				t.Errorf("scratch left behind: %v", left)
			}
		})
	}
}

type drillCheck struct {
	Name     string         `json:"name"`
	Status   string         `json:"status"`
	Message  string         `json:"message"`
	Evidence map[string]any `json:"evidence"`
}

func (d drillJSON) find(name string) (drillCheck, bool) {
	for _, c := range d.Checks {
		if c.Name == name {
			return drillCheck(c), true
		}
	}
	return drillCheck{}, false
}

func summary(d drillJSON) string {
	var b strings.Builder
	for _, c := range d.Checks {
		b.WriteString("  " + c.Name + " " + c.Status + ": " + c.Message + "\n")
	}
	return b.String()
}

// hasSQLState finds the SQLSTATE in a finding's evidence: its "sqlstate", or that of one of
// its amcheck problems.
func hasSQLState(ev map[string]any, state string) bool {
	if ev["sqlstate"] == state {
		return true
	}
	b, _ := json.Marshal(ev["problems"])
	return strings.Contains(string(b), `"sqlstate":"`+state+`"`)
}

// dropFromManifest removes a file's line from a snapshot's manifest and updates the manifest's
// hash in meta.json, as if the file had been missing when the snapshot was taken.
func dropFromManifest(t *testing.T, dir, rel string) {
	t.Helper()
	mb, err := os.ReadFile(filepath.Join(dir, "manifest.sha256"))
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, l := range strings.Split(string(mb), "\n") {
		if !strings.HasSuffix(l, "  "+rel) {
			kept = append(kept, l)
		}
	}
	nm := strings.Join(kept, "\n")
	if nm == string(mb) {
		t.Fatalf("%s is not in the manifest of %s", rel, dir)
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.sha256"), []byte(nm), 0o600); err != nil {
		t.Fatal(err)
	}
	msum := sha256.Sum256([]byte(nm))
	var meta map[string]any
	metaB, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(metaB, &meta); err != nil {
		t.Fatal(err)
	}
	meta["manifestSha256"] = hex.EncodeToString(msum[:])
	metaB, _ = json.Marshal(meta)
	if err := os.WriteFile(filepath.Join(dir, "meta.json"), metaB, 0o600); err != nil {
		t.Fatal(err)
	}
}
